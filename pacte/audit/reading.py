"""Reading the trail: entries by seq, by filters or by subject, checkpoints, proofs.

`TrailReader` is the reading half of `AuditTrail` (pacte.audit.trail), on the same
connection and lock. Time, principal and purpose, the query filters, are not stored:
SQLite computes them from the hashed body whenever they are read (VIRTUAL generated
columns), so they cannot say anything the body does not; verify checks the table's
definition. A subject's entries are found through the subject index
(`pacte.audit.index`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pacte.audit.checkpoint import Checkpoint
from pacte.audit.checkpoint_store import (
    LAST_CHECKPOINT,
    LAST_INDEX_CHECKPOINT,
    LEAVES,
    checkpoint_from_row,
    index_checkpoint_from_row,
)
from pacte.audit.entry import AuditEntry, format_time
from pacte.audit.index import BLOCK
from pacte.audit.merkle import MerkleTree
from pacte.errors import CorruptStore, InputError, IntegrityError, StorageError

__all__ = ["HEAD", "TrailReader", "storage_error"]

HEAD = "SELECT seq, entry_hash FROM entries ORDER BY seq DESC LIMIT 1"
# Reads return each entry with the hash it chains from (its leaf data starts with it).
_GET = (
    "SELECT e.seq, e.body, e.entry_hash,"
    " (SELECT p.entry_hash FROM entries p WHERE p.seq = e.seq - 1)"
    " FROM entries e WHERE e.seq = ?"
)
# One constant text per access path; a NULL parameter switches its filter off.
_ENTRIES = (
    "SELECT e.seq, e.body, e.entry_hash,"
    " (SELECT p.entry_hash FROM entries p WHERE p.seq = e.seq - 1)"
    " FROM entries e WHERE e.seq > ?5"
    " AND (?1 IS NULL OR e.principal = ?1) AND (?2 IS NULL OR e.purpose = ?2)"
    " AND (?3 IS NULL OR e.time >= ?3) AND (?4 IS NULL OR e.time < ?4)"
    " AND (?10 IS NULL OR json_extract(CAST(e.body AS TEXT), '$.action') = ?10)"
    " AND (?11 IS NULL OR json_extract(CAST(e.body AS TEXT), '$.outcome') = ?11)"
    " ORDER BY e.seq LIMIT ?6"
)
# The subject index: for each block of BLOCK entries, one row per subject named in it,
# listing the seqs that name it. Keyed by block first, so indexing a block appends at
# the end of the index like the entries themselves (keyed by subject, every entry would
# rewrite an index page somewhere in the middle). A lookup seeks (block, subject) once
# per block, a bounded run of blocks [?8, ?9) per query; the short unindexed tail
# after the last complete block (from seq ?8) is read directly.
_BLOCKS_PER_QUERY = 64
_BY_SUBJECT_BLOCKS = (
    "WITH RECURSIVE blocks(n) AS (SELECT ?8 UNION ALL SELECT n + 1 FROM blocks WHERE n + 1 < ?9)"
    " SELECT e.seq, e.body, e.entry_hash,"
    " (SELECT p.entry_hash FROM entries p WHERE p.seq = e.seq - 1)"
    " FROM blocks JOIN subject_blocks s ON s.block = blocks.n AND s.subject = ?7"
    " JOIN json_each('[' || s.seqs || ']') x JOIN entries e ON e.seq = x.value"
    " WHERE e.seq > ?5"
    " AND (?1 IS NULL OR e.principal = ?1) AND (?2 IS NULL OR e.purpose = ?2)"
    " AND (?3 IS NULL OR e.time >= ?3) AND (?4 IS NULL OR e.time < ?4)"
    " AND (?10 IS NULL OR json_extract(CAST(e.body AS TEXT), '$.action') = ?10)"
    " AND (?11 IS NULL OR json_extract(CAST(e.body AS TEXT), '$.outcome') = ?11)"
    " ORDER BY e.seq LIMIT ?6"
)
_BY_SUBJECT_TAIL = (
    "SELECT e.seq, e.body, e.entry_hash,"
    " (SELECT p.entry_hash FROM entries p WHERE p.seq = e.seq - 1) FROM entries e"
    " WHERE e.seq >= ?8 AND e.seq > ?5"
    " AND (?1 IS NULL OR e.principal = ?1) AND (?2 IS NULL OR e.purpose = ?2)"
    " AND (?3 IS NULL OR e.time >= ?3) AND (?4 IS NULL OR e.time < ?4)"
    " AND (?10 IS NULL OR json_extract(CAST(e.body AS TEXT), '$.action') = ?10)"
    " AND (?11 IS NULL OR json_extract(CAST(e.body AS TEXT), '$.outcome') = ?11)"
    " AND EXISTS (SELECT 1 FROM json_each(CAST(e.body AS TEXT), '$.subjects') j"
    " WHERE j.value = ?7)"
    " ORDER BY e.seq LIMIT ?6"
)
_INDEXED_BLOCKS = "SELECT value FROM meta WHERE key = 'subject_blocks_indexed'"
_MAX_LIMIT = 10_000


def storage_error(action: str, exc: sqlite3.Error) -> StorageError:
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        return StorageError(f"audit {action} failed: {text}",
                            retryable="locked" in text or "busy" in text)
    return StorageError(f"audit {action} failed: {exc}")


def _time_param(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return format_time(value)


class TrailReader:
    """What every reader of the trail asks; `AuditTrail` adds appending and signing."""

    path: Path
    _db: sqlite3.Connection
    _lock: threading.RLock
    _closed: bool
    _tree: MerkleTree | None

    def latest_checkpoint(self) -> Checkpoint | None:
        row = self._one(LAST_CHECKPOINT, ())
        return None if row is None else checkpoint_from_row(row)

    def latest_index_checkpoint(self) -> Checkpoint | None:
        row = self._one(LAST_INDEX_CHECKPOINT, ())
        return None if row is None else index_checkpoint_from_row(row)

    # -- proofs -----------------------------------------------------------------

    def leaf_hashes(self, size: int) -> list[bytes]:
        """The stored leaf hashes of entries 0 .. size-1."""
        rows = self._all(LEAVES, (0, size))
        if len(rows) != size:
            raise IntegrityError(f"the audit trail has fewer than {size} entries")
        return [r[0] for r in rows]

    def tree(self, size: int) -> MerkleTree:
        """The Merkle tree of the first `size` entries (the last one built is kept)."""
        with self._lock:
            tree = self._tree
            if tree is None or tree.size != size:
                tree = MerkleTree(self.leaf_hashes(size))
                self._tree = tree
            return tree

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        """The RFC 9162 proof that entry `seq` is in the tree of the first `size` entries."""
        if not 0 <= seq < size:
            raise InputError(f"entry {seq} is not among the first {size}")
        return self.tree(size).inclusion_proof(seq)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """The RFC 9162 proof that the first `size2` entries extend the first `size1`."""
        if not 0 < size1 <= size2:
            raise InputError("a consistency proof needs 0 < size1 <= size2")
        return self.tree(size2).consistency_proof(size1)

    # -- reading ----------------------------------------------------------------

    def size(self) -> int:
        row = self._one(HEAD, ())
        return 0 if row is None else int(row[0]) + 1

    def get(self, seq: int) -> AuditEntry | None:
        row = self._one(_GET, (seq,))
        return None if row is None else AuditEntry.from_row(*row)

    def entries(
        self,
        *,
        subject: str | None = None,
        after_seq: int | None = None,
        limit: int = 50,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        principal: str | None = None,
        purpose: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
    ) -> list[AuditEntry]:
        """Entries in seq order after `after_seq`, filtered; `until` is exclusive.

        Action and outcome are read from the body as the rows are scanned (they are not
        indexed): a rare one costs a longer scan, bounded by `limit` matches.
        """
        if not isinstance(limit, int) or not 0 <= limit <= _MAX_LIMIT:
            raise InputError(f"limit must be between 0 and {_MAX_LIMIT}")
        after = -1 if after_seq is None else after_seq
        filters = (principal, purpose, _time_param(since), _time_param(until), after)
        # ?10 and ?11 in every statement; the parameters between are each statement's own.
        kinds = (action, outcome)
        if subject is None:
            rows = self._all(_ENTRIES, (*filters, limit, None, None, None, *kinds))
        else:
            rows = self._by_subject(subject, filters, kinds, after, limit)
        return [AuditEntry.from_row(*r) for r in rows]

    def _by_subject(self, subject: str, filters: tuple[object, ...],
                    kinds: tuple[object, ...], after: int, limit: int) -> list[Any]:
        row = self._one(_INDEXED_BLOCKS, ())
        indexed = 0 if row is None else int(row[0])
        rows: list[Any] = []
        block = max(after + 1, 0) // BLOCK
        # A bounded run of blocks per query: a page costs what it returns, not what
        # the subject's whole history would.
        while len(rows) < limit and block < indexed:
            stop = min(block + _BLOCKS_PER_QUERY, indexed)
            rows += self._all(_BY_SUBJECT_BLOCKS,
                              (*filters, limit - len(rows), subject, block, stop, *kinds))
            block = stop
        if len(rows) < limit:
            rows += self._all(_BY_SUBJECT_TAIL,
                              (*filters, limit - len(rows), subject, indexed * BLOCK, None,
                               *kinds))
        return rows

    def _one(self, sql: str, params: Sequence[object]) -> Any:
        rows = self._all(sql, params, limit_one=True)
        return rows[0] if rows else None

    def _all(self, sql: str, params: Sequence[object], *,
             limit_one: bool = False) -> list[Any]:
        with self._lock:
            if self._closed:
                raise StorageError("the audit trail is closed")
            try:
                cur = self._db.execute(sql, params)
                return cur.fetchmany(1) if limit_one else cur.fetchall()
            except sqlite3.OperationalError as exc:
                raise storage_error("read", exc) from exc
            except sqlite3.DatabaseError as exc:
                raise CorruptStore(f"{self.path} is damaged ({exc})") from exc

    @contextlib.contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A separate read-only connection holding one snapshot (for verification).

        Reading through its own connection lets a long verification run while this
        and other processes keep appending.
        """
        try:
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                 isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open audit trail at {self.path}: {exc}") from exc
        try:
            db.execute("BEGIN")
            yield db
        except sqlite3.OperationalError as exc:
            raise storage_error("read", exc) from exc
        except sqlite3.DatabaseError as exc:
            raise CorruptStore(f"{self.path} is damaged ({exc})") from exc
        finally:
            db.close()
