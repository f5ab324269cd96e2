"""Signing-key rotation as an entry of the trail, signed by both keys.

    {"action": "audit.key_rotation", "old_key": b64, "new_key": b64,
     "old_signature": b64, "new_signature": b64, "subjects": [], "outcome": "ok"}

Both signatures are over the RFC 8785 form of

    {"type": "pacte.audit.key-rotation/v1", "old_key", "new_key", "seq", "after"}

where `seq` is the entry's own place and `after` the hash of the entry before it, so a
rotation cannot be replayed elsewhere in the log. The old key's signature hands
signing over; the new key's accepts the hand-over. Both are needed: with only the
old key's, anyone could claim to be its successor; with only the new key's, a forger
could claim any predecessor, and a verifier pinning today's key would accept a log
rewritten and signed by the forger's "old" key. Checkpoints of a size above the
rotation's seq must be signed by the new key, those up to it by the old one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pacte.audit.canonical import canonical_bytes
from pacte.crypto.signing import SigningKey, verify_signature

__all__ = ["ROTATION_ACTION", "Rotation", "rotation_record"]

ROTATION_ACTION = "audit.key_rotation"
_TYPE = "pacte.audit.key-rotation/v1"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _message(old_key: str, new_key: str, seq: int, after: bytes) -> bytes:
    return canonical_bytes({"type": _TYPE, "old_key": old_key, "new_key": new_key,
                            "seq": seq, "after": after.hex()})


def rotation_record(old: SigningKey, new: SigningKey, *, seq: int, after: bytes
                    ) -> dict[str, object]:
    """The audit record handing signing over from `old` to `new` at entry `seq`."""
    old_key, new_key = _b64(old.public_key), _b64(new.public_key)
    message = _message(old_key, new_key, seq, after)
    return {"action": ROTATION_ACTION, "subjects": [], "outcome": "ok",
            "old_key": old_key, "new_key": new_key,
            "old_signature": _b64(old.sign(message)),
            "new_signature": _b64(new.sign(message))}


@dataclass(frozen=True, slots=True)
class Rotation:
    seq: int
    old_key: bytes
    new_key: bytes

    @classmethod
    def parse(cls, seq: int, after: bytes, record: Mapping[str, Any]) -> Rotation | None:
        """The rotation this entry makes, or None if either signature fails."""
        try:
            old_key, new_key = record["old_key"], record["new_key"]
            message = _message(old_key, new_key, seq, after)
            old, new = (base64.b64decode(old_key, validate=True),
                        base64.b64decode(new_key, validate=True))
            if not (verify_signature(old, base64.b64decode(record["old_signature"],
                                                           validate=True), message)
                    and verify_signature(new, base64.b64decode(record["new_signature"],
                                                               validate=True), message)):
                return None
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error):
            return None
        return cls(seq, old, new)
