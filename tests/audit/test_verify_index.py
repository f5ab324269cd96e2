"""The subject index and subject maps as verify recomputes them (pacte.audit.derived).

The index is checked on a second connection, in a thread beside the walk: both must
read the same snapshot, and the verdict must not depend on which way it ran.
"""

from __future__ import annotations

import importlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pacte.audit import AuditTrail, verify
from pacte.audit.derived import twin
from pacte.audit.verify import MODIFIED
from pacte.crypto.signing import SigningKey

from .conftest import Clock, record
from .test_tamper_matrix import CASES, _build

SIGNER = SigningKey.generate()
_verify_module = importlib.import_module("pacte.audit.verify")


def _trail(path: Path, subjects: Any, n: int = 1100) -> None:
    trail = AuditTrail.open(path, signer=SIGNER, checkpoint_every=500, now=Clock())
    for i in range(n):
        trail.append(record(i, subjects=subjects(i)))
    trail.checkpoint(index=True)
    trail.close()


def _edit(path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    db = sqlite3.connect(path)
    db.execute(sql, params)
    db.commit()
    db.close()


def _verify(path: Path) -> Any:
    trail = AuditTrail.open(path, signer=None, read_only=True, for_verify=True)
    try:
        return verify(trail, public_key=SIGNER.public_key)
    finally:
        trail.close()


class _Racing(sqlite3.Connection):
    """A connection whose first read lets another process commit right after it."""

    path: Path
    raced = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        cursor = super().execute(sql, *args)  # this connection's snapshot starts here
        if sql.startswith("SELECT max(seq)") and not type(self).raced:
            type(self).raced += 1
            writer = AuditTrail.open(self.path, signer=None, now=Clock())
            writer.append(record(9999))
            writer.close()
        return cursor


def test_the_twin_reads_the_snapshot_of_the_walk_even_when_a_commit_slips_in(
        tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _trail(path, lambda i: [f"s_{i % 3}"], n=20)
    _Racing.path = path
    db = sqlite3.connect(path, isolation_level=None, factory=_Racing)
    db.execute("BEGIN")
    other = twin(db, path, first_read="SELECT max(seq) FROM entries")
    assert other is not None and _Racing.raced == 1
    # The commit came after the walk's snapshot, before the twin's: both started again.
    seen = [c.execute("SELECT max(seq) FROM entries").fetchone()[0] for c in (db, other)]
    assert seen == [20, 20]
    other.close()
    db.close()


def test_an_index_pair_listed_twice_is_found_when_the_entry_names_the_subject_twice(
        tmp_path: Path) -> None:
    """One entry naming a subject twice makes one pair: the fast check must not let a
    stored row listing it twice through (see derived._FAST)."""
    path = tmp_path / "audit.db"
    _trail(path, lambda i: ["s_a", "s_a"] if i == 5 else [f"s_{i % 3}"])
    assert _verify(path).ok
    _edit(path, "UPDATE subject_blocks SET seqs = '5,5' WHERE block = 0 AND subject = 's_a'")
    report = _verify(path)
    assert (report.reason, report.table, report.block) == (MODIFIED, "subject_blocks", 0)


def test_seqs_stored_out_of_order_are_the_same_pairs_and_the_map_still_checks(
        tmp_path: Path) -> None:
    """Readers sort the seqs, so another order is no damage; the subject map signed at
    the end is then made from the entries alone and still matches."""
    path = tmp_path / "audit.db"
    _trail(path, lambda i: [f"s_{i % 3}"])
    db = sqlite3.connect(path)
    seqs = db.execute("SELECT seqs FROM subject_blocks WHERE block = 0 AND subject = 's_1'"
                      ).fetchone()[0]
    db.close()
    reversed_seqs = ",".join(reversed(seqs.split(",")))
    _edit(path, "UPDATE subject_blocks SET seqs = ? WHERE block = 0 AND subject = 's_1'",
          (reversed_seqs,))
    assert _verify(path).ok


_SERIAL = [c for c in CASES if c[0] in ("subject_blocks", "index_checkpoints", "meta")]


@pytest.mark.parametrize(("table", "how", "edits", "which", "expected"), _SERIAL,
                         ids=[f"{c[0]}-{c[1]}".replace(" ", "_") for c in _SERIAL])
def test_the_verdict_is_the_same_without_the_second_connection(
        backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, how: str,
        edits: Any, which: str | None, expected: tuple[str, str, int | None, int | None]
        ) -> None:
    """When no twin can be had, the index is checked on the walk's own connection."""
    built = _build(backend, SIGNER)
    monkeypatch.setattr(_verify_module, "twin", lambda *a, **k: None)
    trusted = None if which is None else built[which]
    assert _run_verify_with(backend, trusted).ok
    backend.tamper(*(edits(backend, built) if callable(edits) else edits))
    report = _run_verify_with(backend, trusted)
    assert (report.ok, report.reason, report.table, report.first_bad, report.block) == (
        False, *expected), report.detail


def _run_verify_with(backend: Any, trusted: Any) -> Any:
    trail = backend.open()
    try:
        return verify(trail, trusted=trusted, public_key=SIGNER.public_key)
    finally:
        trail.close()


def test_a_storage_error_in_the_walk_stops_the_index_thread_before_its_connection_closes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from pacte.errors import CorruptStore

    path = tmp_path / "audit.db"
    _trail(path, lambda i: [f"s_{i % 3}"], n=3000)

    def broken(self: Any) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(_verify_module._Verifier, "_start", broken)
    with pytest.raises(CorruptStore):
        _verify(path)
    assert not [t for t in threading.enumerate() if t.name == "pacte-verify-index"]


def test_blocks_under_a_signed_index_head_are_hashed_not_recomputed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each checkpoint signs the index chain (pacte.audit.index): verify recomputes from
    the entries only the blocks no signed head covers, or a stretch that no longer
    hashes to what was signed."""
    path = tmp_path / "audit.db"
    _trail(path, lambda i: [f"s_{i % 3}"], n=3100)  # blocks 0-2, signed every 500 entries
    derived = importlib.import_module("pacte.audit.derived")
    recomputed: list[int] = []
    check_block = derived.IndexCheck._check_block

    def counting(self: Any, block: int) -> Any:
        recomputed.append(block)
        return check_block(self, block)

    monkeypatch.setattr(derived.IndexCheck, "_check_block", counting)
    assert _verify(path).ok and recomputed == []
    _edit(path, "UPDATE subject_blocks SET seqs = '1025' WHERE block = 1 AND subject = 's_2'")
    report = _verify(path)
    assert (report.reason, report.table, report.block) == (MODIFIED, "subject_blocks", 1)
    assert recomputed == [1]  # the stretch between the heads signed around it
