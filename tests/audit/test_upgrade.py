"""Schema version 3 to 4: a trail written before the index chain is upgraded on opening.

A version 3 file is made the way a version 3 pacte left it: checkpoints signed without
an index head (type v2), no index_head column, no head in meta.
"""

from __future__ import annotations

import importlib
import sqlite3
from pathlib import Path

import pytest

from pacte.audit import AuditTrail, verify
from pacte.audit.checkpoint import CHECKPOINT_TYPE, CHECKPOINT_TYPE_V2
from pacte.audit.verify import MISSING
from pacte.crypto.signing import SigningKey
from pacte.errors import CorruptStore

from .conftest import Clock, record

SIGNER = SigningKey.generate()
_trail_module = importlib.import_module("pacte.audit.checkpoint_store")


def _version_3(path: Path, monkeypatch: pytest.MonkeyPatch, n: int = 2100) -> None:
    with monkeypatch.context() as m:
        # A version 3 writer signed no index head.
        m.setattr(_trail_module, "read_head", lambda db: (-1, b""))
        trail = AuditTrail.open(path, signer=SIGNER, checkpoint_every=500, now=Clock())
        for i in range(n):
            trail.append(record(i, subjects=[f"s_{i % 7}"]))
        trail.close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE checkpoints DROP COLUMN index_head")
    db.execute("DELETE FROM meta WHERE key = 'subject_blocks_head'")
    db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.commit()
    db.close()


def _verify(path: Path) -> object:
    with AuditTrail.open(path, signer=None, read_only=True, for_verify=True) as trail:
        return verify(trail, public_key=SIGNER.public_key)


def test_a_version_3_trail_is_upgraded_when_opened_for_writing_and_verifies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.db"
    _version_3(path, monkeypatch)
    with pytest.raises(CorruptStore, match="schema version 3: open it once for writing"):
        _verify(path)  # verify reads, never writes: it asks for the upgrade
    trail = AuditTrail.open(path, signer=SIGNER, checkpoint_every=500, now=Clock())
    old = trail.latest_checkpoint()
    assert old is not None and old.to_json()["type"] == CHECKPOINT_TYPE_V2
    for i in range(2100, 2300):
        trail.append(record(i, subjects=[f"s_{i % 7}"]))
    trail.close()
    with AuditTrail.open(path, signer=None, read_only=True) as trail:
        new = trail.latest_checkpoint()
    assert new is not None and new.index_head is not None
    assert new.to_json()["type"] == CHECKPOINT_TYPE and new.verify(SIGNER.public_key)
    report = _verify(path)
    assert report.ok, report.detail  # type: ignore[attr-defined]


def test_index_rows_changed_before_the_upgrade_are_still_found(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upgrade chains the rows the entries make, not the stored ones: a head signed
    after it does not vouch for a row taken out before it."""
    path = tmp_path / "audit.db"
    _version_3(path, monkeypatch)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM subject_blocks WHERE block = 1 AND subject = 's_3'")
    db.commit()
    db.close()
    with AuditTrail.open(path, signer=SIGNER, checkpoint_every=500, now=Clock()) as trail:
        for i in range(2100, 2300):
            trail.append(record(i, subjects=[f"s_{i % 7}"]))
    with AuditTrail.open(path, signer=None, read_only=True) as trail:
        signed = trail.latest_checkpoint()
    assert signed is not None and signed.size == 2300 and signed.index_head is not None
    report = _verify(path)
    assert (report.reason, report.table, report.block) == (  # type: ignore[attr-defined]
        MISSING, "subject_blocks", 1)


def test_rows_written_ahead_of_their_block_are_not_signed_when_it_completes(
        tmp_path: Path) -> None:
    """A row put in for a block not indexed yet stays when the block is indexed; the
    chain the next checkpoint signs is made from the entries, so verify names the row."""
    path = tmp_path / "audit.db"
    trail = AuditTrail.open(path, signer=SIGNER, checkpoint_every=500, now=Clock())
    for i in range(1100):
        trail.append(record(i, subjects=[f"s_{i % 7}"]))
    db = sqlite3.connect(path)
    db.execute("INSERT INTO subject_blocks VALUES (1, 's_zz', '1030')")
    db.commit()
    db.close()
    for i in range(1100, 2100):
        trail.append(record(i, subjects=[f"s_{i % 7}"]))
    trail.close()
    report = _verify(path)
    assert (report.ok, report.table, report.block) == (  # type: ignore[attr-defined]
        False, "subject_blocks", 1)
