"""Sealed tokens for the pages: what a cookie or a link carries, encrypted and dated.

A token is sealed (AES-256-GCM, pacte.crypto's `TokenKey`) over a small JSON payload
with the token's kind as associated data: a link cannot be replayed as a sign-in
cookie, an altered byte fails the tag, and nothing inside (a customer id, an API key)
can be read from it. Every token carries its expiry; `open` refuses one past it.

The key is derived from the key vault's secret (`Pacte.token_key("console")`), so it
is the same on every server that opens the vault, a data directory's or one attached
to Neo4j (where the secret is kept wrapped under the KEK, never in plaintext): a link
made on one server, an auditor's cookie and a form's CSRF token hold on every other
server behind the same load balancer (docs/scale-out.md).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pacte.clock import to_micros
from pacte.errors import LinkRefused

if TYPE_CHECKING:
    from pacte.crypto import TokenKey
    from pacte.runtime import Pacte

__all__ = ["PURPOSE", "Sealer"]

PURPOSE = "console"


class Sealer:
    """Seals and opens the pages' tokens under one key."""

    def __init__(self, key: TokenKey) -> None:
        self._key = key

    @classmethod
    def for_runtime(cls, rt: Pacte) -> Sealer:
        return cls(rt.token_key(PURPOSE))

    def seal(self, kind: str, payload: dict[str, Any], *, expires: datetime) -> str:
        body = json.dumps({**payload, "exp": to_micros(expires)}, separators=(",", ":"))
        sealed = self._key.seal(body.encode("utf-8"), context=kind.encode())
        return base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")

    def open(self, kind: str, token: str, *, now: datetime) -> dict[str, Any]:
        """The payload, its expiry under "exp" (epoch microseconds); LinkRefused when
        altered, of another kind, or expired."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            body = self._key.open(raw, context=kind.encode())
            if body is None:
                raise ValueError("not sealed by this key")
            payload = json.loads(body)
            expires = int(payload["exp"])
        except (ValueError, binascii.Error, KeyError, TypeError, AttributeError,
                UnicodeEncodeError):
            raise LinkRefused("this link or session is not valid") from None
        if expires <= to_micros(now):
            raise LinkRefused("this link or session has expired")
        return dict(payload)

    def mac(self, *parts: str) -> str:
        """A keyed digest (CSRF tokens): hex HMAC-SHA-256 over the parts."""
        message = "\x00".join(parts).encode("utf-8", "surrogatepass")
        return self._key.mac(message).hex()
