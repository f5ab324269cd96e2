"""Field-level encryption, the key vault, the blind index and signing.

Callers use the safe recipes only: `FieldCipher` seals and opens personal fields,
`BlindIndex` makes lookup tokens, `KeyVault` keeps per-customer data keys (and
destroys them on erasure), a `KeyProvider` supplies the key-encryption key, and
`SigningKey` signs audit checkpoints and receipts. Raw key material never leaves
`pacte.crypto._keys`.
"""

from __future__ import annotations

from pacte.crypto._keys import TokenKey
from pacte.crypto.blind_index import BlindIndex, normalise_email, normalise_phone
from pacte.crypto.cipher import FieldCipher
from pacte.crypto.provider import (
    EnvKeyProvider,
    FileKeyProvider,
    KeyProvider,
    provider_from_env_or_file,
)
from pacte.crypto.signing import SigningKey, verify_signature
from pacte.crypto.vault import KeyVault

__all__ = [
    "BlindIndex",
    "EnvKeyProvider",
    "FieldCipher",
    "FileKeyProvider",
    "KeyProvider",
    "KeyVault",
    "SigningKey",
    "TokenKey",
    "normalise_email",
    "normalise_phone",
    "provider_from_env_or_file",
    "verify_signature",
]
