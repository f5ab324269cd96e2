"""The `pacte` command. Each command wraps one public Python call, with the same names.

Domain errors become one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from pacte.errors import InputError, IntegrityError, PacteError
from pacte.runtime import Pacte, default_data_dir, signing_public_key

if TYPE_CHECKING:
    from pacte.graph.session import Session

__all__ = ["app", "main"]

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


@app.command()
def init(data: DataOpt = None,
         store: Annotated[str | None, typer.Option(
             "--store", help="Keep the graph in another store, e.g. neo4j://host:7687")] = None
         ) -> None:
    """Create the data directory: store, key file, signing key, audit trail, default policy.

    Example: pacte init --data ./pacte-data
    """
    path = _dir(data)
    guarded(lambda: Pacte.init(path, store_uri=store).close())
    typer.echo(f"initialised {path}")
    typer.echo(f"  policy:     {path / 'policy.toml'}")
    typer.echo(f"  master key: {path / 'master.key'} (back it up apart from the data)")


@app.command()
def seed(
    customers: Annotated[int, typer.Option("--customers", help="How many customers")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same graph)")] = 0,
    sources: Annotated[Path | None, typer.Option(
        "--sources", help="Write the world as CRM, shop, store, tracker and IoT exports "
        "into this directory instead (for `pacte ingest`)")] = None,
    data: DataOpt = None,
) -> None:
    """Fill the store with reproducible synthetic customers, interactions and consents.

    Example: pacte seed --customers 10000 --seed 7
    Example: pacte seed --customers 1000 --sources ./exports
    """
    if customers < 1 or customers > 10_000_000:
        fail("--customers must be between 1 and 10000000", code=2)
    if sources is not None:
        from pacte.clock import utcnow
        from pacte.seed.sources import TRUTH_FILE, write_sources

        try:
            rows = write_sources(sources, customers=customers, seed=seed, now=utcnow())
        except OSError as exc:
            fail(f"cannot write to {sources}: {exc.strerror}")
        for name, n in rows.items():
            typer.echo(f"{sources / name}: {n} rows")
        typer.echo(f"ground truth (not a source): {sources / TRUTH_FILE}")
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with opened(data) as rt, Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), transient=False, disable=not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task("seeding customers", total=customers)
        stats = guarded(lambda: rt.seed(customers, seed=seed,
                                        progress=lambda n: bar.update(task, completed=n)))
    typer.echo(f"seeded {stats['customers']} customers, {stats['interactions']} interactions")


@app.command()
def ingest(
    files: Annotated[list[str], typer.Argument(
        help="CSV or JSON-lines files ('-' for standard input)", show_default=False)],
    source: Annotated[str | None, typer.Option(
        "--source", help="A name for the source (audit trail, reject file)")] = None,
    mapping: Annotated[Path | None, typer.Option(
        "--mapping", help="TOML file: which column is which field (docs/ingest.md)")] = None,
    format: Annotated[str | None, typer.Option(
        "--format", help="csv or jsonl [default: by extension or content]")] = None,
    max_errors: Annotated[int | None, typer.Option(
        "--max-errors", help="Stop after this many rejected rows")] = None,
    data: DataOpt = None,
) -> None:
    """Load customers, events, orders, consents, devices and readings from exports.

    Prints one summary line; exits 1 when any row was rejected (they are listed, with
    personal values masked, in the reject file it names). Running it again changes
    nothing; after an interruption it goes on where it stopped.

    Example: pacte ingest crm.csv shop_orders.csv tracker.jsonl --mapping tracker.toml
    """
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    with opened(data) as rt, Progress(
        TextColumn("[progress.description]{task.description}"),
        TextColumn("{task.completed:,} rows"), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), transient=False, disable=not sys.stderr.isatty(),
    ) as bar:
        tasks: dict[str, Any] = {}
        started: dict[str, float] = {}

        def progress(name: str, rows: int) -> None:
            import time

            if name not in tasks:
                tasks[name] = bar.add_task(f"ingesting {name}", total=None, rate="")
                started[name] = time.monotonic()
            elapsed = max(time.monotonic() - started[name], 1e-6)
            bar.update(tasks[name], completed=rows, rate=f"{rows / elapsed:,.0f} rows/s")

        report = guarded(lambda: rt.ingest(files, source=source, mapping=mapping,
                                           format=format, max_errors=max_errors,
                                           progress=progress))
    typer.echo(report.summary())
    if report.rejected:
        raise typer.Exit(1)


@identity_app.command("explain")
def identity_explain(customer_id: str, data: DataOpt = None) -> None:
    """Which identifiers (kinds, blind refs; never values) and rules built a customer.

    Example: pacte identity explain c_0123456789ab
    """
    with opened(data) as rt:
        explanation = guarded(lambda: rt.explain_identity(customer_id))
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


@app.command()
def stats(data: DataOpt = None) -> None:
    """Count nodes per kind and edges per type, one `kind: count` per line.

    Example: pacte stats
    """
    with opened(data) as rt:
        counts = guarded(lambda: rt.operator_session().stats())
    for kind, n in counts.items():
        typer.echo(f"{kind}: {n}")


@app.command()
def purposes(data: DataOpt = None) -> None:
    """List the purposes of the policy, with legal basis and categories.

    Example: pacte purposes
    """
    with opened(data) as rt:
        typer.echo(f"policy version {rt.policy.version}")
        for p in rt.policy.purposes.values():
            cats = ", ".join(p.categories) or "(no personal fields)"
            typer.echo(f"{p.id}: {p.legal_basis}; may use {cats}")


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


@app.command()
def erase(customer_id: str, data: DataOpt = None) -> None:
    """Crypto-shred and delete a customer at their request; prints the signed receipt.

    Example: pacte erase c_0123456789ab
    """
    with opened(data) as rt:
        receipt = guarded(lambda: rt.operator_session("self_service").erase(customer_id))
    typer.echo(json.dumps(receipt, indent=2, sort_keys=True))


@keys_app.command("rotate")
def keys_rotate(data: DataOpt = None) -> None:
    """Make a new key-encryption key version and re-wrap every data key under it.

    Example: pacte keys rotate
    """
    with opened(data) as rt:
        version = guarded(rt.rotate_keys)
    typer.echo(f"rotated: key-encryption key version {version} is current")


@app.command("migrate")
def migrate_cmd(
    to: Annotated[str, typer.Option("--to", help="Target store URI, e.g. neo4j://host:7687")],
    switch: Annotated[bool, typer.Option(
        "--switch", help="Use the target store from now on")] = False,
    data: DataOpt = None,
) -> None:
    """Copy the graph to another store (ciphertext as is; keys stay in the key vault).

    Resumable: run it again after an interruption. Verified by counts and checksums.

    Example: pacte migrate --to neo4j://neo4j:secret@db.internal:7687 --switch
    """
    with opened(data) as rt:
        report = guarded(lambda: rt.migrate(
            to, switch=switch, progress=lambda phase, n: typer.echo(
                f"  {phase}: {n} copied", err=True) if n % 50_000 == 0 else None))
    counts = ", ".join(f"{k}: {v}" for k, v in report.counts.items())
    typer.echo(f"migrated and verified ({counts}; checksum {report.checksum[:16]})")
    if switch:
        typer.echo(f"the data directory now uses {to.split('@')[-1]}")


def _print_entries(entries: list[Any]) -> None:
    for e in entries:
        typer.echo(json.dumps(e.to_json() if hasattr(e, "to_json") else e, sort_keys=True))


KeyOpt = Annotated[str | None, typer.Option(
    "--key", help="The signing key to pin: its base64 public key or SHA-256 fingerprint, as "
                  "`pacte audit checkpoint` prints them [default: the data directory's "
                  "signing.key]", show_default=False)]


def _pinned_key(data: Path | None, key: str | None) -> str:
    """--key, else the public key of the data directory's signing.key (exit 2 if neither)."""
    if key is not None:
        return key
    try:
        return signing_public_key(_dir(data))
    except PacteError as exc:
        fail(f"no key to pin: give --key ({exc})", code=2)


@audit_app.command("verify")
def audit_verify(
    data: DataOpt = None,
    trusted: Annotated[Path | None, typer.Option(
        "--trusted", help="A checkpoint exported earlier; the log must still extend it")] = None,
    key: KeyOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Verify the audit trail: exit 0 valid, 1 invalid, 2 unreadable.

    Reads only audit.db (and signing.key, unless --key is given), so an auditor can
    check a copy of the file.

    Example: pacte audit verify --trusted checkpoint.json --key 3f9a...e1 (fingerprint)
    """
    from pacte.audit import AuditTrail, Checkpoint, verify

    path = _dir(data) / "audit.db"
    if not path.exists():
        fail(f"{_dir(data)} holds no audit trail; run `pacte init` first", code=2)
    pin = _pinned_key(data, key)
    cp = None
    if trusted is not None:
        try:
            cp = Checkpoint.from_json(json.loads(trusted.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            fail(f"cannot read trusted checkpoint {trusted}: {exc}", code=2)
    try:
        with AuditTrail.open(path, signer=None, read_only=True, for_verify=True) as trail:
            report = verify(trail, trusted=cp, key=pin)
    except IntegrityError as exc:
        fail(f"audit trail unreadable: {exc}", code=2)
    except PacteError as exc:
        fail(str(exc), code=2)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        for line in report.lines():
            typer.echo(line)
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    export: Annotated[Path | None, typer.Option(
        "--export", help="Write the signed checkpoint to this file")] = None,
    data: DataOpt = None,
) -> None:
    """Sign a checkpoint of the audit trail now, and optionally export it.

    Keep the exported file where whoever can write audit.db cannot (see the README);
    the key fingerprint printed is what auditors pin with --key.

    Example: pacte audit checkpoint --export checkpoint.json
    """
    with opened(data) as rt:
        cp = guarded(rt.audit.checkpoint)
    text = json.dumps(cp.to_json(), indent=2, sort_keys=True)
    if export is not None:
        try:
            export.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {export}: {exc.strerror or exc}")
        typer.echo(f"wrote {export}")
        typer.echo(f"key fingerprint: {cp.fingerprint}")
    else:
        typer.echo(text)


@audit_app.command("rotate-key")
def audit_rotate_key(data: DataOpt = None) -> None:
    """Replace the audit signing key; the hand-over is an entry signed by both keys.

    Verifiers pinning the old key follow the rotation; export a checkpoint afterwards
    to give auditors the new fingerprint.

    Example: pacte audit rotate-key
    """
    with opened(data) as rt:
        fingerprint = guarded(rt.rotate_signing_key)
    typer.echo(f"rotated: checkpoints are now signed by key {fingerprint}")


@audit_app.command("check-report")
def audit_check_report(
    file: Annotated[Path, typer.Argument(help="An access report (JSON), as access-report "
                                              "prints it")],
    key: KeyOpt = None,
    data: DataOpt = None,
) -> None:
    """Check an access report: signed by the pinned key, every use on the record, and
    no use left out as of its checkpoint. Exit 0 complete, 1 not, 2 unreadable.

    Example: pacte audit check-report report.json --key 3f9a...e1 (fingerprint)
    """
    from pacte.audit import check_report

    pin = _pinned_key(data, key)
    try:
        report = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"cannot read report {file}: {exc}", code=2)
    if not isinstance(report, dict):
        fail(f"{file} is not an access report", code=2)
    try:
        result = check_report(report, key=pin)
    except InputError as exc:
        fail(str(exc), code=2)
    except IntegrityError as exc:
        fail(str(exc))
    typer.echo(f"complete: {result['uses']} uses of {result['subject']} as of checkpoint "
               f"{result['checkpoint_size']} signed {result['checkpoint_time']} by key "
               f"{result['key_fingerprint'][:16]}")


@audit_app.command("trace")
def audit_trace(
    customer: Annotated[str, typer.Option("--customer", help="The customer id")],
    data: DataOpt = None,
) -> None:
    """Every use of one customer's data: when, who, purpose, fields, outcome (JSON lines).

    Example: pacte audit trace --customer c_0123456789ab
    """
    with opened(data) as rt:
        entries = guarded(lambda: rt.operator_session("legal").trace(customer))
        _print_entries(entries)


@audit_app.command("access-report")
def audit_access_report(
    customer: Annotated[str, typer.Option("--customer", help="The customer id")],
    data: DataOpt = None,
) -> None:
    """The Art. 15 access report for one customer, with inclusion proofs (JSON).

    Example: pacte audit access-report --customer c_0123456789ab > report.json
    """
    with opened(data) as rt:
        report = guarded(lambda: rt.operator_session("legal").access_report(customer))
    typer.echo(json.dumps(report, indent=2, sort_keys=True, default=str))


@audit_app.command("processing-record")
def audit_processing_record(data: DataOpt = None) -> None:
    """The Art. 30 record of processing activities, generated from the policy (JSON).

    Example: pacte audit processing-record > ropa.json
    """
    with opened(data) as rt:
        record = guarded(lambda: rt.operator_session("legal").record_of_processing())
    typer.echo(json.dumps(record, indent=2, sort_keys=True, default=str))


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


# -- analytics (pseudonymised, consented projections; aggregates of k customers or more) --

analytics_app = typer.Typer(help="Pseudonymised, consented projections for analysts.",
                            no_args_is_help=True)
app.add_typer(analytics_app, name="analytics")


@analytics_app.command("export")
def analytics_export(
    format: Annotated[str, typer.Option(
        "--format", help="graphml, gexf or json (node-link)")] = "graphml",
    k: Annotated[int, typer.Option("--k", help="Smallest equivalence class (>= 5)")] = 5,
    data: DataOpt = None,
) -> None:
    """Export the k-anonymous projection to a new file in the current directory.

    Every customer record (segment, age band, edges with month ranges and amount
    bands) matches at least k-1 others; customers are pseudonyms keyed for this
    export alone. Prints the file name, then the achieved k and suppression rates
    (also in the file's metadata and the export's audit entry).

    Example: pacte analytics export --format gexf
    """
    from pacte.analytics import FORMATS, build_projection, export

    chosen = next((f for f in FORMATS if f == format), None)
    if chosen is None:
        fail(f"--format must be one of {', '.join(FORMATS)}", code=2)
    with opened(data) as rt:
        session = rt.operator_session("analytics")
        projection = guarded(lambda: build_projection(session))
        done = guarded(lambda: export(projection, format=chosen, directory=Path.cwd(), k=k))
        _on_record(session, "analytics.export", done.path,
                   {"format": chosen, **done.anonymity.metadata()})
    typer.echo(done.path.name)
    typer.echo(str(done.anonymity))


@analytics_app.command("report")
def analytics_report(
    epsilon: Annotated[float | None, typer.Option(
        "--epsilon", help="Release the customer counts with differential privacy, "
                          "spending this much of the privacy budget")] = None,
    data: DataOpt = None,
) -> None:
    """Write an HTML report with PNG plots to the current directory; prints its path.

    With --epsilon, the number of customers and the customers per channel are
    noisy (epsilon-differentially private) and the epsilon spent is recorded in
    the audit trail; once the budget is spent, further releases are refused. The
    budget is the policy file's ([privacy] budget, default 1.0), not an option.

    Example: pacte analytics report --epsilon 0.2
    """
    from pacte.analytics import build_projection, private_counts, report

    with opened(data) as rt:
        session = rt.operator_session("analytics")
        projection = guarded(lambda: build_projection(session))
        private = None
        if epsilon is not None:
            eps = epsilon
            # Spent before the noisy figures exist: a failure after this wastes budget,
            # never releases unaccounted figures.
            counts = guarded(lambda: private_counts(projection, epsilon=eps))
            left = guarded(lambda: session.record_release(
                "analytics.dp_release", details=counts.parameters(), epsilon=eps))
            private = counts
        path = guarded(lambda: report(projection, directory=Path.cwd(), private=private))
        _on_record(session, "analytics.report", path,
                   {"file": path.name, "differentially_private": private is not None})
    typer.echo(path)
    if private is not None:
        typer.echo(f"differential privacy: epsilon {private.epsilon:g} spent, "
                   f"{left:g} of the budget left")


def _on_record(session: Session, action: str, path: Path, details: dict[str, Any]) -> None:
    """Record the release of the file at `path`; a file whose release could not be
    recorded does not stay (whatever the failure), and a domain error is one line."""
    try:
        session.record_release(action, details=details)
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, PacteError):
            fail(str(exc))
        raise


# -- the GraphQL server (pacte.api) ------------------------------------------------

_DEMO_KEYS = (
    ("demo-app", "app", ("service", "self_service", "marketing", "marketing.email",
                         "personalization")),
    ("demo-auditor", "auditor", ("legal",)),
    ("demo-analyst", "analyst", ("analytics",)),
)


def _serve(rt: Pacte, *, host: str, port: int, dev: bool, max_cost: int | None = None
           ) -> None:
    import uvicorn

    from pacte.api import Limits, create_app
    from pacte.api.access_log import AccessLog

    typer.echo(f"serving GraphQL at http://{host}:{port}/graphql"
               + (" (development mode: introspection and GraphiQL on)" if dev else ""))
    limits = Limits() if max_cost is None else Limits(max_cost=max_cost)
    asgi = AccessLog(create_app(rt, dev=dev, limits=limits), routes=("/graphql", "/healthz"))
    # uvicorn's access log writes query strings, where GET requests carry personal
    # values: pacte's own logs method, route and status only (G1).
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    uvicorn.run(asgi, host=host, port=port, log_level="info", access_log=False,
                server_header=False, proxy_headers=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    dev: Annotated[bool, typer.Option(
        "--dev", help="Introspection, field suggestions and GraphiQL (never in production)")
    ] = False,
    max_cost: Annotated[int | None, typer.Option(
        "--max-cost", help="Refuse documents that may resolve more fields than this, "
                           "counting each once per item of the pages around it [50000]",
        show_default=False)] = None,
    data: DataOpt = None,
) -> None:
    """Serve GraphQL at /graphql (Bearer key + X-Purpose) and health at /healthz.

    Example: pacte serve --host 127.0.0.1 --port 8000
    """
    _check_port(port)
    if max_cost is not None and max_cost < 1:
        fail("--max-cost must be at least 1", code=2)
    with opened(data) as rt:
        _serve(rt, host=host, port=port, dev=dev, max_cost=max_cost)


@app.command("schema")
def schema_cmd() -> None:
    """Print the GraphQL schema (SDL).

    Example: pacte schema > schema.graphql
    """
    from pacte.api import sdl

    typer.echo(sdl(), nl=False)


def _curl(port: int, key: str, purpose: str, query: str) -> str:
    body = json.dumps({"query": query}).replace("'", "'\\''")
    return (f"curl -s http://127.0.0.1:{port}/graphql -H 'Authorization: Bearer {key}' "
            f"-H 'X-Purpose: {purpose}' -H 'Content-Type: application/json' -d '{body}'")


@app.command()
def demo(
    data: DataOpt = None,
    customers: Annotated[int, typer.Option("--customers", help="How many to seed")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed")] = 0,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    dev: Annotated[bool, typer.Option("--dev", help="Introspection and GraphiQL")] = False,
    no_serve: Annotated[bool, typer.Option(
        "--no-serve", help="Prepare and print, but do not serve")] = False,
) -> None:
    """Init (if needed), seed, create demo API keys, print sample queries, serve.

    Example: pacte demo --data ./pacte-demo --customers 2000 --port 8000
    """
    from functools import partial

    if customers < 1 or customers > 10_000_000:
        fail("--customers must be between 1 and 10000000", code=2)
    _check_port(port)
    path = _dir(data)
    if not (path / "policy.toml").exists():
        guarded(lambda: Pacte.init(path).close())
        typer.echo(f"initialised {path}")
    with opened(path) as rt:
        op = rt.operator_session("service")
        if guarded(op.stats).get("Customer", 0) == 0:
            typer.echo(f"seeding {customers} customers (seed {seed}) ...")
            stats = guarded(lambda: rt.seed(customers, seed=seed))
            typer.echo(f"seeded {stats['customers']} customers, "
                       f"{stats['interactions']} interactions")
        keys: dict[str, str] = {}
        for name, role, purposes_ in _DEMO_KEYS:
            principal, key = guarded(partial(rt.create_principal, name=name, role=role,
                                             purposes=purposes_))
            keys[role] = key
            typer.echo(f"{role:8} key ({', '.join(principal.purposes)}): {key}")
        first = guarded(lambda: rt.operator_session("service").customers(first=1)).items
        cid = first[0].id if first else "c_000000000000"
        typer.echo("\ntry:")
        for purpose, key, query in (
            ("service", keys["app"], "{ customers(first: 3) { edges { node { id name email } } "
                                     "pageInfo { hasNextPage endCursor } } }"),
            ("service", keys["app"], f'{{ customer(id: "{cid}") {{ name email phone '
                                     "consents { purpose status } interactions(first: 5) "
                                     "{ edges { node { channel kind occurredAt summary "
                                     "product { name } } } } products { name } } }"),
            ("marketing.email", keys["app"], "{ customers(first: 3) { edges { node { id name "
                                             "phone withheld { field reason } } } } }"),
            ("self_service", keys["app"], f'{{ myDataUses(customerId: "{cid}", first: 5) '
                                          "{ edges { node { at principalName purpose action "
                                          "fields } } } }"),
            ("legal", keys["auditor"], "{ auditVerification { ok lines } }"),
        ):
            typer.echo(_curl(port, key, purpose, query))
        if not no_serve:
            typer.echo("")
            _serve(rt, host=host, port=port, dev=dev)
