"""The pinned key, and signing-key rotation as a signed event the verifier follows."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from pacte.audit import AuditTrail, verify
from pacte.audit.rotation import ROTATION_ACTION, rotation_record
from pacte.audit.verify import BAD_SIGNATURE, UNTRUSTED_KEY
from pacte.crypto.signing import SigningKey
from pacte.errors import InputError

from .conftest import Clock, SQLiteBackend, record

OLD, NEW, NEWER, MALLORY = (SigningKey.generate() for _ in range(4))


def _rotated(backend: SQLiteBackend) -> None:
    trail = backend.create(signer=OLD, every=5, clock=Clock())
    for i in range(12):
        trail.append(record(i))
    trail.rotate_signer(NEW)
    for i in range(12, 20):
        trail.append(record(i))
    trail.rotate_signer(NEWER)
    trail.append(record(20))
    trail.close()


def _verify(backend: SQLiteBackend, key: SigningKey | None, **kw: object
            ) -> tuple[bool, str | None]:
    trail = backend.open()
    try:
        r = verify(trail, public_key=None if key is None else key.public_key,
                   **kw)  # type: ignore[arg-type]
    finally:
        trail.close()
    return r.ok, r.reason


def test_a_verifier_pinning_any_key_of_the_chain_follows_the_rotations(
        backend: SQLiteBackend) -> None:
    _rotated(backend)
    for key in (OLD, NEW, NEWER):
        assert _verify(backend, key) == (True, None)
    trail = backend.open()
    entries = trail.entries(limit=100)
    assert [e.seq for e in entries if e.record["action"] == ROTATION_ACTION] == [12, 21]
    assert verify(trail, fingerprint=hashlib.sha256(OLD.public_key).hexdigest()).ok
    trail.close()
    assert _verify(backend, MALLORY) == (False, UNTRUSTED_KEY)


def test_a_checkpoint_signed_by_the_old_key_after_the_rotation_fails(
        backend: SQLiteBackend) -> None:
    _rotated(backend)
    # The old key, stolen, signs a checkpoint of the log after it was retired.
    trail = AuditTrail.open(backend.path, signer=OLD, now=Clock())
    trail.append(record(99))
    trail.checkpoint()
    trail.close()
    assert _verify(backend, OLD) == (False, UNTRUSTED_KEY)


def test_a_rotation_signed_by_one_key_only_is_refused(backend: SQLiteBackend) -> None:
    trail = backend.create(signer=OLD, every=5, clock=Clock())
    for i in range(6):
        trail.append(record(i))
    # Mallory appends a hand-over to a key of hers, signed by her key alone (twice).
    head = trail.entries(after_seq=4, limit=1)[0]
    forged = rotation_record(MALLORY, MALLORY, seq=6, after=head.entry_hash)
    forged["old_key"] = rotation_record(OLD, MALLORY, seq=6, after=head.entry_hash)["old_key"]
    trail.append(forged)
    trail.close()
    assert _verify(backend, OLD) == (False, BAD_SIGNATURE)


def test_a_rewrite_with_a_forged_predecessor_key_fails_under_todays_pin(
        backend: SQLiteBackend, tmp_path: Path) -> None:
    """Pinning the current key does not trust whatever key the trail claims came before."""
    _rotated(backend)
    # Mallory rebuilds the log under her key and rotates to NEWER: she cannot make
    # NEWER sign the hand-over, so she writes one signed by MALLORY twice.
    other = SQLiteBackend(tmp_path / "other")
    (tmp_path / "other").mkdir()
    trail = other.create(signer=MALLORY, every=5, clock=Clock())
    for i in range(12):
        trail.append(record(i))
    trail.rotate_signer(NEW)  # NEW's signature she does not have: simulate by editing
    trail.close()
    db = sqlite3.connect(other.path)
    body = db.execute("SELECT body FROM entries WHERE seq = 12").fetchone()[0]
    db.close()
    assert b"new_signature" in body
    assert _verify(other, NEW) == (True, None)  # with NEW's cooperation it would be fine
    assert _verify(other, OLD) == (False, UNTRUSTED_KEY)  # but OLD never handed over


def test_rotating_to_the_same_key_is_refused(backend: SQLiteBackend) -> None:
    trail = backend.create(signer=OLD, clock=Clock())
    with pytest.raises(InputError):
        trail.rotate_signer(OLD)
    trail.close()


def test_the_runtime_rotates_its_signing_key_and_verifies_against_either(
        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pacte.cli import app
    from pacte.runtime import Pacte

    data = tmp_path / "data"
    Pacte.init(data).close()
    old = SigningKey.load(data / "signing.key")
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "rotate-key", "--data", str(data)])
    assert result.exit_code == 0, result.output
    new = SigningKey.load(data / "signing.key")
    assert new.public_key != old.public_key
    assert hashlib.sha256(new.public_key).hexdigest() in result.output
    assert not (data / "signing.key.new").exists()
    with Pacte.open(data) as rt:
        assert rt.operator_session("legal").audit_verification().ok
    for key in (old, new):
        fingerprint = hashlib.sha256(key.public_key).hexdigest()
        result = runner.invoke(app, ["audit", "verify", "--data", str(data), "--key",
                                     fingerprint])
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["audit", "verify", "--data", str(data), "--key",
                                 hashlib.sha256(MALLORY.public_key).hexdigest()])
    assert result.exit_code == 1 and "untrusted key" in result.output
    result = runner.invoke(app, ["audit", "verify", "--data", str(data), "--key", "nope"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
