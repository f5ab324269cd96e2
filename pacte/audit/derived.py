"""The trail's derived structures, checked against its hashed entries (part of verify, G7).

Nothing here is hashed into the chain, so each is recomputed from the entries' bodies
(the very bytes the walk hashes) or compared with what they imply:

    subject_blocks      per complete block of INDEX_BLOCK entries, exactly the rows the
                        entries' subjects make: every (subject, seq) pair present, none
                        invented, no row for a block not indexed yet (hashed against
                        the signed index heads, recomputed where they do not vouch)
    index_checkpoints   the subject map (`pacte.audit.subjects`) each one signs
    meta                exactly the rows the entries imply (the index chain's head too)
    the file's schema   exactly the trail's tables, as defined by this version: no other
                        table, index, trigger or view (the columns time, principal and
                        purpose are computed from the body by that definition)

Every checkpoint signs the head of the index chain over the blocks complete at its
size (`pacte.audit.index`): the rows the writer made from the entries. A stretch of
blocks between two signed block counts is checked by hashing its stored rows, in one
statement, into the chain: if the head there is the one signed (by the pinned key: the
walk checks every signature), the rows are the ones the entries made, and nothing is
recomputed. Blocks no head covers yet, and a stretch whose rows no longer hash to what
was signed, are recomputed by SQLite, one block per query, with the statement the
trail writes the index with (json_each over the bodies, subjects in order, seqs in
order), and compared as one JSON object per block; a difference is named row by row.
So the signed head is a shortcut, never the verdict: rows that hash differently but say
the same (seqs in another order) pass, as they always did.

That work runs on a second read-only connection, in a thread of its own, while the walk
hashes the chain: SQLite releases the GIL, so on two cores the index costs the walk
little. The second connection reads the same snapshot as the walk's (`twin`), so both
look at the same bodies.
"""

from __future__ import annotations

import bisect
import sqlite3
import sys
import threading
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import orjson

from pacte.audit.checkpoint import Checkpoint
from pacte.audit.findings import INVENTED, MISSING, MODIFIED, Problem
from pacte.audit.index import BLOCK as INDEX_BLOCK
from pacte.audit.index import (
    HEAD_KEY,
    INDEX_GENESIS,
    INDEXED_KEY,
    SPAN_TEXTS,
    expected_head,
    next_head,
)
from pacte.audit.schema import SCHEMA_VERSION, schema_objects
from pacte.audit.subjects import SubjectMap

__all__ = ["INDEX_BLOCK", "IndexCheck", "check_structure", "twin"]

# The subjects of entries [?1, ?2) as one object {subject: "seq,seq"}, subjects and
# seqs ascending: the rows the trail's _INDEX_BLOCK statement writes for a block.
_EXPECTED = (
    "SELECT json_group_object(v, s) FROM (SELECT v, group_concat(seq) AS s FROM"
    " (SELECT DISTINCT j.value AS v, e.seq AS seq FROM entries e,"
    " json_each(CAST(e.body AS TEXT), '$.subjects') j"
    " WHERE e.seq >= ?1 AND e.seq < ?2 AND j.type = 'text' ORDER BY v, seq) GROUP BY v)"
)
# The same in one sort instead of three (measured: the block check about 40% faster),
# and the highest position of a subject in its list. When that is 0 no entry lists two
# subjects, so no pair comes twice, and the seqs come out ascending because SQLite's
# sorter keeps rows with equal keys in the order they came (seq order). Otherwise, or
# should a future sorter not keep that order (the texts then differ), _EXPECTED
# decides: slower, never wrong.
_FAST = (
    "SELECT json_group_object(v, s), max(k) FROM (SELECT j.value AS v,"
    " group_concat(e.seq) AS s, max(j.key) AS k FROM entries e,"
    " json_each(CAST(e.body AS TEXT), '$.subjects') j"
    " WHERE e.seq >= ?1 AND e.seq < ?2 AND j.type = 'text' GROUP BY v)"
)
# The stored rows of one block in the same form (key order is subject order), and how
# many are not text (then the object can look right while the rows are not).
_STORED = (
    "SELECT json_group_object(subject, seqs),"
    " sum(typeof(subject) != 'text' OR typeof(seqs) != 'text')"
    " FROM subject_blocks WHERE block = ?"
)
_BLOCK_ROWS = "SELECT subject, seqs FROM subject_blocks WHERE block = ?"
# Each subject's seqs over blocks [?1, ?2) of the checked index, blocks in order (the
# sorter keeps the order rows came in: block order; should it not, the map differs and
# _MAP decides).
_MERGED = (
    "SELECT json_group_object(subject, s) FROM (SELECT subject, group_concat(seqs) AS s"
    " FROM subject_blocks WHERE block >= ?1 AND block < ?2 GROUP BY subject)"
)
# The subject map's texts of the first ?1 entries, from the entries alone.
_MAP = _EXPECTED.replace("e.seq >= ?1 AND e.seq < ?2", "e.seq < ?1")
_NOT_JSON = (
    "SELECT seq FROM entries WHERE seq >= ? AND seq < ? AND NOT json_valid(CAST(body AS TEXT))"
    " ORDER BY seq LIMIT 1"
)
_ROWS_FROM = "SELECT block, subject FROM subject_blocks WHERE block >= ? ORDER BY block LIMIT 1"
_META = "SELECT key, value FROM meta ORDER BY key"
_SCHEMA = "SELECT type, name, sql FROM sqlite_master"
_DATA_VERSION = "PRAGMA data_version"
_TRIES = 5


def twin(db: sqlite3.Connection, path: Path, *, first_read: str) -> sqlite3.Connection | None:
    """A second read-only connection on the very snapshot `db` reads, or None.

    `db` is in a transaction that has read nothing yet. Its snapshot starts at its first
    read, between two readings of `PRAGMA data_version` by the twin: the second one
    starts the twin's snapshot and differs from the first exactly when a commit came in
    between. Then both restart; after a few such races the caller does without.
    """
    try:
        other = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                isolation_level=None, timeout=30, check_same_thread=False)
    except sqlite3.Error:
        return None
    for _ in range(_TRIES):
        version = other.execute(_DATA_VERSION).fetchone()[0]
        db.execute(first_read).fetchall()
        other.execute("BEGIN")
        if other.execute(_DATA_VERSION).fetchone()[0] == version:
            return other
        other.execute("ROLLBACK")
        db.execute("ROLLBACK")
        db.execute("BEGIN")
    other.close()
    return None


class IndexCheck:
    """The subject index of blocks [0, blocks) and the subject map of each index
    checkpoint, recomputed from the entries; run in a thread, or in place.

    `found` is the first problem and where it stands in the walk's order: a block at its
    end ((block + 1) * INDEX_BLOCK), a map at its size. The walk lowers `limit` when it
    meets a problem first; nothing at or beyond it is checked any more.
    """

    def __init__(self, db: sqlite3.Connection, *, blocks: int,
                 maps: list[Checkpoint], heads: Mapping[int, Collection[bytes]]) -> None:
        self.db = db
        self.blocks = blocks
        self.maps = sorted(maps, key=lambda cp: cp.size)
        # Block count -> the index heads checkpoints signed at it (pacte.audit.index).
        self.heads = heads
        self.signed = sorted(k for k in heads if 0 < k <= blocks)
        # The index chain over the rows of blocks [0, chained) as stored (None once a
        # row cannot be serialised), and blocks [0, vouched) match a signed head.
        self.head: bytes | None = INDEX_GENESIS
        self.chained = 0
        self.vouched = 0
        self.limit = sys.maxsize
        self.found: tuple[int, Problem] | None = None
        self.error: BaseException | None = None
        # Each subject's seq texts of blocks [0, merged), one per stretch merged.
        self.parts: dict[str, list[str]] = {}
        self.merged = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="pacte-verify-index",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Check nothing more and wait for the thread (before its connection closes)."""
        self.limit = -1
        if self._thread is not None:
            self._thread.join()

    def result(self) -> tuple[int, Problem] | None:
        """The first problem (waiting for the thread); a storage error is raised here."""
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise self.error
        return self.found

    def run(self) -> None:
        try:
            self.found = self._run()
        except Exception as exc:  # re-raised by result(), in the caller's thread
            self.error = exc

    def _run(self) -> tuple[int, Problem] | None:
        pending = list(self.maps)
        block = 0
        while True:
            while pending and pending[0].size // INDEX_BLOCK <= block:
                cp = pending.pop(0)
                if cp.size >= self.limit:
                    return None
                problem = self._check_map(cp, block)
                if problem is not None:
                    return _at(problem, cp.size), problem
            end = (block + 1) * INDEX_BLOCK
            if block >= self.blocks or end >= self.limit:
                return None
            if block == self.chained:
                self._chain(block)
            if block >= self.vouched:  # no signed head vouches for it: from the entries
                found = self._check_block(block)
                if isinstance(found, Problem):
                    return _at(found, end), found
            block += 1

    def _chain(self, start: int) -> None:
        """Hash the rows of blocks [start, the next signed block count) into the chain
        (to the end of the index after the last one); if the head there is the one
        signed, those blocks are vouched for and need no recomputing."""
        i = bisect.bisect_right(self.signed, start)
        stop = self.signed[i] if i < len(self.signed) else self.blocks
        head = self.head
        try:
            texts = dict(self.db.execute(SPAN_TEXTS, (start, stop)).fetchall())
        except sqlite3.OperationalError:  # a blob where text belongs
            head = None
        for block in range(start, stop):
            if head is None:
                break
            head = next_head(head, texts.get(block))  # a block without rows: "[]"
        self.head, self.chained = head, stop
        if head is not None and i < len(self.signed) and all(
                signed == head for signed in self.heads[stop]):
            self.vouched = stop

    def _expected(self, start: int, end: int, *, fast: bool = False) -> str | Problem:
        """The index rows entries [start, end) make, as one JSON object (see _FAST)."""
        try:
            if fast:
                text, most = self.db.execute(_FAST, (start, end)).fetchone()
                if most in (None, 0):
                    return str(text or "{}")
            return str(self.db.execute(_EXPECTED, (start, end)).fetchone()[0] or "{}")
        except sqlite3.OperationalError:  # a body that is not JSON
            row = self.db.execute(_NOT_JSON, (start, end)).fetchone()
            if row is None:
                raise
            return Problem(MODIFIED, int(row[0]), f"entry {row[0]} is not a JSON object")

    def _check_block(self, block: int) -> Problem | None:
        """Block `block`'s rows against its entries."""
        start, end = block * INDEX_BLOCK, (block + 1) * INDEX_BLOCK
        expected = self._expected(start, end, fast=True)
        if isinstance(expected, Problem):
            return expected
        text, odd = self.db.execute(_STORED, (block,)).fetchone()
        if odd or (text or "{}") != expected:
            expected = self._expected(start, end)
            if isinstance(expected, Problem):
                return expected
            stored = dict(self.db.execute(_BLOCK_ROWS, (block,)).fetchall())
            problem = index_problem(block, stored, orjson.loads(expected))
            if problem is not None:
                return problem
        return None

    def _check_map(self, cp: Checkpoint, block: int) -> Problem | None:
        """The subject map of the first `cp.size` entries: blocks [0, block) of the index
        (checked already), and the entries of the block `cp.size` falls in, up to it.
        Should that differ from the signed map, the map is made from the entries alone
        before anything is reported."""
        if block > self.merged:  # one statement per stretch: the work stays in SQLite
            text = self.db.execute(_MERGED, (self.merged, block)).fetchone()[0]
            for subject, seqs in orjson.loads(text or "{}").items():
                self.parts.setdefault(subject, []).append(seqs)
            self.merged = block
        texts = {s: ",".join(v) for s, v in self.parts.items()}
        start = block * INDEX_BLOCK
        if cp.size > start:
            partial = self._expected(start, cp.size)
            if isinstance(partial, Problem):
                return partial
            for s, v in orjson.loads(partial).items():
                found = texts.get(s)
                texts[s] = v if found is None else f"{found},{v}"
        if _signs(cp, texts):
            return None
        whole = self.db.execute(_MAP, (cp.size,)).fetchone()[0]
        texts = orjson.loads(whole or "{}")
        if _signs(cp, texts):
            return None
        return Problem(MODIFIED, None, f"the subject map signed at size {cp.size} "
                       f"({cp.subjects} subjects) is not the one the entries make "
                       f"({len(texts)} subjects)", table="index_checkpoints")


def _signs(cp: Checkpoint, texts: dict[str, str]) -> bool:
    subject_map = SubjectMap(texts)
    return cp.index_root == subject_map.root and cp.subjects == subject_map.size


def _at(problem: Problem, default: int) -> int:
    return default if problem.first_bad is None else problem.first_bad


def index_problem(block: int, stored: dict[Any, Any], expected: dict[str, str]
                  ) -> Problem | None:
    """A block whose rows differ from the entries' as text: the first subject where they
    do, by name. The same pairs with the seqs in another order are fine (readers sort)."""
    for subject in sorted(set(stored) | set(expected), key=repr):
        want = expected.get(subject)
        if subject not in stored:
            return Problem(MISSING, None, f"subject_blocks has no row for block {block} "
                           f"and subject {subject!r}: entries {want} name it",
                           table="subject_blocks", block=block)
        if want is None or type(subject) is not str:
            return Problem(INVENTED, None, f"subject_blocks lists subject {subject!r} "
                           f"in block {block} (seqs {stored[subject]!r}), which no "
                           "entry of the block names", table="subject_blocks", block=block)
        if _seqs(stored[subject]) != [int(x) for x in want.split(",")]:
            return Problem(MODIFIED, None, f"subject_blocks lists seqs {stored[subject]!r} "
                           f"for subject {subject!r} in block {block}; the entries say "
                           f"{want}", table="subject_blocks", block=block)
    return None


def _seqs(value: object) -> list[int] | None:
    try:
        return sorted(int(x) for x in value.split(",")) if isinstance(value, str) else None
    except ValueError:
        return None


def check_structure(db: sqlite3.Connection, *, indexed: int, index_head: bytes | None
                    ) -> None:
    """The rows no entry is hashed into: the index beyond its blocks, meta, schema.

    `index_head`: the index chain over the stored rows of the `indexed` blocks (None
    when a row could not be serialised).
    """
    row = db.execute(_ROWS_FROM, (indexed,)).fetchone()
    if row is not None:
        raise Problem(INVENTED, None, f"subject_blocks has a row for block {row[0]} "
                      f"(subject {row[1]!r}), which is not complete yet",
                      table="subject_blocks", block=int(row[0]))
    meta = dict(db.execute(_META).fetchall())
    expected = {"schema_version": SCHEMA_VERSION}
    if indexed:
        expected[INDEXED_KEY] = str(indexed)
        stored = meta.get(HEAD_KEY)
        if index_head is not None and stored == index_head.hex():
            expected[HEAD_KEY] = stored
        else:  # the rows may say the same in other words (checked already): the entries'
            expected[HEAD_KEY] = expected_head(db, 0, indexed, INDEX_GENESIS).hex()
    for key in sorted(set(meta) | set(expected)):
        if meta.get(key) != expected.get(key):
            reason = INVENTED if key not in expected else MISSING if key not in meta \
                else MODIFIED
            raise Problem(reason, None, f"meta {key!r} is {meta.get(key)!r}; the entries "
                          f"make it {expected.get(key)!r}", table="meta")
    _check_schema(db)


def _check_schema(db: sqlite3.Connection) -> None:
    """The definitions matter too: the entries' time, principal and purpose are computed
    by theirs, and a trigger or an index could change what is read."""
    schema = {(str(t), str(n)): sql for t, n, sql in db.execute(_SCHEMA)}
    own = schema_objects()
    for key in sorted(set(schema) | set(own)):
        if schema.get(key) != own.get(key):
            reason = INVENTED if key not in own else MISSING if key not in schema \
                else MODIFIED
            ours = (own.get(key) or "").splitlines()
            theirs = (schema.get(key) or "").splitlines()
            line = next((b.strip() for a, b in zip(ours, theirs, strict=False) if a != b), "")
            raise Problem(reason, None, f"the {key[0]} {key[1]!r} of the file is not "
                          "defined as in an audit trail" + (f" (it says: {line})" if line
                                                             else ""),
                          table="sqlite_master")
