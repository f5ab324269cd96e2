"""Identity resolution: how customers were assembled."""

from __future__ import annotations

import typer

from pacte.cli._common import DataOpt, guarded, identity_app, opened


@identity_app.command("explain")
def identity_explain(customer_id: str, data: DataOpt = None) -> None:
    """Which identifiers (kinds, blind refs; never values) and rules built a customer.

    Example: pacte identity explain c_0123456789ab
    """
    with opened(data) as rt:
        explanation = guarded(lambda: rt.explain_identity(customer_id))
    for line in explanation.lines():
        typer.echo(line)
