"""Sealed tokens for the pages: what a cookie or a link carries, encrypted and dated.

A token is AES-256-GCM over a small JSON payload under `console.key` (32 random bytes
in the data directory, 0600, made on first use), with the token's kind as associated
data: a link cannot be replayed as a sign-in cookie, an altered byte fails the tag,
and nothing inside (a customer id, an API key) can be read from it. Every token
carries its expiry; `open` refuses one past it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pacte.clock import to_micros
from pacte.errors import ConfigError, LinkRefused

__all__ = ["KEY_FILE", "Sealer"]

KEY_FILE = "console.key"
_NONCE = 12


def _load_key(path: Path) -> bytes:
    """The key in `path`, made first if absent. Made aside and linked into place, so
    two processes starting at once both end up reading the one complete key."""
    if not path.exists():
        staged = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        try:
            os.link(staged, path)
        except FileExistsError:
            pass  # another process made it first: theirs is the key
        finally:
            staged.unlink()
    key = path.read_bytes()
    if len(key) != 32:
        raise ConfigError(f"{path} is not a console key (32 bytes)")
    return key


class Sealer:
    """Seals and opens the pages' tokens under one key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self._mac_key = hashlib.sha256(b"pacte.console/mac\x00" + key).digest()

    @classmethod
    def for_directory(cls, data_dir: Path) -> Sealer:
        return cls(_load_key(data_dir / KEY_FILE))

    def seal(self, kind: str, payload: dict[str, Any], *, expires: datetime) -> str:
        body = json.dumps({**payload, "exp": to_micros(expires)}, separators=(",", ":"))
        nonce = secrets.token_bytes(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, body.encode("utf-8"), kind.encode())
        return base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")

    def open(self, kind: str, token: str, *, now: datetime) -> dict[str, Any]:
        """The payload, its expiry under "exp" (epoch microseconds); LinkRefused when
        altered, of another kind, or expired."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            body = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], kind.encode())
            payload = json.loads(body)
            expires = int(payload["exp"])
        except (InvalidTag, ValueError, binascii.Error, KeyError, TypeError, AttributeError,
                UnicodeEncodeError):
            raise LinkRefused("this link or session is not valid") from None
        if expires <= to_micros(now):
            raise LinkRefused("this link or session has expired")
        return dict(payload)

    def mac(self, *parts: str) -> str:
        """A keyed digest (CSRF tokens): hex HMAC-SHA-256 over the parts."""
        message = "\x00".join(parts).encode("utf-8", "surrogatepass")
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()
