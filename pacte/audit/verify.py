"""Verification of an audit trail from its raw stored entries (G7).

Everything any reader is shown is recomputed from the canonical bytes as stored, or
checked against them; nothing stored is believed, only compared against:

    entries            the hash chain, every leaf hash (here); the columns beside the
                       body (time, principal, purpose: the query filters) are computed
                       from it by SQLite, by the definition `pacte.audit.derived` checks
    subject_blocks,    hashed against the index heads the checkpoints sign, and
                       recomputed from the bodies where no signed head vouches for them
                       (`pacte.audit.derived`)
    index subject maps,
    meta, the schema
    checkpoints        the Merkle root and chain head at each size, the stored
                       frontier, the chain of `prev` links (here), the index head
                       (`pacte.audit.derived`), and each signature
                       under the key in force at that size (`pacte.audit.pinning`)
    index_checkpoints  the same

The kinds of damage and the report are in `pacte.audit.findings`; the first problem
met in seq order is reported, naming the table, the seq or block, and what differs.

Entries are read a batch at a time through a separate read-only connection and each
is hashed once (its chain link and Merkle leaf at once). The subject index is checked
meanwhile on a second connection reading the same snapshot, in a thread of its own
(see `pacte.audit.derived`). Only a mismatch triggers the slow diagnosis. An
unreadable file raises (CorruptStore / StorageError) instead of returning a report,
so callers can tell "damaged" (exit 2) from "invalid" (exit 1).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import orjson

from pacte.audit.checkpoint import Checkpoint, key_fingerprint
from pacte.audit.derived import INDEX_BLOCK, IndexCheck, check_structure, twin
from pacte.audit.entry import GENESIS
from pacte.audit.findings import (
    BAD_SIGNATURE,
    INVENTED,
    MISSING,
    MODIFIED,
    NOT_EXTENSION,
    REORDERED,
    TRUNCATED,
    UNTRUSTED_KEY,
    CheckedRange,
    Problem,
    VerificationReport,
)
from pacte.audit.merkle import EMPTY_ROOT, HASH_SIZE, CompactRange, leaf_hasher
from pacte.audit.pinning import KeyChain, parse_key
from pacte.audit.rotation import ROTATION_ACTION
from pacte.audit.trail import AuditTrail

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
    "VerificationReport",
    "parse_key",
    "verify",
]

# Small enough that a batch's rows and hashes stay in the CPU cache between the chain
# pass and the Merkle pass (measured: 2,048 verifies about 15% faster than 50,000).
BATCH = 2048
_LOOKAHEAD = 10_000
_ROWS = "SELECT body, entry_hash FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq"
_BODY = "SELECT body FROM entries WHERE seq = ?"
# A lone max() is answered from the end of the primary key; count(*) reads every page.
_HIGH = "SELECT max(seq) FROM entries"
_LOW = "SELECT min(seq) FROM entries"
_COUNT = "SELECT count(*) FROM entries WHERE seq >= 0"
_HAS = "SELECT 1 FROM entries WHERE seq = ?"
_NEXT_GAP = (
    "SELECT e.seq + 1 FROM entries e WHERE e.seq >= ? AND NOT EXISTS"
    " (SELECT 1 FROM entries n WHERE n.seq = e.seq + 1) ORDER BY e.seq LIMIT 1"
)
_CHECKPOINTS = (
    "SELECT size, root, head, time, key_id, public_key, signature, prev, frontier,"
    " index_head FROM checkpoints ORDER BY size"
)
_INDEX_CHECKPOINTS = (
    "SELECT size, root, head, time, key_id, public_key, signature, prev, index_root,"
    " subjects FROM index_checkpoints ORDER BY size"
)
_BODIES_AFTER = "SELECT body FROM entries WHERE seq > ? ORDER BY seq LIMIT ?"
_ROTATION_BYTES = b'"action":"' + ROTATION_ACTION.encode() + b'"'
# Where problems found after the walk stand in seq order: after everything it checked.
_AFTER_WALK = 1 << 62


def verify(
    trail: AuditTrail,
    *,
    trusted: Checkpoint | None = None,
    key: str | None = None,
    public_key: bytes | None = None,
    fingerprint: str | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> VerificationReport:
    """Recompute and check the whole trail; see the module docstring for the reasons.

    `progress(checked, total)` is called after each batch of entries (a console shows
    how far a long verification has got).

    `key` (text, as `parse_key` reads it), `public_key` (raw Ed25519) or `fingerprint`
    (SHA-256 of it, hex) pins the key the checkpoints must be signed with; without
    any, the trail's own signer's key is pinned, and a trail without a signer trusts
    the first key it meets (the report says so). `trusted` is a checkpoint kept
    outside the trail: the current log must extend it.
    """
    pinned = True
    if key is not None:
        public_key, fingerprint = parse_key(key)
    if public_key is None and fingerprint is None:
        signer = trail.signer
        if signer is not None:
            public_key = signer.public_key
        else:
            pinned = False
    keys = KeyChain(public_key=public_key, pinned=pinned,
                    fingerprint=None if fingerprint is None else fingerprint.lower())
    with trail.reader() as db:
        other = twin(db, trail.path, first_read=_HIGH)
        verifier = None
        try:
            verifier = _Verifier(db, other, trusted=trusted, keys=keys,
                                 source=str(trail.path), progress=progress)
            return verifier.run()
        finally:
            if verifier is not None:
                verifier.index.stop()  # a storage error may leave it running
            if other is not None:
                other.close()


class _Verifier:
    def __init__(self, db: sqlite3.Connection, other: sqlite3.Connection | None, *,
                 trusted: Checkpoint | None, keys: KeyChain, source: str,
                 progress: Callable[[int, int], object] | None = None) -> None:
        self.db = db
        self.progress = progress
        self.trusted = trusted
        self.keys = keys
        high = db.execute(_HIGH).fetchone()[0]
        self.high: int = -1 if high is None or high < 0 else int(high)
        self.checkpoints = [(Checkpoint(*row[:8]), row[8]) if row[9] is None else
                            (replace(Checkpoint(*row[:8]), index_head=row[9]), row[8])
                            for row in db.execute(_CHECKPOINTS)]
        self.by_size = {cp.size: (cp, frontier) for cp, frontier in self.checkpoints}
        self.index_by_size = {cp.size: cp for cp in
                              (Checkpoint(*row) for row in db.execute(_INDEX_CHECKPOINTS))}
        # Entries 0 .. high, until a batch comes back short (see _gap).
        self.count: int = self.high + 1
        self.ranges: list[CheckedRange] = []
        self.checkpoints_valid = 0
        self.range_start = 0
        self.checked = 0
        self.at = -1  # where the walk stands in seq order, for ordering problems
        self.last_cp: int | None = None
        self.last_index_cp: int | None = None
        self.frontier = CompactRange()
        self.source = source
        # The subject index and maps, on the twin connection (or on this one, later).
        heads: dict[int, list[bytes]] = {}
        for cp, _ in self.checkpoints:
            if cp.index_head is not None and cp.size <= self.count:
                heads.setdefault(cp.size // INDEX_BLOCK, []).append(cp.index_head)
        self.index = IndexCheck(other or db, blocks=self.count // INDEX_BLOCK,
                                maps=[cp for size, cp in self.index_by_size.items()
                                      if size <= self.count], heads=heads)
        self.parallel = other is not None

    # -- the walk ---------------------------------------------------------------

    def run(self) -> VerificationReport:
        if self.parallel:
            self.index.start()
        try:
            try:
                self._start()
            except Problem as p:
                self.index.limit = self.at
                self._first(p)
            self._first(None)
            self._check_tail()
            self.keys.check_pin()
            check_structure(self.db, indexed=self.count // INDEX_BLOCK,
                            index_head=self.index.head)
        except Problem as p:
            return self._report(p)
        if self.count > self.range_start:
            self.ranges.append(CheckedRange(self.range_start, self.count, None, True))
        return self._report(None)

    def _start(self) -> None:
        low = self.db.execute(_LOW).fetchone()[0]
        if low is not None and low < 0:
            raise Problem(INVENTED, None, f"a row at seq {low} is not part of the log")
        targets = sorted({*self.by_size, *self.index_by_size,
                          *([self.trusted.size] if self.trusted else [])})
        self._walk(targets)

    def _first(self, walked: Problem | None) -> None:
        """Raise whichever comes first in seq order: the walk's problem or the index's."""
        if not self.parallel:
            self.index.run()
        found = self.index.result()
        if found is not None and (walked is None or found[0] < self.at):
            at, problem = found
            self.checked = min(self.checked, at)
            self.ranges = [r for r in self.ranges if r.end <= at]
            self.checkpoints_valid = sum(r.checkpoint is not None for r in self.ranges)
            raise problem
        if walked is not None:
            raise walked

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
            self.at = 0
            self._check_target(0, EMPTY_ROOT, GENESIS)
            target = next(pending, None)
        start, high = 0, self.high
        while start <= high:
            end = min(start + BATCH, high + 1)
            leaves, limit = self._batch(start, end, prev)
            good = len(leaves)
            # Checkpoints closing before a bad entry come first in seq order.
            done = 0
            while target is not None and target <= start + good:
                self.at = target
                self.keys.follow(target)
                upto = target - start
                self.frontier.extend(leaves[done:upto])
                done = upto
                self._check_target(target, self.frontier.root(), leaves[upto - 1])
                target = next(pending, None)
            self.at = start + good
            self.keys.follow(start + good)
            self.frontier.extend(leaves[done:])
            self.checked = start + good
            if start + good < limit:
                raise self._diagnose(start + good)
            if self.progress is not None:
                self.progress(self.checked, self.count)
            if limit < end:
                raise Problem(MISSING, limit, f"entry {limit} is absent; "
                              f"entries up to {high} follow it")
            prev = leaves[-1]
            start = end

    def _batch(self, start: int, end: int, prev: bytes) -> tuple[list[bytes], int]:
        """The recomputed hashes of [start, limit) up to the first bad entry, and `limit`
        (`end`, or the first absent seq when the batch has a gap)."""
        rows = self.db.execute(_ROWS, (start, end)).fetchall()
        limit = end
        if len(rows) != end - start:  # seqs are unique: a short batch has a gap
            limit = self._gap(start)
            del rows[limit - start:]  # rows come in seq order: these are start .. limit-1
        return self._chain(start, prev, rows), limit

    def _chain(self, start: int, prev: bytes, rows: Sequence[tuple[Any, ...]]) -> list[bytes]:
        """The entry hashes of `rows` from seq `start`, up to the first that is not what
        the chain says (or not bytes at all). Key rotations are noted for the walk."""
        new = leaf_hasher  # chained_leaf_hash, inlined: this loop runs once per entry
        hashes: list[bytes] = []
        add = hashes.append
        h = prev
        try:
            for body, stored in rows:
                x = new()
                x.update(h)
                x.update(body)
                if x.digest() != stored:
                    break
                h = stored
                add(h)
        except TypeError:
            pass  # NULL, a number or text written over a body
        good = self._rotations(start, prev, rows[:len(hashes)])
        return hashes[:good]

    def _rotations(self, start: int, prev: bytes, rows: Sequence[tuple[Any, ...]]) -> int:
        """Note the key rotations among `rows` (entries from `start`, all chained), to be
        followed in seq order with the checkpoints (KeyChain.follow); how many rows
        are good (up to one that looks like a rotation and is not a JSON object). One
        search of the batch's bytes first: one per entry cost a third of the hashing."""
        if _ROTATION_BYTES not in b"\n".join([row[0] for row in rows]):
            return len(rows)
        h = prev
        for i, (body, stored) in enumerate(rows):
            if _ROTATION_BYTES in body:
                try:
                    doc = orjson.loads(body)
                except orjson.JSONDecodeError:
                    return i
                if not isinstance(doc, dict):
                    return i
                if doc.get("action") == ROTATION_ACTION:
                    self.keys.rotations.append((start + i, doc, h))
            h = stored
        return len(rows)

    def _check_target(self, size: int, root: bytes, head: bytes) -> None:
        found = self.by_size.get(size)
        if found is not None:
            self._check_checkpoint(*found, root, head)
        index_cp = self.index_by_size.get(size)
        if index_cp is not None:
            self.keys.check(index_cp, "index_checkpoints")
            _check_prev(index_cp, self.last_index_cp, "index_checkpoints")
            self.last_index_cp = size
            if index_cp.root != root or index_cp.head != head:
                raise Problem(MODIFIED, None, f"the first {size} entries no longer match "
                              f"the index checkpoint signed {index_cp.time}",
                              table="index_checkpoints")
            # Its subject map is recomputed by the index check (pacte.audit.derived).
        if self.trusted is not None and self.trusted.size == size:
            self._check_trusted(root, head)

    def _check_checkpoint(self, cp: Checkpoint, frontier: bytes, root: bytes,
                          head: bytes) -> None:
        self.keys.check(cp, "checkpoints")
        _check_prev(cp, self.last_cp, "checkpoints")
        size = cp.size
        if cp.root != root or cp.head != head:
            self.ranges.append(CheckedRange(self.range_start, size, size, False, cp.time,
                                            cp.key_id))
            raise Problem(MODIFIED, self.range_start,
                          f"entries {self.range_start} to {size - 1} no longer match the "
                          f"checkpoint signed {cp.time}")
        if frontier != b"".join(self.frontier.hashes):
            raise Problem(MODIFIED, None, f"the stored frontier of the checkpoint at "
                          f"size {size} is not the tree's", table="checkpoints")
        self.ranges.append(CheckedRange(self.range_start, size, size, True, cp.time,
                                        cp.key_id))
        self.checkpoints_valid += 1
        self.range_start = size
        self.last_cp = size

    def _check_trusted(self, root: bytes, head: bytes) -> None:
        trusted = self.trusted
        assert trusted is not None
        size = trusted.size
        self.keys.check_trusted(trusted)
        if trusted.root != root or trusted.head != head:
            raise Problem(NOT_EXTENSION, None,
                          f"the first {size} entries do not have the root of the trusted "
                          f"checkpoint signed {trusted.time}: the log was rewritten")
        if trusted.index_root is None:
            found = self.by_size.get(size)
            stored, name = (None if found is None else found[0]), "checkpoints"
        else:
            stored, name = self.index_by_size.get(size), "index_checkpoints"
        if stored is None or stored.signature != trusted.signature:
            raise Problem(MISSING, None, f"the trusted checkpoint at size {size} signed "
                          f"{trusted.time} is no longer in the trail", table=name)

    def _check_tail(self) -> None:
        """After the walk: is anything the trail once vouched for now gone?"""
        self.at = _AFTER_WALK
        expected = max([*self.by_size, *self.index_by_size], default=0)
        if expected > self.count:
            table = "checkpoints" if expected in self.by_size else "index_checkpoints"
            found = self.by_size.get(expected)
            # One the pinned key did not sign is invented; one it signed outlives its entries.
            self.keys.check(found[0] if found else self.index_by_size[expected], table)
            raise Problem(TRUNCATED, self.count, f"the log ends at {self.count} entries but "
                          f"a checkpoint in {table} covers {expected}")
        if self.trusted is not None and self.trusted.size > self.count:
            self.keys.check_trusted(self.trusted)
            raise Problem(NOT_EXTENSION, self.count,
                          f"the log holds {self.count} entries, fewer than the "
                          f"{self.trusted.size} of the trusted checkpoint: it was rolled back")

    # -- naming the problem -----------------------------------------------------

    def _diagnose(self, seq: int) -> Problem:
        """Why entry `seq` fails: its content, its place, or something else's place."""
        row = self.db.execute(_BODY, (seq,)).fetchone()
        found = None if row is None else _body_seq(row[0])
        if found is None or found == seq:
            return Problem(MODIFIED, seq, f"entry {seq} is not what the chain recorded")
        later = self.db.execute(_BODIES_AFTER, (seq, _LOOKAHEAD)).fetchall()
        if found < seq or any(_body_seq(r[0]) == seq for r in later):
            return Problem(REORDERED, seq, f"entry {found} stands at place {seq}")
        return Problem(MISSING, seq, f"entry {seq} is absent: entry {found} follows "
                       f"entry {seq - 1}")

    def _report(self, problem: Problem | None) -> VerificationReport:
        pin = self.keys.pin
        return VerificationReport(
            ok=problem is None,
            size=self.count,
            entries_checked=self.checked,
            checkpoints_valid=self.checkpoints_valid,
            checkpoints_total=len(self.checkpoints),
            first_bad=None if problem is None else problem.first_bad,
            reason=None if problem is None else problem.reason,
            detail=None if problem is None else problem.detail,
            table=None if problem is None else problem.table,
            block=None if problem is None else problem.block,
            ranges=self.ranges,
            root=self.frontier.root() if problem is None else None,
            trusted_size=None if self.trusted is None else self.trusted.size,
            pinned_key=None if pin is None else key_fingerprint(pin),
            key_pinned=self.keys.pinned,
            source=self.source,
        )


def _check_prev(cp: Checkpoint, last: int | None, table: str) -> None:
    """Checkpoints name the one before them: one taken out of the middle shows."""
    if cp.prev != last:
        before = "none" if last is None else f"the one at size {last}"
        raise Problem(MISSING if (cp.prev or 0) > (last or 0) else MODIFIED, None,
                      f"the checkpoint at size {cp.size} follows the one at size "
                      f"{cp.prev}, but the checkpoint before it in {table} is {before}",
                      table=table)


def _body_seq(body: object) -> int | None:
    try:
        doc = json.loads(body)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    seq = doc.get("seq") if isinstance(doc, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


assert HASH_SIZE == 32
