"""Several processes appending at once leave one unforked, contiguous, verifiable chain."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from pacte.audit import AuditEntry, AuditTrail, verify
from pacte.crypto.signing import SigningKey

from .conftest import Clock, record

PROCESSES = 4
APPENDS = 200


def _appender(path: str, key_path: str, worker: int) -> None:
    trail = AuditTrail.open(path, signer=SigningKey.load(Path(key_path)), checkpoint_every=50,
                            now=Clock())
    for i in range(APPENDS):
        rec = record(i, principal=f"pr_worker{worker}")
        rec["request_id"] = f"w{worker}-{i}"
        trail.append(rec)
    trail.close()


def test_concurrent_appenders_never_fork_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    key_path = tmp_path / "signing.key"
    SigningKey.create(key_path)
    AuditTrail.open(path, signer=None).close()  # created once, then opened by everyone
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_appender, args=(str(path), str(key_path), w))
             for w in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    trail = AuditTrail.open(path, signer=None, read_only=True)
    total = PROCESSES * APPENDS
    assert trail.size() == total
    entries: list[AuditEntry] = []
    after = None
    while len(entries) < total:
        page = trail.entries(after_seq=after, limit=500)
        entries += page
        after = page[-1].seq
    assert [e.seq for e in entries] == list(range(total))
    assert {str(e.record["request_id"]) for e in entries} == {
        f"w{w}-{i}" for w in range(PROCESSES) for i in range(APPENDS)}
    for w in range(PROCESSES):  # each writer's own entries stay in its order
        mine = [int(str(e.record["request_id"]).split("-")[1]) for e in entries
                if e.record["principal"] == f"pr_worker{w}"]
        assert mine == list(range(APPENDS))
    report = verify(trail, public_key=SigningKey.load(key_path).public_key)
    assert report.ok, report.lines()
    assert report.checkpoints_valid >= total // 50
    trail.close()
