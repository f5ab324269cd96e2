"""Signed checkpoints: (size, Merkle root, chain head, time, key id, ...) under Ed25519.

A checkpoint commits to the whole log up to `size`: the Merkle root for inclusion and
consistency proofs, the chain head for a plain sequential re-check. Two optional
fields make it more:

    prev        the size of the trail's checkpoint before this one (None for the
                first): the checkpoints form a chain, so one taken out of the middle
                of the table is noticed by the next.
    index_root  the root of the subject map (see `pacte.audit.subjects`) over the same
    subjects    entries, and how many subjects it holds: what makes an access report
                provably complete as of this checkpoint.

The signed message is the RFC 8785 form of those fields plus a type tag, so a
signature made for a checkpoint cannot be replayed as a receipt or anything else we
sign.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pacte.audit.canonical import canonical_bytes
from pacte.crypto.signing import SigningKey, verify_signature

__all__ = ["CHECKPOINT_TYPE", "Checkpoint", "key_fingerprint"]

CHECKPOINT_TYPE = "pacte.audit.checkpoint/v2"


def key_fingerprint(public_key: bytes) -> str:
    """The full SHA-256 of a raw Ed25519 public key, in hex: what an auditor pins."""
    return hashlib.sha256(public_key).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"checkpoint {what} must be a base64 string")
    return base64.b64decode(text, validate=True)


def _whole(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"checkpoint {what} must be a whole number >= 0")
    return value


@dataclass(frozen=True, slots=True)
class Checkpoint:
    size: int
    root: bytes
    head: bytes
    time: str
    key_id: str
    public_key: bytes
    signature: bytes
    prev: int | None = None
    index_root: bytes | None = None
    subjects: int | None = None

    @staticmethod
    def message_for(*, size: int, root: bytes, head: bytes, time: str, key_id: str,
                    prev: int | None = None, index_root: bytes | None = None,
                    subjects: int | None = None) -> bytes:
        """The exact bytes that are signed."""
        return canonical_bytes({
            "type": CHECKPOINT_TYPE,
            "size": size,
            "root": root.hex(),
            "head": head.hex(),
            "time": time,
            "key_id": key_id,
            "prev": prev,
            "index_root": None if index_root is None else index_root.hex(),
            "subjects": subjects,
        })

    @classmethod
    def create(cls, signer: SigningKey, *, size: int, root: bytes, head: bytes, time: str,
               prev: int | None = None, index_root: bytes | None = None,
               subjects: int | None = None) -> Checkpoint:
        message = cls.message_for(size=size, root=root, head=head, time=time,
                                  key_id=signer.key_id, prev=prev, index_root=index_root,
                                  subjects=subjects)
        return cls(size=size, root=root, head=head, time=time, key_id=signer.key_id,
                   public_key=signer.public_key, signature=signer.sign(message), prev=prev,
                   index_root=index_root, subjects=subjects)

    def message(self) -> bytes:
        return self.message_for(size=self.size, root=self.root, head=self.head,
                                time=self.time, key_id=self.key_id, prev=self.prev,
                                index_root=self.index_root, subjects=self.subjects)

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.public_key)

    def verify(self, public_key: bytes | None = None) -> bool:
        """Is the signature valid, under `public_key` if given, else the key it carries?

        With a `public_key`, a checkpoint that carries another key fails even if its
        signature would verify under it.
        """
        if public_key is not None and public_key != self.public_key:
            return False
        try:
            message = self.message()
        except (AttributeError, TypeError, ValueError):
            return False  # fields of the wrong type, read back from a tampered file
        return verify_signature(self.public_key, self.signature, message)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": CHECKPOINT_TYPE,
            "size": self.size,
            "root": _b64(self.root),
            "head": _b64(self.head),
            "time": self.time,
            "key_id": self.key_id,
            "public_key": _b64(self.public_key),
            "key_fingerprint": self.fingerprint,
            "signature": _b64(self.signature),
            "prev": self.prev,
            "index_root": None if self.index_root is None else _b64(self.index_root),
            "subjects": self.subjects,
        }
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Checkpoint:
        """Parse an exported checkpoint; ValueError, KeyError or TypeError if malformed.

        Parsing does not verify the signature: call `verify` (or hand it to `verify()`
        as `trusted`, which does).
        """
        if doc.get("type") != CHECKPOINT_TYPE:
            raise ValueError(f"not a {CHECKPOINT_TYPE} document")
        size = _whole(doc["size"], "size")
        time, key_id = doc["time"], doc["key_id"]
        if not isinstance(time, str) or not isinstance(key_id, str):
            raise TypeError("checkpoint time and key_id must be strings")
        root, head = _unb64(doc["root"], "root"), _unb64(doc["head"], "head")
        if len(root) != 32 or len(head) != 32:
            raise ValueError("checkpoint root and head must be 32-byte hashes")
        prev = doc.get("prev")
        index_root = doc.get("index_root")
        subjects = doc.get("subjects")
        return cls(size=size, root=root, head=head, time=time, key_id=key_id,
                   public_key=_unb64(doc["public_key"], "public_key"),
                   signature=_unb64(doc["signature"], "signature"),
                   prev=None if prev is None else _whole(prev, "prev"),
                   index_root=None if index_root is None else _unb64(index_root, "index_root"),
                   subjects=None if subjects is None else _whole(subjects, "subjects"))
