"""The `pacte` command. Each command wraps one public Python call, with the same names.

Domain errors become one line on stderr and a non-zero exit code, never a traceback.
One module per group of commands; importing them registers their commands on `app`.
"""

from __future__ import annotations

import sys

import typer

from pacte.cli import analytics, apikeys, audit, data, identity, serve  # noqa: F401  (registration)
from pacte.cli._common import _NOT_UTF8, app, fail
from pacte.errors import InputError

__all__ = ["app", "main"]


def main() -> None:
    for arg in sys.argv[1:]:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            # Outside the app, where typer.Exit would not be caught.
            typer.echo(f"error: {_NOT_UTF8}", err=True)
            sys.exit(2)
    try:
        app()
    except InputError as exc:  # pragma: no cover - raised outside a guarded call
        fail(str(exc), code=2)

