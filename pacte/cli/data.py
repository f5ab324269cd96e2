"""Commands that fill, describe and move the data directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pacte.cli._common import (
    DataOpt,
    JsonOpt,
    _dir,
    app,
    emit_json,
    fail,
    guarded,
    keys_app,
    opened,
)
from pacte.errors import NotFound, PacteError
from pacte.runtime import Pacte


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
    planted_truth: Annotated[Path | None, typer.Option(
        "--planted-truth", help="Plant learnable patterns (worn devices, purchases that "
        "follow others, usage changes before a churn) and write what will be right per "
        "customer to this JSON-lines file, outside the data directory")] = None,
    data: DataOpt = None,
) -> None:
    """Fill the store with reproducible synthetic customers, interactions and consents.

    Example: pacte seed --customers 10000 --seed 7
    Example: pacte seed --customers 1000 --sources ./exports
    Example: pacte seed --customers 2000 --planted-truth ../truth.jsonl
    """
    if customers < 1 or customers > 10_000_000:
        fail("--customers must be between 1 and 10000000", code=2)
    truth: dict[str, set[tuple[str, str]]] | None = None
    if planted_truth is not None:
        if sources is not None:
            fail("--planted-truth and --sources cannot be combined", code=2)
        if planted_truth.resolve().is_relative_to(_dir(data).resolve()):
            fail("the planted truth must be kept apart: write it outside the data directory",
                 code=2)
        truth = {}
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
        stats = guarded(lambda: rt.seed(customers, seed=seed, truth=truth,
                                        progress=lambda n: bar.update(task, completed=n)))
    typer.echo(f"seeded {stats['customers']} customers, {stats['interactions']} interactions")
    if planted_truth is not None and truth is not None:
        try:
            with planted_truth.open("w", encoding="utf-8") as out:
                for cid, actions in sorted(truth.items()):
                    for kind, target in sorted(actions):
                        out.write(json.dumps({"customer": cid, "kind": kind,
                                              "target": target}) + "\n")
        except OSError as exc:
            fail(f"cannot write {planted_truth}: {exc.strerror}")
        typer.echo(f"planted truth (not in the store): {planted_truth}")


@app.command()
def ingest(
    files: Annotated[list[str], typer.Argument(
        help="CSV or JSON-lines files ('-' for standard input)", show_default=False)],
    source: Annotated[str | None, typer.Option(
        "--source", help="A name for the source (audit trail, reject file)")] = None,
    mapping: Annotated[Path | None, typer.Option(
        "--mapping", help="TOML file: which column is which field (docs/ingest.md)")] = None,
    format: Annotated[str | None, typer.Option(
        "--format", help="csv or jsonl \\[default: by extension or content]")] = None,
    max_errors: Annotated[int | None, typer.Option(
        "--max-errors", help="Stop after this many rejected rows")] = None,
    data: DataOpt = None,
    as_json: JsonOpt = False,
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
    if as_json:
        emit_json(report.to_json())
    else:
        typer.echo(report.summary())
    if report.rejected:
        raise typer.Exit(1)


@app.command()
def stats(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Count nodes per kind and edges per type, one `kind: count` per line.

    Example: pacte stats --json
    """
    with opened(data) as rt:
        counts = guarded(lambda: rt.operator_session().stats())
    if as_json:
        emit_json(counts)
        return
    for kind, n in counts.items():
        typer.echo(f"{kind}: {n}")


@app.command()
def purposes(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """List the purposes of the policy, with legal basis and categories.

    Example: pacte purposes --json
    """
    with opened(data) as rt:
        session = rt.operator_session()
        listed = guarded(session.purposes)
        version = rt.policy_version
    if as_json:
        emit_json({"policy_version": version, "purposes": [
            {"id": p.id, "parent": p.parent, "legal_basis": p.legal_basis,
             "needs_consent": p.needs_consent, "categories": list(p.categories),
             "retention_days": p.retention_days, "description": p.description}
            for p in listed]})
        return
    typer.echo(f"policy version {version}")
    for p in listed:
        cats = ", ".join(p.categories) or "(no personal fields)"
        typer.echo(f"{p.id}: {p.legal_basis}; may use {cats}")


@app.command()
def erase(customer_id: str,
          yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")
                         ] = False,
          data: DataOpt = None) -> None:
    """Crypto-shred and delete a customer at their request; prints the signed receipt.

    Asks first (the keys are destroyed: nothing brings the customer back); `--yes` skips
    the question. An id already erased is told apart from one that never existed.

    Example: pacte erase c_0123456789ab --yes
    """
    with opened(data) as rt:
        if not yes:
            typer.confirm(f"erase {customer_id} for good? Its keys are destroyed; this "
                          "cannot be undone", abort=True, err=True)
        try:
            receipt = rt.operator_session("self_service").erase(customer_id)
        except NotFound:
            erased = guarded(lambda: _erasure_on_record(rt, customer_id))
            fail(f"{customer_id} was already erased ({erased})" if erased
                 else f"no customer {customer_id}")
        except PacteError as exc:
            fail(str(exc))
    typer.echo(json.dumps(receipt, indent=2, sort_keys=True))


def _erasure_on_record(rt: Pacte, customer_id: str) -> str | None:
    """When and in which audit entry the trail says this customer was erased, if it does."""
    for entry in rt.operator_session("legal").trace(customer_id):
        record = entry.record
        if record.get("action") == "customer.erase" and record.get("outcome") == "ok":
            return f"on {entry.time}, audit entry {entry.seq}"
    return None


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
    batch: Annotated[int, typer.Option("--batch", min=1, max=100_000,
                                       help="Records per written batch")] = 1000,
    data: DataOpt = None,
) -> None:
    """Copy the graph to another store (ciphertext as is); to Neo4j, also the wrapped
    data keys (never the key-encryption key) and the audit trail.

    Resumable: run it again after an interruption. Verified by counts and checksums,
    the trail by verifying it in Neo4j, the keys by unwrapping every customer's there.

    Example: pacte migrate --to neo4j://neo4j:secret@db.internal:7687 --switch
    """
    def progress(phase: str, n: int) -> None:
        if n % 50_000 == 0 or n <= batch:  # the first batch of each part, then now and then
            typer.echo(f"  {phase}: {n} copied", err=True)

    with opened(data) as rt:
        report = guarded(lambda: rt.migrate(to, switch=switch, batch=batch,
                                            progress=progress))
    counts = ", ".join(f"{k}: {v}" for k, v in report.counts.items())
    typer.echo(f"migrated and verified ({counts}; checksum {report.checksum[:16]})")
    if report.keys is not None:
        typer.echo(f"keys: {report.keys} wrapped data keys in Neo4j")
    if report.trail is not None:
        typer.echo(f"audit trail: {report.trail} entries in the shared trail, verified")
    if report.decrypted is not None:
        typer.echo(f"read through a server attached to it: {report.decrypted} customers")
    if switch:
        typer.echo(f"the data directory now uses {to.split('@')[-1]}")

