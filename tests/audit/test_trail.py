"""AuditTrail: appends, queries, checkpoints, proofs, and failing closed."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pacte.audit import (
    GENESIS,
    AuditTrail,
    Checkpoint,
    leaf_hash,
    verify,
    verify_consistency,
    verify_inclusion,
)
from pacte.audit.canonical import canonical_bytes
from pacte.crypto.signing import SigningKey
from pacte.errors import ConfigError, CorruptStore, InputError, IntegrityError, StorageError

from .conftest import Clock, record

Factory = Callable[..., AuditTrail]


def test_append_assigns_contiguous_seqs_times_and_the_chain(trail_factory: Factory,
                                                            clock: Clock) -> None:
    trail = trail_factory()
    entries = [trail.append(record(i)) for i in range(5)]
    assert [e.seq for e in entries] == [0, 1, 2, 3, 4]
    assert trail.size() == 5
    prev = GENESIS
    import hashlib

    for e in entries:
        doc = {**e.record, "seq": e.seq, "time": e.time}
        assert e.canonical == canonical_bytes(doc)
        # One hash: the chain link and the RFC 6962 leaf of (previous hash || entry).
        assert e.prev_hash == prev and e.leaf_data == prev + e.canonical
        assert e.entry_hash == leaf_hash(prev + e.canonical)
        assert e.entry_hash == hashlib.sha256(b"\x00" + prev + e.canonical).digest()
        assert e.time.endswith("Z") and e.time.startswith("2026-11-01T09:00:00.")
        prev = e.entry_hash
    got = trail.get(3)
    assert got is not None and got.record == entries[3].record and got.time == entries[3].time
    assert got.prev_hash == entries[2].entry_hash and got.entry_hash == entries[3].entry_hash
    first = trail.get(0)
    assert first is not None and first.prev_hash == GENESIS
    assert trail.get(99) is None
    assert entries[0].to_json()["record"]["action"] == "customer.read"


def test_append_many_is_one_transaction(trail_factory: Factory) -> None:
    trail = trail_factory(2)
    out = trail.append_many([record(2), record(3)])
    assert [e.seq for e in out] == [2, 3]
    with pytest.raises(IntegrityError):
        trail.append_many([record(4), {"bad": b"bytes"}])
    assert trail.size() == 4
    assert trail.append_many([]) == []


@pytest.mark.parametrize("bad", [
    {"action": "read", "fields": [b"email"]},
    {"action": "read", "extra": {"ct": b"\x00\x01"}},
    {"action": "read", "seq": 7},
    {"action": "read", "time": "now"},
    {"action": "read", "subjects": "s_1"},
    {"action": "read", "subjects": ["s_1", 2]},
    {"action": "read", "x": float("nan")},
])
def test_records_that_are_not_plain_json_are_refused(trail_factory: Factory,
                                                     bad: dict[str, Any]) -> None:
    trail = trail_factory(1)
    with pytest.raises(IntegrityError):
        trail.append(bad)
    assert trail.size() == 1
    assert verify(trail).ok


@pytest.mark.parametrize("blocks_per_query", [1, 64])
def test_entries_filters_and_pages(trail_factory: Factory, clock: Clock,
                                   monkeypatch: pytest.MonkeyPatch,
                                   blocks_per_query: int) -> None:
    import importlib

    monkeypatch.setattr(importlib.import_module("pacte.audit.reading"), "_BLOCKS_PER_QUERY",
                        blocks_per_query)
    trail = trail_factory()
    n = 2600  # two indexed blocks of the subject index and an unindexed tail
    for i in range(n):
        trail.append(record(i, subjects=[f"s_{i % 7}", "s_all"],
                            purpose="marketing" if i % 2 else "service",
                            principal="pr_crm" if i % 3 else "pr_shop"))
    by_subject = trail.entries(subject="s_3", limit=1000)
    assert [e.seq for e in by_subject] == [i for i in range(n) if i % 7 == 3]
    seqs: list[int] = []
    after: int | None = None
    while page := trail.entries(subject="s_all", after_seq=after, limit=250):
        seqs += [e.seq for e in page]
        after = page[-1].seq
    assert seqs == list(range(n))
    # A page that starts inside a block, and one that starts in the tail.
    assert [e.seq for e in trail.entries(subject="s_2", after_seq=1500, limit=3)] == [
        1507, 1514, 1521]
    assert [e.seq for e in trail.entries(subject="s_2", after_seq=2590, limit=5)] == [2592, 2599]
    both = trail.entries(subject="s_3", purpose="marketing", principal="pr_shop", limit=1000)
    assert [e.seq for e in both] == [i for i in range(n)
                                      if i % 7 == 3 and i % 2 and not i % 3]
    assert [e.seq for e in trail.entries(after_seq=n - 3)] == [n - 2, n - 1]
    assert trail.entries(subject="s_nobody") == []
    t10, t20 = trail.get(10), trail.get(20)
    assert t10 is not None and t20 is not None
    window = trail.entries(since=t10.time, until=t20.time, limit=100)
    assert [e.seq for e in window] == list(range(10, 20))
    with pytest.raises(InputError):
        trail.entries(limit=-1)


def test_checkpoints_every_n_entries_and_on_close(tmp_path: Path, signer: SigningKey) -> None:
    trail = AuditTrail.open(tmp_path / "a.db", signer=signer, checkpoint_every=10,
                            checkpoint_seconds=3600, now=Clock())
    for i in range(25):
        trail.append(record(i))
    cp = trail.latest_checkpoint()
    assert cp is not None and cp.size == 20 and cp.verify(signer.public_key)
    trail.close()
    trail = AuditTrail.open(tmp_path / "a.db", signer=signer, now=Clock())
    cp = trail.latest_checkpoint()
    assert cp is not None and cp.size == 25  # close() signed the tail
    report = verify(trail)
    assert report.ok and report.checkpoints_valid == 3
    trail.close()


def test_checkpoints_when_time_has_passed(tmp_path: Path, signer: SigningKey) -> None:
    clock = Clock()
    trail = AuditTrail.open(tmp_path / "a.db", signer=signer, checkpoint_every=1000,
                            checkpoint_seconds=60, now=clock)
    trail.append(record(0))
    assert trail.latest_checkpoint() is None
    clock.advance(seconds=61)
    trail.append(record(1))
    cp = trail.latest_checkpoint()
    assert cp is not None and cp.size == 2
    trail.append(record(2))
    assert trail.latest_checkpoint() == cp  # not due again yet
    trail.close()


def test_export_and_parse_a_checkpoint(trail_factory: Factory, signer: SigningKey) -> None:
    trail = trail_factory(3)
    doc = trail.export_checkpoint()
    cp = Checkpoint.from_json(doc)
    assert cp.size == 3 and cp.verify() and cp.verify(signer.public_key)
    assert not cp.verify(SigningKey.generate().public_key)
    assert cp == trail.checkpoint()  # nothing new: the same checkpoint
    for broken in ({**doc, "type": "other"}, {**doc, "size": -1}, {**doc, "root": "!!"},
                   {**doc, "head": "AAAA"}):
        with pytest.raises((ValueError, KeyError, TypeError)):
            Checkpoint.from_json(broken)
    forged = Checkpoint.from_json({**doc, "size": 2})
    assert not forged.verify()


def test_inclusion_and_consistency_proofs_verify_against_checkpoints(
        trail_factory: Factory) -> None:
    trail = trail_factory(37)
    cp1 = trail.checkpoint()
    for i in range(37, 50):
        trail.append(record(i))
    cp2 = trail.checkpoint()
    for seq in (0, 17, 36):
        entry = trail.get(seq)
        assert entry is not None
        proof = trail.inclusion_proof(seq, cp1.size)
        assert verify_inclusion(leaf_hash(entry.leaf_data), seq, cp1.size, proof, cp1.root)
        assert not verify_inclusion(entry.entry_hash, seq, cp1.size, proof[:-1], cp1.root)
        other = trail.get(seq + 1)
        assert other is not None
        assert not verify_inclusion(other.entry_hash, seq, cp1.size, proof, cp1.root)
    proof = trail.consistency_proof(cp1.size, cp2.size)
    assert verify_consistency(cp1.size, cp2.size, cp1.root, cp2.root, proof)
    assert not verify_consistency(cp1.size, cp2.size, cp1.root, cp2.root, [*proof, proof[0]])
    with pytest.raises(InputError):
        trail.inclusion_proof(50, 50)
    with pytest.raises(InputError):
        trail.consistency_proof(0, 10)
    with pytest.raises(IntegrityError):
        trail.inclusion_proof(1, 500)


def test_without_a_signer_there_are_no_checkpoints(tmp_path: Path) -> None:
    trail = AuditTrail.open(tmp_path / "a.db", signer=None, checkpoint_every=2, now=Clock())
    for i in range(5):
        trail.append(record(i))
    assert trail.latest_checkpoint() is None
    with pytest.raises(ConfigError):
        trail.checkpoint()
    assert verify(trail).ok
    trail.close()


def test_a_read_only_trail_refuses_appends_and_writes_nothing(trail_factory: Factory,
                                                               tmp_path: Path) -> None:
    trail_factory(4).close()
    ro = AuditTrail.open(tmp_path / "audit.db", signer=None, read_only=True, now=Clock())
    with pytest.raises(StorageError):
        ro.append(record(9))
    assert ro.size() == 4
    assert verify(ro).ok
    ro.close()


class _FailingConnection:
    """Delegates to a real connection, but the INSERT (or COMMIT) fails like a full disk."""

    def __init__(self, db: sqlite3.Connection, fail_on: str) -> None:
        self._db = db
        self._fail_on = fail_on

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith(self._fail_on):
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


@pytest.mark.parametrize("other_appended", [False, True])
@pytest.mark.parametrize("fail_on", ["INSERT INTO entries", "COMMIT", "BEGIN"])
def test_a_failing_connection_raises_and_writes_nothing(trail_factory: Factory,
                                                        tmp_path: Path, fail_on: str,
                                                        other_appended: bool) -> None:
    trail = trail_factory(3)
    size = 3
    if other_appended:
        # Another process appends: this one's cached head is stale, so its next append
        # takes the full path (BEGIN IMMEDIATE, re-read the head, COMMIT).
        with AuditTrail.open(tmp_path / "audit.db", signer=None, now=Clock()) as other:
            other.append(record(99))
        size = 4
    real = trail._db
    trail._db = _FailingConnection(real, fail_on)  # type: ignore[assignment]
    if fail_on != "INSERT INTO entries" and not other_appended:
        # The common case is one autocommitted INSERT: no BEGIN or COMMIT to fail.
        assert trail.append(record(3)).seq == size
        size += 1
    else:
        with pytest.raises(StorageError):
            trail.append(record(3))
    trail._db = real
    assert trail.size() == size
    assert not real.in_transaction
    assert trail.append(record(3)).seq == size  # and the next append chains correctly
    assert verify(trail).ok


def test_a_failing_signer_fails_the_append(trail_factory: Factory,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    trail = trail_factory(9, every=10)

    def broken(message: bytes) -> bytes:
        raise RuntimeError("HSM unavailable")

    monkeypatch.setattr(SigningKey, "sign", lambda self, message: broken(message))
    with pytest.raises(IntegrityError):
        trail.append(record(9))  # the 10th entry makes a checkpoint due
    monkeypatch.undo()
    assert trail.size() == 9


def test_a_stale_head_from_another_writer_is_noticed(tmp_path: Path, signer: SigningKey
                                                     ) -> None:
    a = AuditTrail.open(tmp_path / "a.db", signer=signer, now=Clock())
    b = AuditTrail.open(tmp_path / "a.db", signer=signer, now=Clock())
    a.append(record(0))
    b.append(record(1))
    a.append(record(2))  # a's remembered head is stale: it must re-read it
    b.append(record(3))
    assert [e.seq for e in a.entries(limit=10)] == [0, 1, 2, 3]
    assert verify(a).ok
    a.close()
    b.close()


def test_a_damaged_or_foreign_file_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 200)
    with pytest.raises(CorruptStore):
        AuditTrail.open(junk, signer=None)
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(CorruptStore):
        AuditTrail.open(other, signer=None)
    with pytest.raises(StorageError):
        AuditTrail.open(tmp_path / "absent.db", signer=None, read_only=True)
    with pytest.raises(InputError):
        AuditTrail.open(tmp_path / "x.db", signer=None, checkpoint_every=0)


def test_closed_trail_refuses_work(trail_factory: Factory) -> None:
    trail = trail_factory(1)
    trail.close()
    trail.close()
    with pytest.raises(StorageError):
        trail.append(record(1))
    with pytest.raises(StorageError):
        trail.size()


def test_naive_and_foreign_zone_times_are_stored_as_utc(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    zone = timezone(timedelta(hours=2))
    trail = AuditTrail.open(tmp_path / "a.db", signer=None,
                            now=lambda: datetime(2026, 11, 1, 12, 0, tzinfo=zone))
    assert trail.append(record(0)).time == "2026-11-01T10:00:00.000000Z"
    trail.close()
    trail = AuditTrail.open(tmp_path / "b.db", signer=None,
                            now=lambda: datetime(2026, 11, 1, 12, 0))
    assert trail.append(record(0)).time == "2026-11-01T12:00:00.000000Z"
    trail.close()


def test_a_trail_of_an_older_format_is_refused_by_name_and_left_as_it_is(
        tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditTrail.open(path, signer=None, now=Clock()) as trail:
        trail.append(record(0))
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(CorruptStore, match="audit schema version 1; this pacte reads version 4"):
        AuditTrail.open(path, signer=None)
    assert path.read_bytes() == before


def test_the_log_is_copied_into_the_file_off_the_append_path(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    trail = AuditTrail.open(path, signer=SigningKey.generate(), now=Clock())
    wal = trail._wal
    assert wal is not None and wal.running
    # SQLite's own checkpoint is only a backstop, ten times further off.
    assert trail._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10_000
    for i in range(600):  # wakes the background checkpointer
        trail.append(record(i))
    trail.close()
    assert not wal.running  # stopped with the trail, after the copy it was asked for
    assert wal.copies == 1
    with AuditTrail.open(path, signer=None, read_only=True) as ro:
        assert ro._wal is None  # a reader copies nothing
        assert ro.size() == 600 and verify(ro).ok


def _index_rows(path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT block, subject, seqs FROM subject_blocks"
                          " ORDER BY block, subject").fetchall()


def _index_from_entries(path: Path) -> list[tuple[int, str, str]]:
    """The subject index rebuilt by the general statement, from the entries alone."""
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM subject_blocks")
        db.execute("DELETE FROM meta WHERE key = 'subject_blocks_indexed'")
        size = db.execute("SELECT count(*) FROM entries").fetchone()[0]
        for block in range(size // 1024):
            db.execute("INSERT OR IGNORE INTO subject_blocks (block, subject, seqs)"
                       " SELECT ?1, j.value, group_concat(DISTINCT e.seq) FROM entries e,"
                       " json_each(CAST(e.body AS TEXT), '$.subjects') j"
                       " WHERE e.seq >= ?1 * 1024 AND e.seq < (?1 + 1) * 1024"
                       " AND j.type = 'text' GROUP BY j.value", (block,))
    return _index_rows(path)


def test_the_subject_index_a_writer_remembers_equals_the_one_read_from_the_entries(
        tmp_path: Path, signer: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.db"
    a = AuditTrail.open(path, signer=signer, now=Clock())
    b = AuditTrail.open(path, signer=signer, now=Clock())
    for i in range(1030):  # block 0 written by `a` alone: indexed from memory
        a.append(record(i, subjects=[f"s_{i % 13}", f"s_{i % 13}", "s_all"]))
    for i in range(1030, 2100):  # block 1 interleaved with `b`: from the entries
        (b if i % 500 == 0 else a).append(record(i, subjects=[f"s_{i % 11}"]))
    # Block 2 starts in `a`, then a transaction that wrote entries is rolled back (the
    # checkpoint its last entry makes due cannot be signed).
    for i in range(2100, 2990):
        a.append(record(i, subjects=[f"s_{i % 3}"]))

    def broken(message: bytes) -> bytes:
        raise RuntimeError("HSM unavailable")

    monkeypatch.setattr(SigningKey, "sign", lambda self, message: broken(message))
    with pytest.raises(IntegrityError):
        a.append_many([record(i, subjects=["s_rolled_back"]) for i in range(2990, 3000)])
    monkeypatch.undo()
    # `b` writes exactly the seqs that were rolled back, so `a` then continues from
    # the seq after the last one it had written: only the rollback tells it to forget.
    for i in range(2990, 3000):
        b.append(record(i, subjects=["s_from_b"]))
    for i in range(3000, 3100):
        a.append(record(i, subjects=[f"s_{i % 3}"]))
    a.close()
    b.close()
    remembered = _index_rows(path)
    assert {r[0] for r in remembered} == {0, 1, 2}
    assert ("s_all" in {r[1] for r in remembered if r[0] == 0}
            and "s_rolled_back" not in {r[1] for r in remembered})
    assert remembered == _index_from_entries(path)
