"""API keys: create, list, revoke."""

from __future__ import annotations

from typing import Annotated

import typer

from pacte.cli._common import DataOpt, apikey_app, guarded, opened


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option("--name", help="Who holds the key (an app or a person)")],
    role: Annotated[str, typer.Option("--role", help="app, auditor, analyst or admin")],
    purpose: Annotated[list[str] | None, typer.Option(
        "--purpose", help="A purpose the key may claim (repeat)")] = None,
    data: DataOpt = None,
) -> None:
    """Create an API key; it is printed once, alone on the last line.

    Example: pacte apikey create --name crm --role app --purpose service --purpose marketing
    """
    with opened(data) as rt:
        principal, key = guarded(lambda: rt.create_principal(name=name, role=role,
                                                             purposes=purpose or []))
    typer.echo(f"created {principal.id} ({principal.name}, {principal.role}; purposes: "
               f"{', '.join(principal.purposes) or 'none'})")
    typer.echo("store this key now; it cannot be shown again:", err=True)
    typer.echo(key)


@apikey_app.command("list")
def apikey_list(data: DataOpt = None) -> None:
    """List principals (never their keys).

    Example: pacte apikey list
    """
    with opened(data) as rt:
        for p in rt.principals.list():
            state = "revoked" if p.revoked else "active"
            typer.echo(f"{p.id}\t{p.name}\t{p.role}\t{','.join(p.purposes)}\t{state}")


@apikey_app.command("revoke")
def apikey_revoke(principal_id: str, data: DataOpt = None) -> None:
    """Revoke a principal's key; it stops working on the next request.

    Example: pacte apikey revoke pr_1a2b3c4d5e6f
    """
    with opened(data) as rt:
        guarded(lambda: rt.revoke_principal(principal_id))
    typer.echo(f"revoked {principal_id}")

