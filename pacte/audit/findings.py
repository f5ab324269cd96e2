"""What verification finds: the kinds of damage, where they are, and the report.

The first problem met in seq order is reported, with the table, the seq or block,
and what differs:

    modified     an entry's bytes, hashes or columns are not what the chain says, or
                 a checkpoint's range no longer has the root it was signed with
    missing      a seq, an index pair or a checkpoint is absent
    invented     a row no entry accounts for
    reordered    an entry stands at another entry's place
    truncated    the log is shorter than its latest checkpoint
    bad signature                 a checkpoint or key rotation does not verify
    untrusted key                 signed by a key that is not the pinned one
    not an extension of the trusted checkpoint  (a rollback, or a rewrite re-signed)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pacte.audit.checkpoint import key_fingerprint

__all__ = [
    "BAD_SIGNATURE",
    "INVENTED",
    "MISSING",
    "MODIFIED",
    "NOT_EXTENSION",
    "REORDERED",
    "TRUNCATED",
    "UNTRUSTED_KEY",
    "CheckedRange",
    "Problem",
    "VerificationReport",
    "short_key",
]

MODIFIED = "modified"
MISSING = "missing"
INVENTED = "invented"
REORDERED = "reordered"
TRUNCATED = "truncated"
BAD_SIGNATURE = "bad signature"
UNTRUSTED_KEY = "untrusted key"
NOT_EXTENSION = "not an extension of the trusted checkpoint"


@dataclass(frozen=True, slots=True)
class CheckedRange:
    """Entries [start, end) and the checkpoint that closes them (None: not yet signed)."""

    start: int
    end: int
    checkpoint: int | None
    valid: bool
    time: str | None = None
    key_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "checkpoint": self.checkpoint,
                "valid": self.valid, "time": self.time, "key_id": self.key_id}


@dataclass
class VerificationReport:
    ok: bool
    size: int
    entries_checked: int
    checkpoints_valid: int
    checkpoints_total: int
    first_bad: int | None = None
    reason: str | None = None
    detail: str | None = None
    ranges: list[CheckedRange] = field(default_factory=list)
    root: bytes | None = None
    trusted_size: int | None = None
    source: str = ""
    table: str | None = None
    block: int | None = None
    pinned_key: str | None = None
    key_pinned: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "size": self.size,
            "entries_checked": self.entries_checked,
            "checkpoints_valid": self.checkpoints_valid,
            "checkpoints_total": self.checkpoints_total,
            "first_bad": self.first_bad,
            "reason": self.reason,
            "detail": self.detail,
            "table": self.table,
            "block": self.block,
            "ranges": [r.to_json() for r in self.ranges],
            "root": self.root.hex() if self.root is not None else None,
            "trusted_size": self.trusted_size,
            "pinned_key": self.pinned_key,
            "key_pinned": self.key_pinned,
            "source": self.source,
        }

    def lines(self) -> list[str]:
        """A human rendering, one line per checked range, then the results."""
        out = [f"Validating audit trail {self.source}: {self.size} entries, "
               f"{self.checkpoints_total} signed checkpoints"]
        if self.pinned_key is not None:
            how = "pinned" if self.key_pinned else "NOT pinned (trusted on first use)"
            out.append(f"Signing key {how}: {self.pinned_key}")
        for r in self.ranges:
            span = f"Entries {r.start} to {r.end - 1}" if r.end > r.start else "Empty log"
            if r.checkpoint is None:
                out.append(f"{span}: chain valid, not yet covered by a checkpoint")
            elif r.valid:
                out.append(f"{span}: valid, checkpoint {r.checkpoint} signed {r.time} "
                           f"by key {r.key_id}")
            else:
                out.append(f"{span}: INVALID against checkpoint {r.checkpoint} signed {r.time}")
        if self.trusted_size is not None and self.ok:
            out.append(f"Trusted checkpoint {self.trusted_size}: the log is a consistent "
                       "extension of it")
        out.append(f"Results: {self.entries_checked}/{self.size} entries valid, "
                   f"{self.checkpoints_valid}/{self.checkpoints_total} checkpoints valid")
        if self.ok:
            out.append("Audit trail is VALID")
        else:
            if self.first_bad is not None:
                where = f"first bad entry {self.first_bad}"
            elif self.block is not None:
                where = f"block {self.block}"
            else:
                where = "no single entry can be named"
            out.append(f"Audit trail is INVALID: {self.reason} in {self.table} ({where})")
            if self.detail:
                out.append(f"  {self.detail}")
        return out


class Problem(Exception):
    """One finding, raised where it is met; the report carries the first."""

    def __init__(self, reason: str, first_bad: int | None, detail: str, *,
                 table: str = "entries", block: int | None = None) -> None:
        super().__init__(detail)
        self.reason, self.first_bad, self.detail = reason, first_bad, detail
        self.table, self.block = table, block


def short_key(key: bytes | None) -> str:
    """A key as reports name it: the first 16 hex digits of its fingerprint."""
    return "none" if key is None else key_fingerprint(bytes(key))[:16]
