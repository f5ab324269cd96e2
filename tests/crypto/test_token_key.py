"""The token key a front door seals its own tokens with: bound to its context, refused
when altered, derived per purpose from the vault secret."""

from __future__ import annotations

import os

import pytest

from pacte.crypto._keys import TokenKey, VaultSecret
from pacte.errors import KeyVaultError


def test_a_sealed_token_opens_only_unaltered_in_its_context_under_its_key() -> None:
    secret = VaultSecret.generate()
    key = secret.token_key("console")
    sealed = key.seal(b"payload", context=b"kind-a")
    assert key.open(sealed, context=b"kind-a") == b"payload"
    assert secret.token_key("console").open(sealed, context=b"kind-a") == b"payload"
    assert key.open(sealed, context=b"kind-b") is None
    assert key.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), context=b"kind-a") is None
    assert key.open(sealed[:10], context=b"kind-a") is None
    assert secret.token_key("other").open(sealed, context=b"kind-a") is None
    assert VaultSecret.generate().token_key("console").open(sealed, context=b"kind-a") is None
    assert key.mac(b"m") == secret.token_key("console").mac(b"m") != key.mac(b"n")
    assert "payload" not in repr(key) and len(key.mac(b"m")) == 32


def test_a_token_key_is_32_bytes() -> None:
    with pytest.raises(KeyVaultError):
        TokenKey(os.urandom(16))
