"""Identity resolution: how customers were assembled."""

from __future__ import annotations

import dataclasses

import typer

from pacte.cli._common import DataOpt, JsonOpt, emit_json, guarded, identity_app, opened


@identity_app.command("explain")
def identity_explain(customer_id: str, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Which identifiers (kinds, blind refs; never values) and rules built a customer.

    Example: pacte identity explain c_0123456789ab
    """
    with opened(data) as rt:
        explanation = guarded(lambda: rt.explain_identity(customer_id))
    if as_json:
        emit_json(dataclasses.asdict(explanation))
        return
    for line in explanation.lines():
        typer.echo(line)


@identity_app.command("unmerge")
def identity_unmerge(customer_id: str, data: DataOpt = None) -> None:
    """Undo a merge: the customer merged into another is restored as it was, consents
    included; what arrived for it since goes back to it.

    Example: pacte identity unmerge c_0123456789ab
    """
    with opened(data) as rt:
        survivor = guarded(lambda: rt.unmerge(customer_id))
    typer.echo(f"{customer_id} restored; split from {survivor}")
