"""Field-level encryption, key vault, blind index and signing (work in progress)."""

from __future__ import annotations

from pacte.crypto.signing import SigningKey, verify_signature

__all__ = ["SigningKey", "verify_signature"]
