"""KeyVault and key providers: wrong master key, file permissions, rotation, crypto-shredding."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sqlite3
import stat
from pathlib import Path

import pytest

from pacte.crypto import (
    EnvKeyProvider,
    FieldCipher,
    FileKeyProvider,
    KeyProvider,
    KeyVault,
    provider_from_env_or_file,
)
from pacte.errors import DecryptionError, KeyVaultError


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wrapped(path: Path, customer_id: str) -> list[bytes]:
    conn = sqlite3.connect(path)
    try:
        return [bytes(r[0]) for r in conn.execute(
            "SELECT wrapped FROM deks WHERE customer_id = ?", (customer_id,))]
    finally:
        conn.close()


def _secret() -> str:
    return base64.b64encode(os.urandom(32)).decode()


# -- providers -----------------------------------------------------------------------------

def test_key_file_is_private_and_round_trips(tmp_path: Path) -> None:
    p = FileKeyProvider.create(tmp_path / "master.key")
    assert stat.S_IMODE(os.stat(tmp_path / "master.key").st_mode) == 0o600
    assert isinstance(p, KeyProvider)
    version, wrapped = p.wrap(b"k" * 32)
    assert version == 1 and b"k" * 32 not in wrapped
    assert FileKeyProvider(tmp_path / "master.key").unwrap(1, wrapped) == b"k" * 32
    with pytest.raises(KeyVaultError, match="already exists"):
        FileKeyProvider.create(tmp_path / "master.key")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    FileKeyProvider.create(path)
    os.chmod(path, mode)
    with pytest.raises(KeyVaultError) as info:
        FileKeyProvider(path)
    assert f"chmod 600 {path}" in str(info.value)


def test_missing_or_garbled_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyVaultError, match="does not exist"):
        FileKeyProvider(tmp_path / "nope.key")
    bad = tmp_path / "bad.key"
    bad.write_text("{not json")
    os.chmod(bad, 0o600)
    with pytest.raises(KeyVaultError, match="not a pacte key file"):
        FileKeyProvider(bad)


def test_file_rotation_keeps_old_versions(tmp_path: Path) -> None:
    p = FileKeyProvider.create(tmp_path / "master.key")
    _, w1 = p.wrap(b"a" * 32)
    assert p.rotate() == 2 and p.current_version == 2
    assert stat.S_IMODE(os.stat(tmp_path / "master.key").st_mode) == 0o600
    again = FileKeyProvider(tmp_path / "master.key")
    assert again.current_version == 2
    assert again.unwrap(1, w1) == b"a" * 32
    with pytest.raises(KeyVaultError):
        again.unwrap(2, w1)  # the version is bound to the wrapped bytes
    with pytest.raises(KeyVaultError):
        again.unwrap(9, w1)
    assert [f.name for f in tmp_path.iterdir()] == ["master.key"]  # no temp file left


def test_env_provider(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = _secret()
    p = EnvKeyProvider(secret)
    v, w = p.wrap(b"z" * 32)
    assert EnvKeyProvider(secret).unwrap(v, w) == b"z" * 32
    with pytest.raises(KeyVaultError):
        EnvKeyProvider(_secret()).unwrap(v, w)
    assert p.rotate() == 2
    assert EnvKeyProvider(secret).unwrap(2, p.wrap(b"y" * 32)[1]) == b"y" * 32
    for bad in ("not base64!", base64.b64encode(b"short").decode(), ""):
        with pytest.raises(KeyVaultError, match="PACTE_MASTER_KEY"):
            EnvKeyProvider(bad)
    monkeypatch.setenv("PACTE_MASTER_KEY", secret)
    assert isinstance(provider_from_env_or_file(tmp_path / "master.key"), EnvKeyProvider)
    monkeypatch.delenv("PACTE_MASTER_KEY")
    FileKeyProvider.create(tmp_path / "master.key")
    assert isinstance(provider_from_env_or_file(tmp_path / "master.key"), FileKeyProvider)


# -- opening -------------------------------------------------------------------------------

def test_wrong_master_key_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    vault = KeyVault.create(path, FileKeyProvider.create(tmp_path / "a.key"))
    vault.data_keys(["c1", "c2"], create=True)
    vault.close()
    before = _sha(path)
    files = sorted(p.name for p in tmp_path.iterdir())
    for wrong in (FileKeyProvider.create(tmp_path / "b.key"), EnvKeyProvider(_secret())):
        with pytest.raises(KeyVaultError) as info:
            KeyVault.open(path, wrong)
        assert str(info.value) == "the master key does not match this data directory"
    assert _sha(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*files, "b.key"])


def test_open_and_create_refusals(tmp_path: Path, provider: FileKeyProvider) -> None:
    with pytest.raises(KeyVaultError, match="does not exist"):
        KeyVault.open(tmp_path / "none.db", provider)
    assert not (tmp_path / "none.db").exists()
    KeyVault.create(tmp_path / "keys.db", provider).close()
    assert stat.S_IMODE(os.stat(tmp_path / "keys.db").st_mode) == 0o600
    with pytest.raises(KeyVaultError, match="already exists"):
        KeyVault.create(tmp_path / "keys.db", provider)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(KeyVaultError, match="not a pacte key vault"):
        KeyVault.open(other, provider)


# -- data keys -----------------------------------------------------------------------------

def test_data_keys_batch(vault: KeyVault) -> None:
    ids = [f"c{i}" for i in range(20_000)]
    keys = vault.data_keys(ids, create=True)
    assert set(keys) == set(ids) and all(k.version == 1 for k in keys.values())
    assert vault.data_keys(["c5", "c5", "c7"]) == {"c5": keys["c5"], "c7": keys["c7"]}
    assert "material" not in repr(keys["c5"]) and repr(keys["c5"]).startswith("DataKey(")
    with pytest.raises(KeyVaultError):
        vault.data_keys(["c1", "absent"])
    with pytest.raises(KeyVaultError, match="no data key"):
        vault.data_key("absent")


def test_keys_survive_reopen(tmp_path: Path, provider: FileKeyProvider) -> None:
    vault = KeyVault.create(tmp_path / "keys.db", provider)
    sealed = FieldCipher(vault).encrypt("c1", "n1", "email", b"secret")
    ref = vault.subject_ref("c1")
    vault.close()
    with KeyVault.open(tmp_path / "keys.db", FileKeyProvider(tmp_path / "master.key")) as again:
        assert FieldCipher(again).decrypt("c1", "n1", "email", sealed) == b"secret"
        assert again.subject_ref("c1") == ref


def test_subject_refs_and_index_keys(vault: KeyVault) -> None:
    # A realistic id: "c1" would appear in a random 16-hex ref by chance 6% of the time.
    cid = "c_0123456789ab"
    ref = vault.subject_ref(cid)
    assert re.fullmatch(r"s_[0-9a-f]{16}", ref)
    assert ref == vault.subject_ref(cid) != vault.subject_ref("c_0123456789ac")
    assert cid.removeprefix("c_") not in ref
    assert vault.index_key("email").mac(b"x") != vault.index_key("phone").mac(b"x")



def test_remembered_subject_refs_are_bounded_and_survive_erasure(
        tmp_path: Path, provider: FileKeyProvider) -> None:
    with KeyVault.create(tmp_path / "keys.db", provider, cache_size=4) as vault:
        first = {f"c_{n:012d}": vault.subject_ref(f"c_{n:012d}") for n in range(10)}
        assert len(vault._refs) <= 4  # bounded like the key cache
        vault.data_keys(["c_000000000009"], create=True)
        vault.destroy("c_000000000009")
        # The same references after the bound let some go, and after an erasure.
        assert {cid: vault.subject_ref(cid) for cid in first} == first
    with KeyVault.open(tmp_path / "keys.db", provider) as again:
        assert {cid: again.subject_ref(cid) for cid in first} == first

# -- rotation ------------------------------------------------------------------------------

def _kek_versions(path: Path) -> set[int]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT kek_version FROM deks")}
    finally:
        conn.close()


def test_rotation_rewraps_and_old_data_stays_readable(tmp_path: Path,
                                                      provider: FileKeyProvider) -> None:
    path = tmp_path / "keys.db"
    vault = KeyVault.create(path, provider)
    cipher = FieldCipher(vault)
    vault.data_keys([f"c{i}" for i in range(2500)], create=True)
    sealed = {f"c{i}": cipher.encrypt(f"c{i}", "n", "email", b"v%d" % i) for i in range(2500)}
    assert _kek_versions(path) == {1}
    assert vault.rotate_kek() == 2
    assert _kek_versions(path) == {2}
    assert all(cipher.decrypt(c, "n", "email", b) == b"v" + c[1:].encode()
               for c, b in sealed.items())
    vault.close()
    with KeyVault.open(path, FileKeyProvider(tmp_path / "master.key")) as again:
        fresh = FieldCipher(again)
        assert fresh.decrypt("c7", "n", "email", sealed["c7"]) == b"v7"
        again.data_key("new", create=True)
        assert _kek_versions(path) == {2}


def test_env_rotation_is_remembered_by_the_vault(tmp_path: Path) -> None:
    secret = _secret()
    path = tmp_path / "keys.db"
    vault = KeyVault.create(path, EnvKeyProvider(secret))
    sealed = FieldCipher(vault).encrypt("c1", "n", "f", b"x")
    assert vault.rotate_kek() == 2
    vault.close()
    # A fresh EnvKeyProvider starts at version 1; the vault knows it rotated to 2.
    with KeyVault.open(path, EnvKeyProvider(secret)) as again:
        assert again.kek_version == 2
        assert FieldCipher(again).decrypt("c1", "n", "f", sealed) == b"x"
        again.data_key("c2", create=True)
        assert _kek_versions(path) == {2}
        assert again.rotate_kek() == 3


# -- crypto-shredding ----------------------------------------------------------------------

def test_destroy_shreds_one_customer_only(tmp_path: Path, provider: FileKeyProvider) -> None:
    path = tmp_path / "keys.db"
    vault = KeyVault.create(path, provider)
    cipher = FieldCipher(vault)
    victim = "c_victim_000007"
    ids = [f"c{i}" for i in range(50)] + [victim]
    sealed = {c: cipher.encrypt(c, "n_" + c, "email", c.encode()) for c in ids}
    gone_v1 = _wrapped(path, victim)
    vault.rotate_kek()  # the key existed wrapped under two KEK versions
    gone_v2 = _wrapped(path, victim)
    assert gone_v1 and gone_v2 and gone_v1 != gone_v2
    ref = vault.subject_ref(victim)

    vault.destroy(victim)

    assert vault.is_destroyed(victim) and not vault.is_destroyed("c8")
    with pytest.raises(DecryptionError):
        cipher.decrypt(victim, "n_" + victim, "email", sealed[victim])
    with pytest.raises(KeyVaultError, match="destroyed"):
        vault.data_key(victim)
    with pytest.raises(KeyVaultError, match="destroyed"):
        vault.data_key(victim, create=True)
    for c in ids:
        if c != victim:
            assert cipher.decrypt(c, "n_" + c, "email", sealed[c]) == c.encode()
    assert vault.subject_ref(victim) == ref  # the audit trail can still name the subject
    wal = Path(f"{path}-wal")
    leftovers = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    vault.close()
    leftovers += path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    for wrapped in gone_v1 + gone_v2:
        assert wrapped not in leftovers
        assert wrapped[12:28] not in leftovers  # not even a fragment of the ciphertext
    assert victim.encode() not in path.read_bytes()  # the tombstone holds the reference only
    with KeyVault.open(path, FileKeyProvider(tmp_path / "master.key")) as again:
        assert again.is_destroyed(victim)
        with pytest.raises(DecryptionError):
            FieldCipher(again).decrypt(victim, "n_" + victim, "email", sealed[victim])


def test_destroy_in_another_process_flushes_on_sync(tmp_path: Path,
                                                    provider: FileKeyProvider) -> None:
    path = tmp_path / "keys.db"
    mine = KeyVault.create(path, provider)
    cipher = FieldCipher(mine)
    sealed = cipher.encrypt("c1", "n", "f", b"x")
    assert cipher.decrypt("c1", "n", "f", sealed) == b"x"  # cached here
    theirs = KeyVault.open(path, FileKeyProvider(tmp_path / "master.key"))
    theirs.destroy("c1")
    theirs.close()
    mine.sync()
    with pytest.raises(DecryptionError):
        cipher.decrypt("c1", "n", "f", sealed)
    mine.close()


def test_closed_vault_refuses(vault: KeyVault) -> None:
    vault.close()
    vault.close()
    with pytest.raises(KeyVaultError, match="closed"):
        vault.data_keys(["c1"], create=True)


# -- retiring old key-encryption keys ------------------------------------------------------

def _file_versions(path: Path) -> set[int]:
    return {int(v) for v in json.loads(path.read_text())["keys"]}


def test_rotation_retires_keks_nothing_is_wrapped_under(tmp_path: Path,
                                                        provider: FileKeyProvider) -> None:
    key_file = tmp_path / "master.key"
    path = tmp_path / "keys.db"
    vault = KeyVault.create(path, provider)
    cipher = FieldCipher(vault)
    vault.data_keys(["c1", "c2"], create=True)
    sealed = cipher.encrypt("c1", "n", "email", b"v1")
    old_file = key_file.read_bytes()
    assert vault.rotate_kek() == 2
    # The previous version stays one rotation: a process that has not seen this one
    # may still wrap a new key under it.
    assert _file_versions(key_file) == {1, 2}
    assert vault.rotate_kek() == 3
    assert _file_versions(key_file) == {2, 3}
    assert vault.rotate_kek() == 4
    assert _file_versions(key_file) == {3, 4} and _kek_versions(path) == {4}
    vault.close()
    with KeyVault.open(path, FileKeyProvider(key_file)) as again:
        assert FieldCipher(again).decrypt("c1", "n", "email", sealed) == b"v1"
    # A copy of the key file from before holds nothing that opens today's keys.
    stale = tmp_path / "stale.key"
    stale.write_bytes(old_file)
    stale.chmod(0o600)
    with pytest.raises(KeyVaultError):
        KeyVault.open(path, FileKeyProvider(stale))


def test_a_kek_still_in_use_is_not_retired(tmp_path: Path, provider: FileKeyProvider) -> None:
    key_file = tmp_path / "master.key"
    path = tmp_path / "keys.db"
    vault = KeyVault.create(path, provider)
    vault.data_keys(["c1", "c2"], create=True)
    vault.rotate_kek()
    for _ in range(3):
        provider.rotate()  # versions 3 to 5 exist; nothing is wrapped under them yet
    # As if a data key had been left under version 1 by a process that missed a rotation.
    with sqlite3.connect(path) as db:
        db.execute("UPDATE deks SET kek_version = 1 WHERE customer_id = 'c1'")
    vault._retire_keks(current=5)
    # 1 and 2 hold keys, 4 is the one before the current: only 3 goes.
    assert _file_versions(key_file) == {1, 2, 4, 5}
    vault.close()
