"""G7: tampering with the stored file is caught, and the first bad entry is named.

Each case edits the SQLite file directly, as an attacker with file access would.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacte.audit import AuditTrail, Checkpoint, verify
from pacte.audit.verify import (
    BAD_SIGNATURE,
    MISSING,
    MODIFIED,
    NOT_EXTENSION,
    REORDERED,
    TRUNCATED,
    UNTRUSTED_KEY,
)
from pacte.crypto.signing import SigningKey

from .conftest import Clock, make_trail

SIGNER = SigningKey.generate()
_COLS = "time, principal, purpose, body, entry_hash"
_settings = settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


def _build(path: Path, n: int, every: int = 1000) -> None:
    make_trail(path, n=n, signer=SIGNER, every=every).close()  # close() signs the tail


def _edit(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    db = sqlite3.connect(path)
    for sql, params in statements:
        db.execute(sql, params)
    db.commit()
    db.close()


def _verify(path: Path, **kw: object) -> tuple[bool, int | None, str | None]:
    trail = AuditTrail.open(path, signer=None, read_only=True)
    try:
        r = verify(trail, **kw)  # type: ignore[arg-type]
    finally:
        trail.close()
    return r.ok, r.first_bad, r.reason


sizes = st.integers(min_value=2, max_value=40)


@_settings
@given(data=st.data(), n=sizes, every=st.sampled_from([3, 8, 1000]))
def test_a_modified_entry_is_named(data: st.DataObject, n: int, every: int) -> None:
    k = data.draw(st.integers(0, n - 1))
    how = data.draw(st.sampled_from(["field", "hash", "prev", "text"]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        _build(path, n, every)
        if how == "field":
            row = sqlite3.connect(path).execute("SELECT body FROM entries WHERE seq = ?",
                                                (k,)).fetchone()
            doc = json.loads(row[0])
            doc["purpose"] = "marketing"  # a plausible lie, still canonical JSON
            body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
            _edit(path, ("UPDATE entries SET body = ? WHERE seq = ?", (body, k)))
        elif how == "hash":
            _edit(path, ("UPDATE entries SET entry_hash = zeroblob(32) WHERE seq = ?", (k,)))
        elif how == "prev":
            # The entry's own hash recomputed over a forged link: the chain breaks here.
            db = sqlite3.connect(path)
            body = db.execute("SELECT body FROM entries WHERE seq = ?", (k,)).fetchone()[0]
            db.close()
            forged = hashlib.sha256(b"\x00" + bytes(32) + body).digest()
            _edit(path, ("UPDATE entries SET entry_hash = ? WHERE seq = ?", (forged, k)))
        else:
            _edit(path, ("UPDATE entries SET body = CAST(body AS TEXT) || ' ' WHERE seq = ?",
                         (k,)))
        assert _verify(path) == (False, k, MODIFIED)


@_settings
@given(data=st.data(), n=sizes)
def test_a_deleted_entry_is_named(data: st.DataObject, n: int) -> None:
    k = data.draw(st.integers(0, n - 2))  # deleting the last one is a truncation
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        _build(path, n)
        _edit(path, ("DELETE FROM entries WHERE seq = ?", (k,)))
        assert _verify(path) == (False, k, MISSING)


@_settings
@given(data=st.data(), n=sizes)
def test_a_deleted_entry_with_later_ones_renumbered_is_named(data: st.DataObject, n: int
                                                             ) -> None:
    k = data.draw(st.integers(0, n - 2))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        _build(path, n)
        _edit(path, ("DELETE FROM entries WHERE seq = ?", (k,)),
              ("UPDATE entries SET seq = -seq WHERE seq > ?", (k,)),
              ("UPDATE entries SET seq = -seq - 1 WHERE seq < 0", ()))
        assert _verify(path) == (False, k, MISSING)


@_settings
@given(data=st.data(), n=sizes)
def test_swapped_entries_are_named(data: st.DataObject, n: int) -> None:
    k = data.draw(st.integers(0, n - 2))
    j = data.draw(st.integers(k + 1, n - 1))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        _build(path, n)
        _edit(path, ("UPDATE entries SET seq = -1 WHERE seq = ?", (k,)),
              ("UPDATE entries SET seq = ? WHERE seq = ?", (k, j)),
              ("UPDATE entries SET seq = ? WHERE seq = -1", (j,)))
        assert _verify(path) == (False, k, REORDERED)


@_settings
@given(data=st.data(), n=sizes)
def test_a_truncated_tail_is_named(data: st.DataObject, n: int) -> None:
    k = data.draw(st.integers(0, n - 1))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        _build(path, n)
        _edit(path, ("DELETE FROM entries WHERE seq >= ?", (k,)))
        assert _verify(path) == (False, k, TRUNCATED)


def test_an_untouched_trail_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _build(path, 30, every=7)
    trail = AuditTrail.open(path, signer=None, read_only=True)
    report = verify(trail, public_key=SIGNER.public_key)
    trail.close()
    assert report.ok and report.entries_checked == 30 and report.first_bad is None
    assert report.checkpoints_valid == report.checkpoints_total == 5  # 7, 14, 21, 28, 30
    assert [(r.start, r.end) for r in report.ranges] == [(0, 7), (7, 14), (14, 21), (21, 28),
                                                        (28, 30)]
    doc = report.to_json()
    assert doc["ok"] is True and json.dumps(doc)
    assert report.lines()[-1] == "Audit trail is VALID"


def test_an_empty_trail_verifies(tmp_path: Path) -> None:
    trail = AuditTrail.open(tmp_path / "a.db", signer=SIGNER, now=Clock())
    trail.checkpoint()
    report = verify(trail)
    assert report.ok and report.size == 0 and report.checkpoints_valid == 1
    trail.close()


def test_a_forged_checkpoint_signature_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _build(path, 12, every=5)
    _edit(path, ("UPDATE checkpoints SET signature = zeroblob(64) WHERE size = 10", ()))
    ok, _, reason = _verify(path)
    assert (ok, reason) == (False, BAD_SIGNATURE)


def test_a_checkpoint_signed_by_another_key_is_caught_when_the_key_is_pinned(
        tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _build(path, 6)
    assert _verify(path)[0]
    assert _verify(path, public_key=SigningKey.generate().public_key)[2] == UNTRUSTED_KEY


def test_a_range_rewritten_with_consistent_hashes_is_caught_by_its_checkpoint(
        tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _build(path, 20, every=10)
    # Recompute every hash after a change, as a careful attacker without the key would.
    from pacte.audit import GENESIS, leaf_hash

    db = sqlite3.connect(path)
    rows = db.execute("SELECT seq, body FROM entries ORDER BY seq").fetchall()
    prev = GENESIS
    for seq, body in rows:
        if seq == 13:
            body = body.replace(b'"outcome":"ok"', b'"outcome":"denied"')
        h = leaf_hash(prev + body)
        db.execute("UPDATE entries SET body = ?, entry_hash = ? WHERE seq = ?", (body, h, seq))
        prev = h
    db.commit()
    db.close()
    assert _verify(path) == (False, 10, MODIFIED)  # somewhere in [10, 20)


def test_a_rewrite_resigned_with_the_signing_key_is_caught_by_a_trusted_checkpoint(
        tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    trail = make_trail(path, n=15, signer=SIGNER, every=5)
    exported = trail.export_checkpoint()
    trail.close()
    trusted = Checkpoint.from_json(json.loads(json.dumps(exported)))
    # The attacker holds the signing key: rebuild the whole log with one entry changed.
    path.unlink()
    forged = make_trail(path, n=0, signer=SIGNER, every=5)
    from .conftest import record

    for i in range(15):
        rec = record(i)
        if i == 4:
            rec["outcome"] = "denied"
        forged.append(rec)
    forged.close()
    assert _verify(path)[0]  # internally consistent, every signature valid
    ok, _, reason = _verify(path, trusted=trusted)
    assert (ok, reason) == (False, NOT_EXTENSION)


def test_a_rollback_is_caught_by_a_trusted_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    trail = make_trail(path, n=10, signer=SIGNER)
    trusted = Checkpoint.from_json(trail.export_checkpoint())
    trail.close()
    # Roll back to 6 entries and re-sign: internally the log looks whole.
    _edit(path, ("DELETE FROM entries WHERE seq >= 6", ()), ("DELETE FROM checkpoints", ()))
    trail = AuditTrail.open(path, signer=SIGNER, now=Clock())
    trail.checkpoint()
    trail.close()
    assert _verify(path)[0]
    assert _verify(path, trusted=trusted) == (False, 6, NOT_EXTENSION)


def test_an_honest_extension_of_a_trusted_checkpoint_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    trail = make_trail(path, n=9, signer=SIGNER, every=4)
    trusted = Checkpoint.from_json(trail.export_checkpoint())
    from .conftest import record

    for i in range(9, 30):
        trail.append(record(i))
    trail.close()
    assert _verify(path, trusted=trusted) == (True, None, None)
    tampered = Checkpoint.from_json({**trusted.to_json(), "time": "2020-01-01T00:00:00Z"})
    assert _verify(path, trusted=tampered)[2] == BAD_SIGNATURE


def test_an_unreadable_file_raises_instead_of_reporting(tmp_path: Path) -> None:
    from pacte.errors import StorageError

    path = tmp_path / "audit.db"
    _build(path, 5)
    trail = AuditTrail.open(path, signer=None, read_only=True)
    data = path.read_bytes()
    path.write_bytes(b"\0" * 100 + data[100:])  # the header is gone
    with pytest.raises(StorageError):
        verify(trail)
    trail.close()


def test_the_report_names_the_bad_entry_in_words(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _build(path, 8, every=4)
    _edit(path, ("DELETE FROM entries WHERE seq = 5", ()))
    trail = AuditTrail.open(path, signer=None, read_only=True)
    report = verify(trail)
    trail.close()
    text = "\n".join(report.lines())
    assert "Entries 0 to 3: valid" in text
    assert "INVALID: missing in entries (first bad entry 5)" in text
    assert report.to_json()["first_bad"] == 5


_BATCH_CASES = [
    ((), (True, None, None)),
    ((("DELETE FROM entries WHERE seq = 10", ()),), (False, 10, MISSING)),
    ((("DELETE FROM entries WHERE seq = 0", ()),), (False, 0, MISSING)),
    ((("DELETE FROM entries WHERE seq >= 14", ()),), (False, 14, TRUNCATED)),
    ((("UPDATE entries SET entry_hash = zeroblob(31) WHERE seq = 8", ()),),
     (False, 8, MODIFIED)),
    ((("UPDATE entries SET entry_hash = hex(entry_hash) WHERE seq = 19", ()),),
     (False, 19, MODIFIED)),
    ((("UPDATE entries SET entry_hash = 'not a hash' WHERE seq = 13", ()),),
     (False, 13, MODIFIED)),
    ((("UPDATE entries SET body = CAST(body AS TEXT) WHERE seq = 11", ()),),
     (False, 11, MODIFIED)),
    ((("UPDATE entries SET body = 7 WHERE seq = 5", ()),), (False, 5, MODIFIED)),
    ((("UPDATE entries SET seq = -1 WHERE seq = 3", ()),
      ("UPDATE entries SET seq = 3 WHERE seq = 9", ()),
      ("UPDATE entries SET seq = 9 WHERE seq = -1", ())), (False, 3, REORDERED)),
]


@pytest.mark.parametrize("batch", [1, 3, 7, 50_000])
@pytest.mark.parametrize(("edits", "expected"), _BATCH_CASES)
def test_the_verdict_does_not_depend_on_the_batch_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int,
        edits: tuple[tuple[str, tuple[object, ...]], ...],
        expected: tuple[bool, int | None, str | None]) -> None:
    import importlib

    path = tmp_path / "audit.db"
    _build(path, 20, every=6)
    if edits:
        _edit(path, *edits)
    monkeypatch.setattr(importlib.import_module("pacte.audit.verify"), "BATCH", batch)
    assert _verify(path) == expected
