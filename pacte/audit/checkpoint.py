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
    index_head  the head of the subject index chain (`pacte.audit.index`) over every
                complete block below `size`: the index rows the signer wrote from the
                entries, so that verify can check them by hashing them.

The signed message is the RFC 8785 form of those fields plus a type tag, so a
signature made for a checkpoint cannot be replayed as a receipt or anything else we
sign. A checkpoint with an `index_head` is of type v3 (the message has that one key
more); one without is of type v2, signed exactly as before v3 existed, so checkpoints
of trails written before it still verify.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pacte.audit.canonical import canonical_bytes
from pacte.crypto.signing import SigningKey, verify_signature

__all__ = ["CHECKPOINT_TYPE", "CHECKPOINT_TYPE_V2", "Checkpoint", "key_fingerprint"]

CHECKPOINT_TYPE = "pacte.audit.checkpoint/v3"
CHECKPOINT_TYPE_V2 = "pacte.audit.checkpoint/v2"


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
    index_head: bytes | None = None

    @property
    def type(self) -> str:
        return CHECKPOINT_TYPE_V2 if self.index_head is None else CHECKPOINT_TYPE

    @staticmethod
    def message_for(*, size: int, root: bytes, head: bytes, time: str, key_id: str,
                    prev: int | None = None, index_root: bytes | None = None,
                    subjects: int | None = None, index_head: bytes | None = None) -> bytes:
        """The exact bytes that are signed."""
        fields: dict[str, object] = {
            "type": CHECKPOINT_TYPE_V2,
            "size": size,
            "root": root.hex(),
            "head": head.hex(),
            "time": time,
            "key_id": key_id,
            "prev": prev,
            "index_root": None if index_root is None else index_root.hex(),
            "subjects": subjects,
        }
        if index_head is not None:
            fields["type"] = CHECKPOINT_TYPE
            fields["index_head"] = index_head.hex()
        return canonical_bytes(fields)

    @classmethod
    def create(cls, signer: SigningKey, *, size: int, root: bytes, head: bytes, time: str,
               prev: int | None = None, index_root: bytes | None = None,
               subjects: int | None = None, index_head: bytes | None = None) -> Checkpoint:
        message = cls.message_for(size=size, root=root, head=head, time=time,
                                  key_id=signer.key_id, prev=prev, index_root=index_root,
                                  subjects=subjects, index_head=index_head)
        return cls(size=size, root=root, head=head, time=time, key_id=signer.key_id,
                   public_key=signer.public_key, signature=signer.sign(message), prev=prev,
                   index_root=index_root, subjects=subjects, index_head=index_head)

    def message(self) -> bytes:
        return self.message_for(size=self.size, root=self.root, head=self.head,
                                time=self.time, key_id=self.key_id, prev=self.prev,
                                index_root=self.index_root, subjects=self.subjects,
                                index_head=self.index_head)

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
            "type": self.type,
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
        if self.index_head is not None:
            doc["index_head"] = _b64(self.index_head)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Checkpoint:
        """Parse an exported checkpoint; ValueError, KeyError or TypeError if malformed.

        Parsing does not verify the signature: call `verify` (or hand it to `verify()`
        as `trusted`, which does).
        """
        kind = doc.get("type")
        if kind not in (CHECKPOINT_TYPE, CHECKPOINT_TYPE_V2):
            raise ValueError(f"not a {CHECKPOINT_TYPE} (or v2) document")
        index_head = None
        if kind == CHECKPOINT_TYPE:
            index_head = _unb64(doc["index_head"], "index_head")
            if len(index_head) != 32:
                raise ValueError("checkpoint index_head must be a 32-byte hash")
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
                   subjects=None if subjects is None else _whole(subjects, "subjects"),
                   index_head=index_head)
