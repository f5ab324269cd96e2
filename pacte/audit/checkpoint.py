"""Signed checkpoints: (size, Merkle root, chain head, time, key id) under Ed25519.

A checkpoint commits to the whole log up to `size`: the Merkle root for inclusion and
consistency proofs, the chain head for a plain sequential re-check. The signed
message is the RFC 8785 form of those fields plus a type tag, so a signature made for
a checkpoint cannot be replayed as a receipt or anything else we sign.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pacte.audit.canonical import canonical_bytes
from pacte.crypto.signing import SigningKey, verify_signature

__all__ = ["CHECKPOINT_TYPE", "Checkpoint"]

CHECKPOINT_TYPE = "pacte.audit.checkpoint/v1"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"checkpoint {what} must be a base64 string")
    return base64.b64decode(text, validate=True)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    size: int
    root: bytes
    head: bytes
    time: str
    key_id: str
    public_key: bytes
    signature: bytes

    @staticmethod
    def message_for(*, size: int, root: bytes, head: bytes, time: str, key_id: str) -> bytes:
        """The exact bytes that are signed."""
        return canonical_bytes({
            "type": CHECKPOINT_TYPE,
            "size": size,
            "root": root.hex(),
            "head": head.hex(),
            "time": time,
            "key_id": key_id,
        })

    @classmethod
    def create(cls, signer: SigningKey, *, size: int, root: bytes, head: bytes, time: str
               ) -> Checkpoint:
        message = cls.message_for(size=size, root=root, head=head, time=time,
                                  key_id=signer.key_id)
        return cls(size=size, root=root, head=head, time=time, key_id=signer.key_id,
                   public_key=signer.public_key, signature=signer.sign(message))

    def message(self) -> bytes:
        return self.message_for(size=self.size, root=self.root, head=self.head,
                                time=self.time, key_id=self.key_id)

    def verify(self, public_key: bytes | None = None) -> bool:
        """Is the signature valid, under `public_key` if given, else the key it carries?"""
        key = self.public_key if public_key is None else public_key
        try:
            message = self.message()
        except (AttributeError, TypeError, ValueError):
            return False  # fields of the wrong type, read back from a tampered file
        return verify_signature(key, self.signature, message)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": CHECKPOINT_TYPE,
            "size": self.size,
            "root": _b64(self.root),
            "head": _b64(self.head),
            "time": self.time,
            "key_id": self.key_id,
            "public_key": _b64(self.public_key),
            "signature": _b64(self.signature),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Checkpoint:
        """Parse an exported checkpoint; ValueError, KeyError or TypeError if malformed.

        Parsing does not verify the signature: call `verify` (or hand it to `verify()`
        as `trusted`, which does).
        """
        if doc.get("type") != CHECKPOINT_TYPE:
            raise ValueError(f"not a {CHECKPOINT_TYPE} document")
        size = doc["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("checkpoint size must be a whole number >= 0")
        time, key_id = doc["time"], doc["key_id"]
        if not isinstance(time, str) or not isinstance(key_id, str):
            raise TypeError("checkpoint time and key_id must be strings")
        root, head = _unb64(doc["root"], "root"), _unb64(doc["head"], "head")
        if len(root) != 32 or len(head) != 32:
            raise ValueError("checkpoint root and head must be 32-byte hashes")
        return cls(size=size, root=root, head=head, time=time, key_id=key_id,
                   public_key=_unb64(doc["public_key"], "public_key"),
                   signature=_unb64(doc["signature"], "signature"))
