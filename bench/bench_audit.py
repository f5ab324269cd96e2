"""The audit trail against the raw primitives, measured in one run.

- `audit_append_vs_sqlite_insert`: `AuditTrail.append` of a typical record (canonical
  JSON, one hash, subject index, checkpoints every 1000 signed with Ed25519) over a
  plain SQLite INSERT of the very rows it wrote, with the same durability: WAL, the
  same `synchronous` setting, one `BEGIN IMMEDIATE` transaction per row. Three more
  plain baselines, for the record, as each is a fair reading of "a plain insert": the
  same with the log never copied into the file during the run; the way Python's
  sqlite3 commits by default (`execute(INSERT)` opens a deferred transaction,
  `commit()` ends it); and one autocommitted INSERT statement, the cheapest, which is
  what the trail itself issues.
- `audit_verify_vs_sha256`: speed of `verify()` over N entries relative to a plain
  checksum scan of the same file. verify does everything it does for `pacte audit
  verify`: chain, leaves, Merkle root, frontier and signature of every checkpoint under
  the pinned key, the subject index checked block by block against the index heads
  the checkpoints sign (its rows hashed by SQLite order, on a second connection in a
  thread beside the chain pass; blocks no head covers recomputed from the entries),
  meta and the schema (which defines the columns); and the trail ends with one index
  checkpoint (as an access report makes), whose subject map verify recomputes. The
  CPU time of each arm is reported beside its wall time (`*_cpu_s`: verify's
  threads together, the baseline's one), since wall time on a busy machine says
  little. The
  baseline: reading every entry's bytes in the same batches as
  verify (`pacte.audit.verify.BATCH`, which suits both) and hashing each once with
  hashlib.sha256. The baseline reads only the bytes; verify
  also has to check the two stored hashes of every entry. Best of `repeats` each.
- `audit_verify_vs_sha256_in_memory`: the same, with the baseline's bytes already in
  memory (no read), for the record.

Run alone with `python -m bench.bench_audit [--quick]`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pacte.audit import AuditTrail, verify
from pacte.audit.verify import BATCH
from pacte.crypto.signing import SigningKey

__all__ = ["run"]

# The columns the trail stores (time, principal and purpose it computes on reading).
_PLAIN_SCHEMA = """
CREATE TABLE entries (seq INTEGER PRIMARY KEY, body BLOB NOT NULL, entry_hash BLOB NOT NULL)
"""
_PLAIN_INSERT = "INSERT INTO entries (seq, body, entry_hash) VALUES (?, ?, ?)"


def _record(i: int) -> dict[str, object]:
    return {
        "action": "customer.read",
        "principal": "pr_0c1a2b3c4d5e",
        "principal_name": "crm",
        "role": "app",
        "purpose": "service",
        "legal_basis": "contract",
        "subjects": [f"s_{i % 997:04x}a1b2c3d4e5f60718"],
        "fields": ["email", "name", "phone"],
        "outcome": "ok",
        "policy_version": "p_5f1e2d3c4b5a",
        "request_id": f"{i:032x}",
    }


def _clock() -> Callable[[], datetime]:
    t = [datetime(2026, 11, 1, tzinfo=UTC)]

    def now() -> datetime:
        t[0] += timedelta(microseconds=250)
        return t[0]

    return now


def _plain_db(path: Path, *, autocheckpoint: int | None) -> sqlite3.Connection:
    """A plain table; statements autocommit until `_insert_each` decides otherwise."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if autocheckpoint is not None:
        db.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")
    db.execute(_PLAIN_SCHEMA)
    return db


def _insert_each(db: sqlite3.Connection, rows: list[Any], *, how: str = "immediate"
                 ) -> float:
    """Insert `rows` one transaction each: `immediate` (BEGIN IMMEDIATE, INSERT,
    COMMIT), `python` (Python's default: the INSERT opens it, commit() ends it) or
    `autocommit` (the INSERT statement alone)."""
    t0 = time.perf_counter()
    if how == "immediate":
        for row in rows:
            db.execute("BEGIN IMMEDIATE")
            db.execute(_PLAIN_INSERT, row)
            db.execute("COMMIT")
    elif how == "python":
        db.isolation_level = "DEFERRED"  # what the default "" means
        for row in rows:
            db.execute(_PLAIN_INSERT, row)
            db.commit()
        db.isolation_level = None
    else:
        for row in rows:
            db.execute(_PLAIN_INSERT, row)
    return time.perf_counter() - t0


def _bench_append(root: Path, n: int, block: int) -> list[dict[str, Any]]:
    """Blocks of appends and of plain inserts of the same rows, interleaved.

    Adjacent blocks see the same machine load, so the median of their ratios is
    steady even on a busy machine, where separate long runs are not. The baselines are
    in the module docstring; with SQLite's defaults every thousandth commit copies the
    log into the file (the trail does that copy in a background thread instead).
    """
    # The real clock, as in production: reading it is part of an append's cost.
    trail = AuditTrail.open(root / "append.db", signer=SigningKey.generate())
    reader = sqlite3.connect(root / "append.db")
    arms = {"plain": (_plain_db(root / "plain.db", autocheckpoint=None), "immediate"),
            "bare": (_plain_db(root / "bare.db", autocheckpoint=0), "immediate"),
            "python": (_plain_db(root / "python.db", autocheckpoint=None), "python"),
            "auto": (_plain_db(root / "auto.db", autocheckpoint=None), "autocommit")}
    ratios: dict[str, list[float]] = {arm: [] for arm in arms}
    plain_us: dict[str, list[float]] = {arm: [] for arm in arms}
    audit_us: list[float] = []
    for start in range(0, n, block):
        records = [_record(i) for i in range(start, start + block)]
        t0 = time.perf_counter()
        for rec in records:
            trail.append(rec)
        t_audit = time.perf_counter() - t0
        rows = reader.execute(
            "SELECT seq, body, entry_hash FROM entries WHERE seq >= ? ORDER BY seq",
            (start,)).fetchall()
        audit_us.append(t_audit / block * 1e6)
        for arm, (db, how) in arms.items():
            t_plain = _insert_each(db, rows, how=how)
            ratios[arm].append(t_audit / t_plain)
            plain_us[arm].append(t_plain / block * 1e6)
    trail.close()
    reader.close()
    for db, _ in arms.values():
        db.close()
    common = {"unit": "x", "size": f"{n} entries",
              "numerator": "AuditTrail.append (one autocommitted INSERT; subject index and "
                           "signed checkpoint every ~1000; log copied by a background thread)",
              "numerator_us": round(statistics.median(audit_us), 2)}
    described = [
        ("audit_append_vs_sqlite_insert", "plain", "<= 2",
         "plain SQLite INSERT of the same row (WAL, synchronous=NORMAL, SQLite's defaults, "
         "one BEGIN IMMEDIATE transaction per row)"),
        ("audit_append_vs_sqlite_insert_no_log_copy", "bare", "informational",
         "the same plain INSERT with the log never copied during the run "
         "(wal_autocheckpoint=0)"),
        ("audit_append_vs_sqlite_insert_python_commit", "python", "informational",
         "the same INSERT committed as Python's sqlite3 does by default (the INSERT opens "
         "a deferred transaction, commit() ends it)"),
        ("audit_append_vs_sqlite_autocommit_insert", "auto", "informational",
         "one autocommitted INSERT statement of the same row (the statement the trail "
         "itself issues)"),
    ]
    return [{"name": name, "value": round(statistics.median(ratios[arm]), 3), **common,
             "target": target, "denominator": denominator,
             "denominator_us": round(statistics.median(plain_us[arm]), 2)}
            for name, arm, target, denominator in described]


def _bench_verify(root: Path, n: int, repeats: int) -> list[dict[str, Any]]:
    path = root / "verify.db"
    signer = SigningKey.generate()
    trail = AuditTrail.open(path, signer=signer, now=_clock())
    chunk = 1000  # checkpoint_every: each chunk closes with a signed checkpoint
    for start in range(0, n, chunk):
        trail.append_many([_record(i) for i in range(start, min(n, start + chunk))])
    trail.checkpoint(index=True)  # what one access report signs
    trail.close()
    trail = AuditTrail.open(path, signer=None)
    sha = hashlib.sha256
    copy = sha().copy
    best_verify = best_scan = best_copy = best_mem = float("inf")
    cpu_verify = cpu_scan = float("inf")
    report = None
    uri = f"{path.resolve().as_uri()}?mode=ro"
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        report = verify(trail, public_key=signer.public_key)
        best_verify = min(best_verify, time.perf_counter() - t0)
        cpu_verify = min(cpu_verify, time.process_time() - c0)
        # The baseline keeps nothing between batches (keeping a million bodies and
        # freeing the last run's inside the timing would slow it, to verify's profit).
        db = sqlite3.connect(uri, uri=True)
        t0, c0 = time.perf_counter(), time.process_time()
        for start in range(0, n, BATCH):
            batch = [r[0] for r in db.execute(
                "SELECT body FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq",
                (start, start + BATCH))]
            _ = [sha(b).digest() for b in batch]
        best_scan = min(best_scan, time.perf_counter() - t0)
        cpu_scan = min(cpu_scan, time.process_time() - c0)
        # The same, hashing as pacte does (a copied state instead of a constructor call).
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            batch = [r[0] for r in db.execute(
                "SELECT body FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq",
                (start, start + BATCH))]
            digests = []
            for b in batch:  # inline: a helper call per entry would slow the baseline
                h = copy()
                h.update(b)
                digests.append(h.digest())
        best_copy = min(best_copy, time.perf_counter() - t0)
        db.close()
    db = sqlite3.connect(uri, uri=True)
    bodies = [r[0] for r in db.execute("SELECT body FROM entries ORDER BY seq")]
    db.close()
    for _ in range(repeats):
        t0 = time.perf_counter()
        _ = [sha(b).digest() for b in bodies]
        best_mem = min(best_mem, time.perf_counter() - t0)
    del bodies
    trail.close()
    assert report is not None and report.ok, "the benchmark trail must verify"
    common = {"unit": "x", "numerator": "verify(trail): chain, leaves, Merkle roots, frontiers "
              f"and pinned-key signatures of {report.checkpoints_total} checkpoints, entry "
              "columns, subject index (against the signed index heads), one subject map, "
              "meta, schema", "target": ">= 0.4",
              "size": f"{n} entries", "numerator_s": round(best_verify, 3),
              "numerator_cpu_s": round(cpu_verify, 3)}
    return [
        {"name": "audit_verify_vs_sha256", "value": round(best_scan / best_verify, 3),
         **common,
         "denominator": "read every entry from the same file and hashlib.sha256 it once",
         "denominator_s": round(best_scan, 3), "denominator_cpu_s": round(cpu_scan, 3)},
        {"name": "audit_verify_vs_sha256_copied_state",
         "value": round(best_copy / best_verify, 3), **common, "target": "informational",
         "denominator": "the same read, each entry hashed once from a copied empty "
                        "SHA-256 state (the way verify calls hashlib)",
         "denominator_s": round(best_copy, 3)},
        {"name": "audit_verify_vs_sha256_in_memory", "value": round(best_mem / best_verify, 3),
         **common, "target": "informational",
         "denominator": "hashlib.sha256 of every entry's bytes, already in memory",
         "denominator_s": round(best_mem, 3)},
    ]


def run(quick: bool) -> list[dict[str, Any]]:
    append_n = 4_000 if quick else 40_000
    verify_n = 20_000 if quick else 1_000_000
    repeats = 3
    with tempfile.TemporaryDirectory(prefix="pacte-bench-audit-") as tmp:
        root = Path(tmp)
        return [*_bench_append(root, append_n, 200), *_bench_verify(root, verify_n, repeats)]


def main() -> None:
    for record in run(quick="--quick" in sys.argv[1:]):
        print(json.dumps(record))


if __name__ == "__main__":
    main()
