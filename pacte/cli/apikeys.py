"""API keys: create, list, revoke."""

from __future__ import annotations

from typing import Annotated

import typer

from pacte.cli._common import (
    DataOpt,
    JsonOpt,
    apikey_app,
    emit_json,
    emit_table,
    guarded,
    opened,
)


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
def apikey_list(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """List principals (never their keys): id, name, role, purposes, state, dates.

    The last use is kept to the day.

    Example: pacte apikey list --json
    """
    with opened(data) as rt:
        rows = guarded(rt.list_principals)
    if as_json:
        emit_json(rows)
        return
    table = [("ID", "NAME", "ROLE", "PURPOSES", "STATE", "CREATED", "LAST USED")]
    table += [(r["id"], r["name"], r["role"], ",".join(r["purposes"]) or "-", r["state"],
               r["created"] or "-", r["last_used"] or "never") for r in rows]
    emit_table(table)


@apikey_app.command("revoke")
def apikey_revoke(principal_id: str, data: DataOpt = None) -> None:
    """Revoke a principal's key; it stops working on the next request.

    Example: pacte apikey revoke pr_1a2b3c4d5e6f
    """
    with opened(data) as rt:
        guarded(lambda: rt.revoke_principal(principal_id))
    typer.echo(f"revoked {principal_id}")

