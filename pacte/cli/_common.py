"""What every command shares: the typer apps, the --data option, one-line errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

from pacte.errors import PacteError
from pacte.runtime import Pacte, default_data_dir

app = typer.Typer(
    name="pacte",
    help="pacte: a privacy-preserving customer knowledge graph.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
apikey_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
audit_app = typer.Typer(help="Verify and read the audit trail.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage encryption keys.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
identity_app = typer.Typer(help="Identity resolution: how customers were assembled.",
                           no_args_is_help=True)
app.add_typer(identity_app, name="identity")

DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Data directory [default: $PACTE_DATA, else ./pacte-data]",
                 show_default=False),
]

T = TypeVar("T")


def _dir(data: Path | None) -> Path:
    return data if data is not None else default_data_dir()


def fail(message: str, *, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def opened(data: Path | None) -> Iterator[Pacte]:
    """The opened data directory; domain errors become one line and exit 1."""
    try:
        with Pacte.open(_dir(data)) as rt:
            yield rt
    except PacteError as exc:
        fail(str(exc))


def guarded(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except PacteError as exc:
        fail(str(exc))
    except UnicodeEncodeError:
        # An argument that was not valid UTF-8 reaches Python with lone surrogates.
        fail(_NOT_UTF8, code=2)


_NOT_UTF8 = "arguments must be valid UTF-8 text"
_MAX_PORT = 65535


def _check_port(port: int) -> None:
    if not 0 < port <= _MAX_PORT:
        fail(f"--port must be between 1 and {_MAX_PORT}", code=2)

