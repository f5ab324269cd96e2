"""The audit trail: verify, checkpoints, traces and reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pacte.cli._common import DataOpt, _dir, audit_app, fail, guarded, opened
from pacte.errors import InputError, IntegrityError, PacteError
from pacte.runtime import signing_public_key


def _print_entries(entries: list[Any]) -> None:
    for e in entries:
        typer.echo(json.dumps(e.to_json() if hasattr(e, "to_json") else e, sort_keys=True))


KeyOpt = Annotated[str | None, typer.Option(
    "--key", help="The signing key to pin: its base64 public key or SHA-256 fingerprint, as "
                  "`pacte audit checkpoint` prints them \\[default: the data directory's "
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
    store: Annotated[str | None, typer.Option(
        "--store", help="Verify the trail every server shares in this Neo4j store "
                        "(neo4j://...) instead of audit.db", show_default=False)] = None,
    signing_key: Annotated[Path | None, typer.Option(
        "--signing-key", help="With --store and without --key: the signing key file whose "
                              "public key to pin", show_default=False)] = None,
) -> None:
    """Verify the audit trail: exit 0 valid, 1 invalid, 2 unreadable.

    Reads only audit.db (and signing.key, unless --key is given), so an auditor can
    check a copy of the file. With --store, every chain of the shared trail in Neo4j
    (docs/scale-out.md), pinned to --key (base64) or the public key of --signing-key.

    Example: pacte audit verify --trusted checkpoint.json --key 3f9a...e1 (fingerprint)
    Example: pacte audit verify --store neo4j://db:7687 --signing-key signing.key
    """
    from pacte.audit import AuditTrail, Checkpoint, verify

    if store is not None:
        _verify_shared(store, key=key, signing_key=signing_key, as_json=as_json)
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
    _verdict(report, as_json=as_json)


def _verify_shared(uri: str, *, key: str | None, signing_key: Path | None,
                   as_json: bool) -> None:
    from pacte.trails import verify_store

    if key is None and signing_key is None:
        fail("no key to pin: give --key or --signing-key", code=2)
    try:
        report = verify_store(uri, key=key, signing_key_file=signing_key)
    except PacteError as exc:
        fail(str(exc), code=2)
    _verdict(report, as_json=as_json)


def _verdict(report: Any, *, as_json: bool) -> None:
    """Print a verification report (JSON or lines) and exit 0 if it is valid, else 1."""
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
        cp = guarded(rt.checkpoint)
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


FormatOpt = Annotated[str, typer.Option(
    "--format", help="json (with its proofs, for machines), text, or html (a printable "
                     "page in plain words)")]


def _check_format(fmt: str) -> None:
    from pacte.console.documents import FORMATS

    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}", code=2)


@audit_app.command("access-report")
def audit_access_report(
    customer: Annotated[str, typer.Option("--customer", help="The customer id")],
    fmt: FormatOpt = "json",
    data: DataOpt = None,
) -> None:
    """The Art. 15 access report for one customer: JSON with inclusion proofs, or for
    the customer in plain words (text or a printable HTML page).

    Example: pacte audit access-report --customer c_0123456789ab > report.json
    """
    from pacte.console.documents import access_report_html, access_report_text

    _check_format(fmt)
    with opened(data) as rt:
        report = guarded(lambda: rt.operator_session("legal").access_report(customer))
        controller = rt.controller
    if fmt == "text":
        typer.echo(access_report_text(report, controller=controller), nl=False)
    elif fmt == "html":
        typer.echo(access_report_html(report, controller=controller))
    else:
        typer.echo(json.dumps(report, indent=2, sort_keys=True, default=str))


@audit_app.command("processing-record")
def audit_processing_record(fmt: FormatOpt = "json", data: DataOpt = None) -> None:
    """The Art. 30 record of processing activities, from the policy (controller, DPO,
    recipients, transfers and retention as set in policy.toml).

    Example: pacte audit processing-record --format html > ropa.html
    """
    from pacte.console.documents import record_html, record_text

    _check_format(fmt)
    with opened(data) as rt:
        record = guarded(lambda: rt.operator_session("legal").record_of_processing())
    if fmt == "text":
        typer.echo(record_text(record))
    elif fmt == "html":
        typer.echo(record_html(record))
    else:
        typer.echo(json.dumps(record, indent=2, sort_keys=True, default=str))

