"""Verification of an audit trail from its raw stored entries (G7).

Everything is recomputed from the canonical bytes as stored: the hash chain, every
leaf hash, the Merkle root and chain head at each checkpoint, and each checkpoint's
signature. Nothing stored is believed, only compared against. The first problem met
in seq order is reported, naming the entry where it can be named:

    modified     an entry's bytes or hashes are not what the chain says, or a
                 checkpoint's range no longer has the root it was signed with
    missing      a seq is absent (a deleted entry, or later entries renumbered)
    reordered    an entry stands at another entry's place
    truncated    the log is shorter than its latest checkpoint
    bad signature                             a checkpoint's signature does not verify
    not an extension of the trusted checkpoint  (a rollback, or a rewrite re-signed)

Entries are read a batch at a time through a separate read-only connection, and each
is hashed once, as its RFC 6962 leaf input `0x00 || previous entry_hash || body`:
that hash is both the entry's chain link and its Merkle leaf, and it is compared with
the stored one as it is made. The happy path parses nothing.
Only a mismatch triggers the slow, parsing diagnosis. Likewise the log's extent comes
from the end of the primary key (max(seq)); whether it has gaps is learnt from the
batch reads, and only a short batch costs a count and a search for the gap.
An unreadable file raises (CorruptStore / StorageError) instead of returning a report,
so callers can tell "damaged" (exit 2) from "invalid" (exit 1).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pacte.audit.checkpoint import Checkpoint
from pacte.audit.merkle import EMPTY_ROOT, CompactRange, leaf_hasher
from pacte.audit.trail import GENESIS, AuditTrail

__all__ = [
    "BAD_SIGNATURE",
    "MISSING",
    "MODIFIED",
    "NOT_EXTENSION",
    "REORDERED",
    "TRUNCATED",
    "CheckedRange",
    "VerificationReport",
    "verify",
]

MODIFIED = "modified"
MISSING = "missing"
REORDERED = "reordered"
TRUNCATED = "truncated"
BAD_SIGNATURE = "bad signature"
NOT_EXTENSION = "not an extension of the trusted checkpoint"

# Small enough that a batch's rows and hashes stay in the CPU cache between the chain
# pass and the Merkle pass (measured: 2,048 verifies about 15% faster than 50,000).
BATCH = 2048
_LOOKAHEAD = 10_000
_ROWS = "SELECT body, entry_hash FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq"
_BODY = "SELECT body FROM entries WHERE seq = ?"
# A lone max() is answered from the end of the primary key; count(*) reads every page.
_HIGH = "SELECT max(seq) FROM entries"
_COUNT = "SELECT count(*) FROM entries WHERE seq >= 0"
_HAS = "SELECT 1 FROM entries WHERE seq = ?"
_NEXT_GAP = (
    "SELECT e.seq + 1 FROM entries e WHERE e.seq >= ? AND NOT EXISTS"
    " (SELECT 1 FROM entries n WHERE n.seq = e.seq + 1) ORDER BY e.seq LIMIT 1"
)
_CHECKPOINTS = (
    "SELECT size, root, head, time, key_id, public_key, signature FROM checkpoints"
    " ORDER BY size"
)
_BODIES_AFTER = "SELECT body FROM entries WHERE seq > ? ORDER BY seq LIMIT ?"


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
            "ranges": [r.to_json() for r in self.ranges],
            "root": self.root.hex() if self.root is not None else None,
            "trusted_size": self.trusted_size,
            "source": self.source,
        }

    def lines(self) -> list[str]:
        """A human rendering, one line per checked range, then the results."""
        out = [f"Validating audit trail {self.source}: {self.size} entries, "
               f"{self.checkpoints_total} signed checkpoints"]
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
            where = f"first bad entry {self.first_bad}" if self.first_bad is not None \
                else "no single entry can be named"
            out.append(f"Audit trail is INVALID: {self.reason} ({where})")
            if self.detail:
                out.append(f"  {self.detail}")
        return out


class _Problem(Exception):
    def __init__(self, reason: str, first_bad: int | None, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.first_bad, self.detail = reason, first_bad, detail


def verify(
    trail: AuditTrail,
    *,
    trusted: Checkpoint | None = None,
    public_key: bytes | None = None,
) -> VerificationReport:
    """Recompute and check the whole trail; see the module docstring for the reasons.

    `public_key` pins the key every checkpoint must be signed with (otherwise each is
    checked against the key stored with it). `trusted` is a checkpoint kept outside
    the trail: the current log must extend it.
    """
    with trail.reader() as db:
        return _Verifier(db, trusted=trusted, public_key=public_key,
                         source=str(trail.path)).run()


class _Verifier:
    def __init__(self, db: sqlite3.Connection, *, trusted: Checkpoint | None,
                 public_key: bytes | None, source: str) -> None:
        self.db = db
        self.trusted = trusted
        self.public_key = public_key
        self.checkpoints = [Checkpoint(*row) for row in db.execute(_CHECKPOINTS)]
        self.by_size = {cp.size: cp for cp in self.checkpoints}
        high = db.execute(_HIGH).fetchone()[0]
        self.high: int = -1 if high is None or high < 0 else int(high)
        # Entries 0 .. high, until a batch comes back short (see _gap).
        self.count: int = self.high + 1
        self.ranges: list[CheckedRange] = []
        self.checkpoints_valid = 0
        self.range_start = 0
        self.checked = 0
        self.frontier = CompactRange()
        self.source = source

    # -- the walk ---------------------------------------------------------------

    def run(self) -> VerificationReport:
        try:
            targets = sorted({*self.by_size, *([self.trusted.size] if self.trusted else [])})
            self._walk(targets)
            self._check_tail(targets)
        except _Problem as p:
            return self._report(p)
        if self.count > self.range_start:
            self.ranges.append(CheckedRange(self.range_start, self.count, None, True))
        return self._report(None)

    def _gap(self, start: int) -> int:
        """The first absent seq from `start` on (one is known to be absent); counts the log."""
        self.count = int(self.db.execute(_COUNT).fetchone()[0])
        if self.db.execute(_HAS, (start,)).fetchone() is None:
            return start
        row = self.db.execute(_NEXT_GAP, (start,)).fetchone()
        return self.high + 1 if row is None else int(row[0])

    def _walk(self, targets: list[int]) -> None:
        """Entries from 0 on, in batches, up to the end of the log or its first gap."""
        prev = GENESIS
        pending = iter(targets)
        target = next(pending, None)
        if target == 0:
            self._check_target(0, EMPTY_ROOT, GENESIS)
            target = next(pending, None)
        start, high = 0, self.high
        while start <= high:
            end = min(start + BATCH, high + 1)
            leaves, bad, limit = self._batch(start, end, prev)
            n = limit - start
            good = n if bad is None else bad
            # Checkpoints closing before the bad entry come first in seq order.
            done = 0
            while target is not None and target <= start + good:
                upto = target - start
                self.frontier.extend(leaves[done:upto])
                done = upto
                self._check_target(target, self.frontier.root(), leaves[upto - 1])
                target = next(pending, None)
            if bad is not None:
                self.checked = start + bad
                raise self._diagnose(start + bad)
            self.frontier.extend(leaves[done:])
            self.checked = start + n
            if limit < end:
                raise _Problem(MISSING, limit, f"entry {limit} is absent; "
                               f"entries up to {high} follow it")
            prev = leaves[-1]
            start = end

    def _batch(self, start: int, end: int, prev: bytes
               ) -> tuple[list[bytes], int | None, int]:
        """The recomputed hashes of [start, limit), the first bad index, and `limit`:
        `end`, or the first absent seq when the batch has a gap."""
        rows = self.db.execute(_ROWS, (start, end)).fetchall()
        limit = end
        if len(rows) != end - start:  # seqs are unique: a short batch has a gap
            limit = self._gap(start)
            del rows[limit - start:]  # rows come in seq order: these are start .. limit-1
        hashes = _chain(prev, rows)
        return hashes, None if len(hashes) == len(rows) else len(hashes), limit

    def _check_target(self, size: int, root: bytes, head: bytes) -> None:
        cp = self.by_size.get(size)
        if cp is not None:
            if not cp.verify(self.public_key):
                self.ranges.append(CheckedRange(self.range_start, size, size, False, cp.time,
                                                cp.key_id))
                raise _Problem(BAD_SIGNATURE, None,
                               f"the checkpoint at size {size} signed {cp.time} does not "
                               "verify")
            if cp.root != root or cp.head != head:
                self.ranges.append(CheckedRange(self.range_start, size, size, False, cp.time,
                                                cp.key_id))
                raise _Problem(MODIFIED, self.range_start,
                               f"entries {self.range_start} to {size - 1} no longer match the "
                               f"checkpoint signed {cp.time}")
            self.ranges.append(CheckedRange(self.range_start, size, size, True, cp.time,
                                            cp.key_id))
            self.checkpoints_valid += 1
            self.range_start = size
        trusted = self.trusted
        if trusted is not None and trusted.size == size:
            self._check_trusted_signature()
            if trusted.root != root or trusted.head != head:
                raise _Problem(NOT_EXTENSION, None,
                               f"the first {size} entries do not have the root of the trusted "
                               f"checkpoint signed {trusted.time}: the log was rewritten")

    def _check_trusted_signature(self) -> None:
        assert self.trusted is not None
        if not self.trusted.verify(self.public_key):
            raise _Problem(BAD_SIGNATURE, None, "the trusted checkpoint's signature does "
                           "not verify")

    def _check_tail(self, targets: list[int]) -> None:
        """After the walk: is anything the trail once vouched for now gone?"""
        expected = max(self.by_size, default=0)
        if expected > self.count:
            raise _Problem(TRUNCATED, self.count, f"the log ends at {self.count} entries but "
                           f"its checkpoint signed {self.by_size[expected].time} covers "
                           f"{expected}")
        if self.trusted is not None and self.trusted.size > self.count:
            self._check_trusted_signature()
            raise _Problem(NOT_EXTENSION, self.count,
                           f"the log holds {self.count} entries, fewer than the "
                           f"{self.trusted.size} of the trusted checkpoint: it was rolled back")

    # -- naming the problem -----------------------------------------------------

    def _diagnose(self, seq: int) -> _Problem:
        """Why entry `seq` fails: its content, its place, or something else's place."""
        row = self.db.execute(_BODY, (seq,)).fetchone()
        found = None if row is None else _body_seq(row[0])
        if found is None or found == seq:
            return _Problem(MODIFIED, seq, f"entry {seq} is not what the chain recorded")
        later = self.db.execute(_BODIES_AFTER, (seq, _LOOKAHEAD)).fetchall()
        if found < seq or any(_body_seq(r[0]) == seq for r in later):
            return _Problem(REORDERED, seq, f"entry {found} stands at place {seq}")
        return _Problem(MISSING, seq, f"entry {seq} is absent: entry {found} follows "
                        f"entry {seq - 1}")

    def _report(self, problem: _Problem | None) -> VerificationReport:
        return VerificationReport(
            ok=problem is None,
            size=self.count,
            entries_checked=self.checked,
            checkpoints_valid=self.checkpoints_valid,
            checkpoints_total=len(self.checkpoints),
            first_bad=None if problem is None else problem.first_bad,
            reason=None if problem is None else problem.reason,
            detail=None if problem is None else problem.detail,
            ranges=self.ranges,
            root=self.frontier.root() if problem is None else None,
            trusted_size=None if self.trusted is None else self.trusted.size,
            source=self.source,
        )


def _chain(prev: bytes, rows: Sequence[tuple[Any, Any]]) -> list[bytes]:
    """The entry hashes of (body, stored hash) rows chained from `prev`, up to the first
    row whose stored hash is not the recomputed one, or whose body is not bytes."""
    new = leaf_hasher  # chained_leaf_hash, inlined: this loop runs once per entry
    hashes: list[bytes] = []
    add = hashes.append
    h = prev
    try:
        for body, stored in rows:
            x = new()
            x.update(h)
            x.update(body)
            h = x.digest()
            if h != stored:
                break
            add(h)
    except TypeError:
        pass  # NULL, a number or text written over a body
    return hashes


def _body_seq(body: object) -> int | None:
    try:
        doc = json.loads(body)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    seq = doc.get("seq") if isinstance(doc, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None
