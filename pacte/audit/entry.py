"""An audit entry: what one record becomes on the trail, and the record's checks.

Each entry is the RFC 8785 JSON of the caller's record plus `seq` (0, 1, 2, ...) and
`time` (ISO 8601 UTC). One hash is kept per entry, and it does two jobs:

    entry_hash = SHA-256(0x00 || previous entry_hash || canonical bytes)

It is the hash chain (each entry commits to the one before it; GENESIS stands before
seq 0) and, being the RFC 6962 leaf hash of the leaf data `previous entry_hash ||
canonical bytes`, the leaf of the Merkle tree that checkpoints and inclusion proofs
are made of.

Records hold no personal data: subjects are pseudonymous references, fields are
names. Bytes are refused outright, since in a record they could only be ciphertext or
key material.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pacte.audit.canonical import check_json_value
from pacte.errors import IntegrityError

__all__ = [
    "GENESIS",
    "RESERVED_KEYS",
    "AuditEntry",
    "Prepared",
    "aware",
    "format_time",
    "parse_time",
    "prepare",
]

# The chain's "previous hash" before the first entry: a fixed, domain-separated value.
# v3: one hash per entry, the chain link and the Merkle leaf at once (v1 and v2 hashed
# each entry two or three times; neither was deployed). Schema version 2 marks v3 files.
GENESIS = hashlib.sha256(b"pacte.audit.chain/v3 genesis").digest()
RESERVED_KEYS = frozenset({"seq", "time"})

def format_time(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds and a Z: fixed width, so text order is time order."""
    if moment.tzinfo is not UTC:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    # %-formatting of the fields is the cheapest way found: strftime costs several times
    # more, and isoformat with its offset cut off half as much again, on every append.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 (faster than f-strings)
        moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second,
        moment.microsecond)


def aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(slots=True)
class AuditEntry:
    """One entry: its place, its time, the caller's record, its hash and the one before.

    `entry_hash` is also the entry's Merkle leaf hash: SHA-256(0x00 || leaf_data).
    """

    seq: int
    time: str
    record: Mapping[str, Any]
    entry_hash: bytes = field(repr=False)
    prev_hash: bytes = field(repr=False)
    canonical: bytes = field(repr=False)

    @classmethod
    def from_row(cls, seq: int, body: bytes, entry_hash: bytes, prev: bytes | None
                 ) -> AuditEntry:
        try:
            doc = json.loads(body)
            time = doc.pop("time")
            doc.pop("seq")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise IntegrityError(f"audit entry {seq} is unreadable") from exc
        if seq == 0:
            prev = GENESIS
        return cls(seq=seq, time=time, record=doc, entry_hash=entry_hash,
                   prev_hash=b"" if prev is None else bytes(prev), canonical=body)

    @property
    def leaf_data(self) -> bytes:
        """What the Merkle leaf commits to: the previous entry hash, then the entry."""
        return self.prev_hash + self.canonical

    @property
    def subjects(self) -> list[str]:
        subjects = self.record.get("subjects")
        return [s for s in subjects if isinstance(s, str)] if isinstance(subjects, list) else []

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "record": dict(self.record),
                "entry_hash": self.entry_hash.hex(), "prev_hash": self.prev_hash.hex()}


# (record, fast path applies, subjects): a plain tuple, since one is made per append.
Prepared = tuple[Mapping[str, object], bool, Sequence[str]]


def prepare(record: Mapping[str, object]) -> Prepared:
    if type(record) is not dict and not isinstance(record, Mapping):  # ABC checks cost
        raise IntegrityError("an audit record must be a mapping")
    if "seq" in record or "time" in record:
        raise IntegrityError(f"audit records may not set {sorted(RESERVED_KEYS)}: "
                             "the trail assigns them")
    fast = check_json_value(record)
    subjects = record.get("subjects")
    if subjects is None:
        subjects = ()
    elif not isinstance(subjects, list | tuple):
        raise IntegrityError("audit record subjects must be a list of strings")
    else:
        for s in subjects:
            if type(s) is not str:
                raise IntegrityError("audit record subjects must be a list of strings")
    return record, fast, subjects
