"""FieldCipher: the exact bytes of the format, round trips, and every way to tamper."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from pacte.crypto import FieldCipher, KeyVault
from pacte.crypto._keys import DataKey
from pacte.errors import DecryptionError, InputError, KeyVaultError

KAT_DEK = bytes(range(32))
KAT_NONCE = bytes(range(0xA0, 0xAC))
KAT_PLAINTEXT = b"jeanne@example.org"
# Computed once with the format of pacte/crypto/cipher.py and pinned: any change to the
# key derivation, header, associated data or layout changes these bytes.
KAT_SEALED = bytes.fromhex(
    "010100000007a0a1a2a3a4a5a6a7a8a9aaab39c369ea33b741ef601c77f4ad7e11d890c5863d7cb45ec02e"
    "84588f4d2bca9b2123"
)


class PinnedVault:
    """A stand-in vault whose only customer has a fixed DEK (version 7)."""

    cache_epoch = 0

    def __init__(self) -> None:
        self.key = DataKey("c_kat", 7, KAT_DEK)

    def data_key(self, customer_id: str, *, create: bool = False,
                 version: int | None = None) -> DataKey:
        if customer_id != "c_kat" or version not in (None, 7):
            raise KeyVaultError("absent")
        return self.key

    def on_flush(self, callback: Callable[[], None]) -> None:
        pass


def _kat_cipher() -> FieldCipher:
    return FieldCipher(PinnedVault(), _nonce=lambda n: KAT_NONCE[:n])  # type: ignore[arg-type]


def _lp(s: str) -> bytes:
    return len(s.encode()).to_bytes(4, "big") + s.encode()


def test_known_answer_exact_bytes() -> None:
    sealed = _kat_cipher().encrypt("c_kat", "n_kat", "email", KAT_PLAINTEXT)
    assert sealed == KAT_SEALED


def test_known_answer_layout_field_by_field() -> None:
    sealed = KAT_SEALED
    assert sealed[0] == 1  # format version
    assert sealed[1] == 1  # algorithm: AES-256-GCM, HKDF-SHA256 field key
    assert int.from_bytes(sealed[2:6], "big") == 7  # DEK version
    assert sealed[6:18] == KAT_NONCE
    assert len(sealed) == 6 + 12 + len(KAT_PLAINTEXT) + 16
    # Recomputed independently with the primitives, from the documented recipe.
    field_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                     info=b"pacte/field-key/v1\x00email").derive(KAT_DEK)
    ad = sealed[:6] + _lp("c_kat") + _lp("n_kat") + _lp("email")
    assert AESGCM(field_key).decrypt(KAT_NONCE, sealed[18:], ad) == KAT_PLAINTEXT
    assert _kat_cipher().decrypt("c_kat", "n_kat", "email", sealed) == KAT_PLAINTEXT


def test_round_trip_and_fresh_nonces(cipher: FieldCipher) -> None:
    a = cipher.encrypt("c1", "n1", "email", b"a@example.org")
    b = cipher.encrypt("c1", "n1", "email", b"a@example.org")
    assert a != b and a[6:18] != b[6:18]
    assert cipher.decrypt("c1", "n1", "email", a) == b"a@example.org"
    assert cipher.decrypt("c1", "n1", "email", b) == b"a@example.org"
    assert cipher.decrypt("c1", "n1", "note", cipher.encrypt("c1", "n1", "note", b"")) == b""


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=300), node=st.text(min_size=1, max_size=40),
       field=st.text(min_size=1, max_size=20))
def test_round_trip_property(plaintext: bytes, node: str, field: str) -> None:
    cipher = _kat_cipher()
    assert cipher.decrypt("c_kat", node, field,
                          cipher.encrypt("c_kat", node, field, plaintext)) == plaintext


def _assert_opaque(fn: Callable[[], object]) -> None:
    with pytest.raises(DecryptionError) as info:
        fn()
    assert type(info.value) is DecryptionError
    assert str(info.value) == "decryption failed"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_moved_ciphertext_fails(cipher: FieldCipher, vault: KeyVault) -> None:
    vault.data_keys(["c1", "c2"], create=True)
    sealed = cipher.encrypt("c1", "n1", "email", b"a@example.org")
    _assert_opaque(lambda: cipher.decrypt("c1", "n1", "phone", sealed))
    _assert_opaque(lambda: cipher.decrypt("c1", "n2", "email", sealed))
    _assert_opaque(lambda: cipher.decrypt("c2", "n1", "email", sealed))
    _assert_opaque(lambda: cipher.decrypt("c_unknown", "n1", "email", sealed))
    # Length prefixes: shifting characters between node and field must not collide.
    a = cipher.encrypt("c1", "n1e", "mail", b"x")
    _assert_opaque(lambda: cipher.decrypt("c1", "n1", "email", a))


def test_every_bit_flip_fails() -> None:
    cipher = _kat_cipher()
    sealed = cipher.encrypt("c_kat", "n", "f", b"abcd")
    assert cipher.decrypt("c_kat", "n", "f", sealed) == b"abcd"
    for i in range(len(sealed) * 8):
        flipped = bytearray(sealed)
        flipped[i // 8] ^= 1 << (i % 8)
        _assert_opaque(lambda b=bytes(flipped): cipher.decrypt("c_kat", "n", "f", b))


def test_every_truncation_and_extension_fails() -> None:
    cipher = _kat_cipher()
    sealed = cipher.encrypt("c_kat", "n", "f", b"abcdefgh")
    for n in range(len(sealed)):
        _assert_opaque(lambda b=sealed[:n]: cipher.decrypt("c_kat", "n", "f", b))
    _assert_opaque(lambda: cipher.decrypt("c_kat", "n", "f", sealed + b"\x00"))


@pytest.mark.parametrize(("offset", "value"), [(0, 0), (0, 2), (0, 255), (1, 0), (1, 2),
                                               (1, 255), (5, 8)])
def test_unknown_version_or_algorithm_fails(offset: int, value: int) -> None:
    cipher = _kat_cipher()
    forged = bytearray(KAT_SEALED)
    forged[offset] = value
    _assert_opaque(lambda: cipher.decrypt("c_kat", "n_kat", "email", bytes(forged)))


@pytest.mark.parametrize("garbage", [b"", b"\x01", b"\x01\x01", os.urandom(64), "text", None,
                                     12345, bytearray(b"\x01\x01\x00")])
def test_garbage_fails(garbage: object) -> None:
    _assert_opaque(lambda: _kat_cipher().decrypt("c_kat", "n_kat", "email",
                                                 garbage))  # type: ignore[arg-type]


def test_destroyed_key_fails_even_when_cached(cipher: FieldCipher, vault: KeyVault) -> None:
    sealed = cipher.encrypt("c1", "n1", "email", b"a@example.org")
    other = cipher.encrypt("c2", "n2", "email", b"b@example.org")
    assert cipher.decrypt("c1", "n1", "email", sealed) == b"a@example.org"  # now cached
    vault.destroy("c1")
    _assert_opaque(lambda: cipher.decrypt("c1", "n1", "email", sealed))
    assert cipher.decrypt("c2", "n2", "email", other) == b"b@example.org"
    with pytest.raises(KeyVaultError):
        cipher.encrypt("c1", "n1", "email", b"again")


def test_bad_input_to_encrypt() -> None:
    cipher = _kat_cipher()
    with pytest.raises(InputError):
        cipher.encrypt("c_kat", "", "email", b"x")
    with pytest.raises(InputError):
        cipher.encrypt("c_kat", "n", "email", "text")  # type: ignore[arg-type]


def test_lru_is_bounded(vault: KeyVault) -> None:
    cipher = FieldCipher(vault, cache_size=3)
    sealed = {c: cipher.encrypt(c, "n", "f", c.encode()) for c in ("a", "b", "c", "d", "e")}
    assert len(cipher._cache) == 3
    for c, blob in sealed.items():
        assert cipher.decrypt(c, "n", "f", blob) == c.encode()
