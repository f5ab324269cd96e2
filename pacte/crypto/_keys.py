"""The one module that holds raw key material and calls the hazmat primitives.

Everything else in pacte handles keys through the opaque objects defined here
(`Kek`, `MasterSecret`, `DataKey`, `VaultSecret`, `IndexKey`, `Ed25519Signer`): they
keep their bytes in a private slot, never print them, and expose only the operations
the rest of the package needs. Reviewing how pacte uses cryptography means reading
this file; the Wycheproof tests call the primitives through these same functions.

Primitives, all from pyca/cryptography: AES-256-GCM, HKDF-SHA256, HMAC-SHA256, Ed25519.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from typing import Protocol

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pacte.errors import KeyVaultError

__all__ = [
    "KEY_SIZE",
    "NONCE_SIZE",
    "Aead",
    "DataKey",
    "Ed25519Signer",
    "IndexKey",
    "Kek",
    "MasterSecret",
    "TokenKey",
    "VaultSecret",
    "Wrapper",
    "aead",
    "field_aead",
    "hkdf_sha256",
    "hmac_sha256",
    "unwrap_data_key",
    "verify_ed25519",
    "wrap_data_key",
]

KEY_SIZE = 32
NONCE_SIZE = 12

# The AEAD type other modules may hold (and annotate) without importing hazmat.
Aead = AESGCM

# Domain separation labels: one per use of a derivation, so no two uses can ever share
# a derived key even if they share the input key.
_FIELD_INFO = b"pacte/field-key/v1\x00"
_KEK_INFO = b"pacte/kek/v1\x00"
_KEK_WRAP_AD = b"pacte/kek-wrap/v1\x00"
_INDEX_INFO = b"pacte/blind-index/v1\x00"
_SUBJECT_INFO = b"pacte/subject-ref/v1"
_CHECK_INFO = b"pacte/key-check/v1"
_TOKEN_INFO = b"pacte/token-key/v1\x00"
_TOKEN_MAC_INFO = b"pacte/token-mac/v1"


# -- primitives, exactly as pacte calls them ------------------------------------------

def aead(key: bytes) -> AESGCM:
    """AES-GCM keyed with `key` (pacte always passes 32 bytes and 12-byte nonces)."""
    return AESGCM(key)


def hkdf_sha256(ikm: bytes, *, info: bytes, length: int = KEY_SIZE,
                salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    h = HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


def verify_ed25519(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True only for a valid signature; any malformed input is simply not valid."""
    if not (isinstance(public_key, bytes) and isinstance(signature, bytes)
            and isinstance(message, bytes)):
        return False
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        _public_key(public_key).verify(signature, message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


@functools.lru_cache(maxsize=32)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    # A verifier checks many signatures by few keys (every checkpoint of a trail).
    return Ed25519PublicKey.from_public_bytes(raw)


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


# -- key-encryption keys ---------------------------------------------------------------

class Kek:
    """One version of a key-encryption key; wraps data keys with AES-256-GCM.

    The wrapping is AES-GCM rather than RFC 3394 key wrap so that the KEK version is
    bound as associated data: a wrapped key relabelled with another version fails.
    """

    __slots__ = ("_aead",)

    def __init__(self, material: bytes) -> None:
        if len(material) != KEY_SIZE:
            raise KeyVaultError("a key-encryption key must be 32 bytes")
        self._aead = AESGCM(material)

    @classmethod
    def generate(cls) -> tuple[Kek, str]:
        """A fresh KEK and its text form for the key file (the only time it is exported)."""
        material = os.urandom(KEY_SIZE)
        return cls(material), base64.b64encode(material).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> Kek:
        return cls(_b64_key(text, what="a key in the key file"))

    def __repr__(self) -> str:
        return "Kek(<secret>)"

    def wrap(self, plaintext_key: bytes, *, version: int) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, plaintext_key, _KEK_WRAP_AD + _u32(version))

    def unwrap(self, wrapped: bytes, *, version: int) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:],
                                      _KEK_WRAP_AD + _u32(version))
        except (InvalidTag, ValueError, TypeError):
            raise KeyVaultError("a wrapped key could not be unwrapped "
                                "(wrong master key or damaged key vault)") from None


class MasterSecret:
    """The 32-byte secret of `PACTE_MASTER_KEY`; KEK version v is HKDF(secret, info=v)."""

    __slots__ = ("_material",)

    def __init__(self, text: str) -> None:
        self._material = _b64_key(text, what="PACTE_MASTER_KEY")

    def __repr__(self) -> str:
        return "MasterSecret(<secret>)"

    def kek(self, version: int) -> Kek:
        return Kek(hkdf_sha256(self._material, info=_KEK_INFO + _u32(version)))


def _b64_key(text: str, *, what: str) -> bytes:
    try:
        material = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError, AttributeError):
        raise KeyVaultError(f"{what} is not valid base64 (expected base64 of 32 random bytes)"
                            ) from None
    if len(material) != KEY_SIZE:
        raise KeyVaultError(f"{what} must be base64 of exactly 32 bytes, not {len(material)}")
    return material


# -- data keys -------------------------------------------------------------------------

class Wrapper(Protocol):
    """The part of a KeyProvider that data keys are wrapped with."""

    def wrap(self, plaintext_key: bytes, *, version: int | None = None) -> tuple[int, bytes]:
        ...

    def unwrap(self, version: int, wrapped: bytes) -> bytes:
        ...


class DataKey:
    """An opaque handle on one version of one customer's data key (DEK)."""

    __slots__ = ("_material", "customer_id", "version")

    def __init__(self, customer_id: str, version: int, material: bytes) -> None:
        if len(material) != KEY_SIZE:
            raise KeyVaultError("a data key must be 32 bytes")
        self.customer_id = customer_id
        self.version = version
        self._material = material

    @classmethod
    def generate(cls, customer_id: str, version: int = 1) -> DataKey:
        return cls(customer_id, version, os.urandom(KEY_SIZE))

    def __repr__(self) -> str:
        return f"DataKey(customer_id={self.customer_id!r}, version={self.version})"


def wrap_data_key(provider: Wrapper, key: DataKey | VaultSecret, *,
                  version: int | None = None) -> tuple[int, bytes]:
    """(KEK version, wrapped bytes) of a data key or vault secret, via the provider."""
    return provider.wrap(key._material, version=version)


def unwrap_data_key(provider: Wrapper, customer_id: str, version: int, kek_version: int,
                    wrapped: bytes) -> DataKey:
    return DataKey(customer_id, version, provider.unwrap(kek_version, wrapped))


def field_aead(key: DataKey, field: str) -> AESGCM:
    """AES-256-GCM under the per-field subkey HKDF-SHA256(DEK, info=label || field)."""
    return AESGCM(hkdf_sha256(key._material, info=_FIELD_INFO + field.encode("utf-8")))


# -- vault-level secret: blind-index keys, subject references, key check ---------------

class VaultSecret:
    """A vault's own 32-byte secret, stored wrapped under the KEK like a data key."""

    __slots__ = ("_inner", "_material", "_outer")

    def __init__(self, material: bytes) -> None:
        if len(material) != KEY_SIZE:
            raise KeyVaultError("the vault secret must be 32 bytes")
        self._material = material
        # HMAC-SHA256 under the subject key (RFC 2104), its two padded key blocks hashed
        # once: every request pseudonymises its subjects, and the hash states copied
        # here run the same code as the audit chain's hash right after it.
        key = hkdf_sha256(material, info=_SUBJECT_INFO)
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key.ljust(64, b"\0")))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key.ljust(64, b"\0")))

    @classmethod
    def generate(cls) -> VaultSecret:
        return cls(os.urandom(KEY_SIZE))

    @classmethod
    def unwrap(cls, provider: Wrapper, kek_version: int, wrapped: bytes) -> VaultSecret:
        return cls(provider.unwrap(kek_version, wrapped))

    def __repr__(self) -> str:
        return "VaultSecret(<secret>)"

    def check_value(self) -> bytes:
        """A key-check value: proves the right secret was unwrapped without revealing it."""
        return hmac_sha256(self._material, _CHECK_INFO)[:16]

    def subject_mac(self, customer_id: str) -> bytes:
        inner = self._inner.copy()
        inner.update(customer_id.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def index_key(self, name: str) -> IndexKey:
        return IndexKey(name, hkdf_sha256(self._material, info=_INDEX_INFO + name.encode()))

    def token_key(self, purpose: str) -> TokenKey:
        """The key of the tokens one front door seals (the console's links, cookies and
        CSRF tokens): the same wherever this vault is opened, i.e. on every server."""
        return TokenKey(hkdf_sha256(self._material, info=_TOKEN_INFO + purpose.encode()))


class TokenKey:
    """Seals and authenticates small tokens (never customer data): AES-256-GCM with a
    random nonce and a context as associated data, and a separate HMAC key."""

    __slots__ = ("_aead", "_mac_key")

    def __init__(self, material: bytes) -> None:
        if len(material) != KEY_SIZE:
            raise KeyVaultError("a token key is 32 bytes")
        self._aead = AESGCM(material)
        self._mac_key = hkdf_sha256(material, info=_TOKEN_MAC_INFO)

    def __repr__(self) -> str:
        return "TokenKey(<secret>)"

    def seal(self, data: bytes, *, context: bytes) -> bytes:
        """nonce || ciphertext+tag of `data`, bound to `context`."""
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, data, context)

    def open(self, sealed: bytes, *, context: bytes) -> bytes | None:
        """The data, or None if `sealed` was altered, made for another context or under
        another key."""
        if len(sealed) < NONCE_SIZE + 16:
            return None
        try:
            return self._aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], context)
        except InvalidTag:
            return None

    def mac(self, message: bytes) -> bytes:
        return hmac_sha256(self._mac_key, message)


class IndexKey:
    """The HMAC key of one blind index (one field)."""

    __slots__ = ("_material", "name")

    def __init__(self, name: str, material: bytes) -> None:
        self.name = name
        self._material = material

    def __repr__(self) -> str:
        return f"IndexKey(name={self.name!r})"

    def mac(self, data: bytes) -> bytes:
        return hmac_sha256(self._material, data)


# -- signing ---------------------------------------------------------------------------

class Ed25519Signer:
    """An Ed25519 private key (audit checkpoints, erasure receipts)."""

    __slots__ = ("_key", "public_key")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes) -> Ed25519Signer:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise KeyVaultError("the signing key file is not a PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyVaultError("the signing key file does not hold an Ed25519 key")
        return cls(key)

    def __repr__(self) -> str:
        return "Ed25519Signer(<secret>)"

    def to_pem(self) -> bytes:
        return self._key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)
