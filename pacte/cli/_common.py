"""What every command shares: the typer apps, the --data option, one-line errors."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

from pacte.errors import PacteError
from pacte.runtime import Pacte, default_data_dir

# The driver logs its connection failures itself; pacte turns them into its one line
# (`pacte serve --log-level debug` shows them again).
logging.getLogger("neo4j").setLevel(logging.CRITICAL)

# -h as well as --help, everywhere.
_CONTEXT = {"help_option_names": ["-h", "--help"]}


def _group(help: str) -> typer.Typer:
    return typer.Typer(help=help, no_args_is_help=True, context_settings=_CONTEXT)


app = typer.Typer(
    name="pacte",
    help="pacte: a privacy-preserving customer knowledge graph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings=_CONTEXT,
)
apikey_app = _group("Create, list and revoke API keys.")
audit_app = _group("Verify and read the audit trail.")
keys_app = _group("Manage encryption keys.")
identity_app = _group("Identity resolution: how customers were assembled.")
app.add_typer(apikey_app, name="apikey")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(identity_app, name="identity")


def _version(value: bool) -> None:
    if value:
        from pacte import __version__

        typer.echo(f"pacte {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", help="Print the version and exit", callback=_version,
        is_eager=True)] = False) -> None:
    """pacte: a privacy-preserving customer knowledge graph."""

DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Data directory \\[default: $PACTE_DATA, else ./pacte-data]",
                 show_default=False),
]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]

T = TypeVar("T")


def emit_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def emit_table(rows: Sequence[Sequence[str]]) -> None:
    """Aligned columns, the first row a header (as `ls -l` or `docker ps` print them)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _dir(data: Path | None) -> Path:
    return data if data is not None else default_data_dir()


def fail(message: str, *, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def opened(data: Path | None) -> Iterator[Pacte]:
    """The opened data directory; domain errors become one line and exit 1.

    Without one, on a machine given a shared Neo4j store ($PACTE_STORE, $PACTE_POLICY,
    $PACTE_SIGNING_KEY and the KEK, as `pacte serve` is: docs/scale-out.md), the store
    attached: the command then reads and appends to the trail every server shares.
    """
    path = _dir(data)
    attach = [os.environ.get(name) for name in ("PACTE_STORE", "PACTE_POLICY",
                                                "PACTE_SIGNING_KEY")]
    try:
        if all(attach) and not (path / "policy.toml").exists():
            uri, policy, signing = (str(v) for v in attach)
            with Pacte.attach(uri, policy_file=policy, signing_key_file=signing,
                              work_dir=path) as rt:
                yield rt
        else:
            with Pacte.open(path) as rt:
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

