"""Ed25519 signing keys: round trips, refusals, and the key file's permissions."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from pacte.crypto import SigningKey, verify_signature
from pacte.errors import KeyVaultError


def test_sign_verify_round_trip() -> None:
    key = SigningKey.generate()
    sig = key.sign(b"checkpoint 42")
    assert len(sig) == 64 and len(key.public_key) == 32
    assert verify_signature(key.public_key, sig, b"checkpoint 42")
    assert re.fullmatch(r"[0-9a-f]{16}", key.key_id)
    assert "secret" not in repr(key) and key.key_id in repr(key)


def test_wrong_key_or_tampering_is_false() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    sig = key.sign(b"receipt")
    assert not verify_signature(other.public_key, sig, b"receipt")
    assert not verify_signature(key.public_key, sig, b"receipt!")
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert not verify_signature(key.public_key, flipped, b"receipt")


@pytest.mark.parametrize(("pk", "sig", "msg"), [
    (b"", b"", b""), (b"x" * 32, b"y" * 64, b"m"), (b"x" * 31, b"y" * 64, b"m"),
    (b"x" * 32, b"y" * 63, b"m"), (None, None, None), ("text", "text", "text"),
])
def test_verify_never_raises(pk: object, sig: object, msg: object) -> None:
    assert verify_signature(pk, sig, msg) is False  # type: ignore[arg-type]


def test_key_file(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    key = SigningKey.create(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = SigningKey.load(path)
    assert loaded.public_key == key.public_key and loaded.key_id == key.key_id
    assert verify_signature(key.public_key, loaded.sign(b"m"), b"m")
    with pytest.raises(KeyVaultError, match="already exists"):
        SigningKey.create(path)
    assert SigningKey.load(path).public_key == key.public_key  # not overwritten


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.key"
    SigningKey.create(path)
    os.chmod(path, mode)
    with pytest.raises(KeyVaultError, match="chmod 600"):
        SigningKey.load(path)


def test_bad_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyVaultError, match="does not exist"):
        SigningKey.load(tmp_path / "none.key")
    bad = tmp_path / "bad.key"
    bad.write_bytes(b"not a key")
    os.chmod(bad, 0o600)
    with pytest.raises(KeyVaultError, match="PEM"):
        SigningKey.load(bad)
