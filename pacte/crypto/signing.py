"""Ed25519 signatures for audit checkpoints and erasure receipts.

The signing key is kept apart from the data keys on purpose: it lives in its own file
(`signing.key`, PEM PKCS#8, mode 0600), is never wrapped by the KEK, and destroying or
rotating data keys never touches it, so receipts signed before an erasure stay
verifiable after it. Verification needs only the 32-byte public key.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pacte.crypto._files import read_private, write_private
from pacte.crypto._keys import Ed25519Signer, verify_ed25519

__all__ = ["SigningKey", "verify_signature"]

_WHAT = "signing key file"


class SigningKey:
    """An Ed25519 private key: `sign`, plus the public key and its short fingerprint."""

    __slots__ = ("_signer",)

    def __init__(self, signer: Ed25519Signer) -> None:
        self._signer = signer

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh key held in memory only (tests, or before `create`)."""
        return cls(Ed25519Signer.generate())

    @classmethod
    def create(cls, path: Path) -> SigningKey:
        """Generate a key and write it to `path` (mode 0600); refuses to overwrite a file."""
        key = cls.generate()
        write_private(Path(path), key._signer.to_pem(), what=_WHAT, replace=False)
        return key

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Read a key file; KeyVaultError if it is missing, malformed or readable by others."""
        return cls(Ed25519Signer.from_pem(read_private(Path(path), what=_WHAT)))

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"

    @property
    def public_key(self) -> bytes:
        """The 32 raw bytes of the public key."""
        return self._signer.public_key

    @property
    def key_id(self) -> str:
        """A short fingerprint of the public key (16 hex digits of its SHA-256)."""
        return hashlib.sha256(self._signer.public_key).hexdigest()[:16]

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        return self._signer.sign(message)


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature; False for anything else, never raises."""
    return verify_ed25519(public_key, signature, message)
