"""The audit trail: an append-only, hash-chained, Merkle-checkpointed log in its own SQLite file.

Each entry is the RFC 8785 JSON of the caller's record plus `seq` (0, 1, 2, ...) and
`time` (ISO 8601 UTC). One hash is kept per entry, and it does two jobs:

    entry_hash = SHA-256(0x00 || previous entry_hash || canonical bytes)

It is the hash chain (each entry commits to the one before it; GENESIS stands before
seq 0) and, being the RFC 6962 leaf hash of the leaf data `previous entry_hash ||
canonical bytes`, the leaf of the Merkle tree that checkpoints and inclusion proofs
are made of. So every entry costs one hash to write and one to verify, and nothing
binds less: changing an entry changes its leaf, and with it every later link and
every later root.

The head is read inside a `BEGIN IMMEDIATE` transaction, so appenders in several
processes queue on SQLite's write lock and never fork the chain. Every
`checkpoint_every` entries, or when `checkpoint_seconds` have passed (checked at each
append), a signed checkpoint of (size, root, head, time, key id) is written in the
same transaction as the entry that made it due. `exclusive()` holds that write lock
around a caller's read and append, for appends that depend on what the trail says
(a privacy budget).

The file holds no personal data: subjects are pseudonymous references, fields are
names. Bytes are refused outright, since in a record they could only be ciphertext or
key material.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from pacte.audit.canonical import canonical_bytes, check_json_value
from pacte.audit.checkpoint import Checkpoint
from pacte.audit.index import (
    BLOCK,
    HEAD_KEY,
    INDEX_GENESIS,
    expected_head,
    index_blocks,
    read_head,
)
from pacte.audit.merkle import (
    HASH_SIZE,
    CompactRange,
    MerkleTree,
    chained_leaf_hash,
)
from pacte.audit.subjects import SubjectMap, seqs_text
from pacte.audit.wal import BACKSTOP_PAGES, WalCheckpointer
from pacte.clock import utcnow
from pacte.crypto.signing import SigningKey
from pacte.errors import (
    ConfigError,
    CorruptStore,
    InputError,
    IntegrityError,
    PacteError,
    StorageError,
)

__all__ = [
    "GENESIS",
    "RESERVED_KEYS",
    "AuditEntry",
    "AuditTrail",
    "format_time",
    "schema_objects",
]

# The chain's "previous hash" before the first entry: a fixed, domain-separated value.
# v3: one hash per entry, the chain link and the Merkle leaf at once (v1 and v2 hashed
# each entry two or three times; neither was deployed). Schema version 2 marks v3 files.
GENESIS = hashlib.sha256(b"pacte.audit.chain/v3 genesis").digest()
RESERVED_KEYS = frozenset({"seq", "time"})
# 3: checkpoints chained (prev) and the subject map signed (index_checkpoints); every
# meta row derived from the entries, so that verify can check it.
# 4: the subject index chained and its head signed by every checkpoint (index_head;
# see pacte.audit.index). A version 3 file is upgraded when opened for writing.
SCHEMA_VERSION = "4"
_APPLICATION_ID = 0x70617564  # "paud": marks the file as an audit trail

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq        INTEGER PRIMARY KEY,
    body       BLOB NOT NULL,
    entry_hash BLOB NOT NULL,
    time       TEXT GENERATED ALWAYS AS (json_extract(CAST(body AS TEXT), '$.time')) VIRTUAL,
    principal  TEXT GENERATED ALWAYS AS (CASE json_type(CAST(body AS TEXT), '$.principal')
               WHEN 'text' THEN json_extract(CAST(body AS TEXT), '$.principal') END) VIRTUAL,
    purpose    TEXT GENERATED ALWAYS AS (CASE json_type(CAST(body AS TEXT), '$.purpose')
               WHEN 'text' THEN json_extract(CAST(body AS TEXT), '$.purpose') END) VIRTUAL
);
CREATE TABLE IF NOT EXISTS subject_blocks (
    block   INTEGER NOT NULL,
    subject TEXT NOT NULL,
    seqs    TEXT NOT NULL,
    PRIMARY KEY (block, subject)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    size       INTEGER PRIMARY KEY,
    root       BLOB NOT NULL,
    head       BLOB NOT NULL,
    time       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    public_key BLOB NOT NULL,
    signature  BLOB NOT NULL,
    frontier   BLOB NOT NULL,
    prev       INTEGER
, index_head BLOB);
CREATE TABLE IF NOT EXISTS index_checkpoints (
    size       INTEGER PRIMARY KEY,
    root       BLOB NOT NULL,
    head       BLOB NOT NULL,
    time       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    public_key BLOB NOT NULL,
    signature  BLOB NOT NULL,
    index_root BLOB NOT NULL,
    subjects   INTEGER NOT NULL,
    prev       INTEGER
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""

_HEAD = "SELECT seq, entry_hash FROM entries ORDER BY seq DESC LIMIT 1"
# time, principal and purpose, the query filters, are not stored: SQLite computes them
# from the hashed body whenever they are read (VIRTUAL generated columns), so they
# cannot say anything the body does not; verify checks the table's definition.
_INSERT = "INSERT INTO entries (seq, body, entry_hash) VALUES (?, ?, ?)"
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
# The subject index: for each block of _BLOCK entries, one row per subject named in it,
# listing the seqs that name it. Keyed by block first, so indexing a block appends at
# the end of the index like the entries themselves (keyed by subject, every entry would
# rewrite an index page somewhere in the middle). A lookup seeks (block, subject) once
# per block, a bounded run of blocks [?8, ?9) per query; the short unindexed tail
# after the last complete block (from seq ?8) is read directly.
_BLOCK = BLOCK
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
_LEAVES = "SELECT entry_hash FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq"
_LAST_CHECKPOINT = (
    "SELECT size, root, head, time, key_id, public_key, signature, prev, index_head"
    " FROM checkpoints ORDER BY size DESC LIMIT 1"
)
_CHECKPOINT_BASE = (
    "SELECT size, root, frontier FROM checkpoints WHERE size <= ? ORDER BY size DESC LIMIT 1"
)
_CHECKPOINT_AT = (
    "SELECT size, root, head, time, key_id, public_key, signature, prev, index_head"
    " FROM checkpoints WHERE size = ?"
)
_INSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (size, root, head, time, key_id, public_key, signature, frontier,"
    " prev, index_head) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INDEX_CHECKPOINT_AT = (
    "SELECT size, root, head, time, key_id, public_key, signature, index_root, subjects, prev"
    " FROM index_checkpoints WHERE size = ?"
)
_LAST_INDEX_CHECKPOINT = (
    "SELECT size, root, head, time, key_id, public_key, signature, index_root, subjects, prev"
    " FROM index_checkpoints ORDER BY size DESC LIMIT 1"
)
_INSERT_INDEX_CHECKPOINT = (
    "INSERT INTO index_checkpoints (size, root, head, time, key_id, public_key, signature,"
    " index_root, subjects, prev) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_BODIES = "SELECT seq, body FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq"
_FIRST_TIME = "SELECT time FROM entries ORDER BY seq LIMIT 1"
_GET_META = "SELECT value FROM meta WHERE key = ?"
_INIT_META = "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)"
_SET_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
_MAX_LIMIT = 10_000


def format_time(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds and a Z: fixed width, so text order is time order."""
    if moment.tzinfo is not UTC:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    # %-formatting of the fields is the cheapest way found: strftime costs several times
    # more, and isoformat with its offset cut off half as much again, on every append.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 (faster than f-strings)
        moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second,
        moment.microsecond)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _parse_time(text: str) -> datetime:
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
_Prepared = tuple[Mapping[str, object], bool, Sequence[str]]


class _StaleHead(Exception):
    """Another process appended since this one last saw the head."""


def _prepare(record: Mapping[str, object]) -> _Prepared:
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


def _storage_error(action: str, exc: sqlite3.Error) -> StorageError:
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        return StorageError(f"audit {action} failed: {text}",
                            retryable="locked" in text or "busy" in text)
    return StorageError(f"audit {action} failed: {exc}")


def _time_param(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return format_time(value)


class AuditTrail:
    """The audit trail in one SQLite file. Safe to share between threads of one process."""

    def __init__(self, path: Path, db: sqlite3.Connection, *, signer: SigningKey | None,
                 checkpoint_every: int, checkpoint_seconds: float,
                 now: Callable[[], datetime], read_only: bool) -> None:
        self.path = path
        self._db = db
        self._signer = signer
        self._every = checkpoint_every
        self._interval = timedelta(seconds=checkpoint_seconds)
        self._now = now
        self._read_only = read_only
        self._lock = threading.RLock()
        # True inside exclusive(): appends join its transaction instead of opening one.
        self._exclusive = False
        self._appended = False
        self._closed = False
        self._tree: MerkleTree | None = None
        # (next seq, its previous hash) as of this process's last commit; see _append_locked.
        self._head: tuple[int, bytes] | None = None
        # The subject index rows of blocks this process has written every entry of so
        # far, by block: subject -> seqs. Dropped the moment another process's entry or
        # a rolled-back transaction comes between (see _remember).
        self._blocks: dict[int, dict[str, list[int]]] = {}
        self._last_seq = -2
        # When a checkpoint falls due by time: one comparison per append.
        self._checkpoint_due = self._initial_checkpoint_time() + self._interval
        # Copies the log into the file off the append path (see pacte.audit.wal).
        self._wal = None if read_only else WalCheckpointer(path)

    # -- opening and closing ----------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        signer: SigningKey | None,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 60,
        now: Callable[[], datetime] = utcnow,
        read_only: bool = False,
        for_verify: bool = False,
    ) -> AuditTrail:
        """Open (creating it if absent, unless `read_only`) the trail at `path`.

        Without a `signer` the trail can be appended to and verified but makes no
        checkpoints. CorruptStore if the file is damaged or is not an audit trail.
        `for_verify` (read-only) skips the schema version check, so that a changed
        version row is reported by `verify` like any other tampering.
        """
        if checkpoint_every < 1 or checkpoint_seconds <= 0:
            raise InputError("checkpoints must be due after >= 1 entry and > 0 seconds")
        path = Path(path)
        if read_only and not path.exists():
            raise StorageError(f"no audit trail at {path}")
        try:
            if read_only:
                db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                     isolation_level=None, check_same_thread=False, timeout=30)
            else:
                db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                     timeout=30)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open audit trail at {path}: {exc}") from exc
        try:
            _prepare_file(db, path, read_only=read_only, check_version=not for_verify)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise CorruptStore(f"{path} is damaged or is not an audit trail ({exc})") from exc
        except BaseException:
            db.close()
            raise
        return cls(path, db, signer=signer, checkpoint_every=checkpoint_every,
                   checkpoint_seconds=checkpoint_seconds, now=now, read_only=read_only)

    def close(self) -> None:
        """Sign a final checkpoint if this process added entries since the last one, then close."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._appended and self._signer is not None:
                    self.checkpoint()
            finally:
                self._closed = True
                if self._wal is not None:
                    self._wal.close()
                self._db.close()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def signer(self) -> SigningKey | None:
        return self._signer

    # -- appending --------------------------------------------------------------

    def append(self, record: Mapping[str, object]) -> AuditEntry:
        """Append one record; IntegrityError or StorageError if it is not on record."""
        return self.append_many([record])[0]

    def append_many(self, records: Sequence[Mapping[str, object]]) -> list[AuditEntry]:
        """Append records in one transaction: all of them get consecutive seqs, or none does."""
        prepared = [_prepare(r) for r in records]
        if not prepared:
            return []
        with self._lock:
            if self._closed:
                raise StorageError("the audit trail is closed")
            db = self._db
            now = _aware(self._now())
            try:
                out: list[AuditEntry] | None = None
                if self._exclusive:
                    out = self._append_locked(db, prepared, now)  # exclusive() commits
                elif len(prepared) == 1:
                    out = self._append_alone(db, prepared, now)
                if out is None:
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        out = self._append_locked(db, prepared, now)
                        db.execute("COMMIT")
                    except BaseException:
                        # What this transaction wrote is undone, so is what we remembered.
                        self._blocks.clear()
                        self._last_seq = -2
                        if db.in_transaction:
                            db.execute("ROLLBACK")
                        raise
                self._head = (out[-1].seq + 1, out[-1].entry_hash)
            except sqlite3.Error as exc:
                raise _storage_error("append", exc) from exc
            except (IntegrityError, StorageError):
                raise
            except Exception as exc:
                # Fail closed whatever went wrong (a signer error, a bug): the caller
                # must learn that the record is not on the trail.
                raise IntegrityError(f"audit append failed: {exc}") from exc
            self._appended = True
            if self._wal is not None:
                self._wal.poke()
            return out

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the trail's write lock: what is read and appended inside is one step.

        For a check that depends on the trail and an append that depends on the check
        (a privacy budget): other threads of this process wait on the trail's lock,
        other processes on SQLite's write lock (`BEGIN IMMEDIATE`), until the block
        ends. Its appends commit when it ends without an exception, else none does.
        """
        with self._lock:
            if self._closed:
                raise StorageError("the audit trail is closed")
            if self._exclusive:
                raise IntegrityError("exclusive() does not nest")
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _storage_error("lock", exc) from exc
            self._exclusive = True
            try:
                yield
                db.execute("COMMIT")
            except BaseException as exc:
                # What the block appended is undone, so is what we remembered of it.
                self._blocks.clear()
                self._last_seq = -2
                self._head = None
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _storage_error("append", exc) from exc
                raise
            finally:
                self._exclusive = False

    def _append_alone(self, db: sqlite3.Connection, prepared: list[_Prepared], now: datetime
                      ) -> list[AuditEntry] | None:
        """The common case in one autocommitted INSERT, or None to take the full path.

        It applies when this process knows the head and the entry makes nothing else
        due (no subject-index batch, no checkpoint). The INSERT is its own transaction:
        if another process appended since, the seq is taken, the primary key refuses
        the row, and the full path re-reads the head under the write lock.
        """
        head = self._head
        if head is None:
            return None
        following = head[0] + 1
        if following % _BLOCK == 0 or (self._signer is not None and (
                following % self._every == 0 or now >= self._checkpoint_due)):
            return None
        try:
            return self._insert(db, prepared, head, format_time(now))
        except _StaleHead:
            self._head = None
            return None

    def _append_locked(self, db: sqlite3.Connection, prepared: list[_Prepared], now: datetime
                       ) -> list[AuditEntry]:
        time = format_time(now)
        # The head this process committed last saves a query per append. It is safe:
        # under the write lock, if anyone appended since, the seq we would take is
        # already used, the INSERT fails on the primary key, and we re-read the head.
        head = self._head
        if head is not None:
            try:
                out = self._insert(db, prepared, head, time)
            except _StaleHead:
                head = None
        if head is None:
            head = _read_head(db)
            out = self._insert(db, prepared, head, time)
        start, last = head[0], out[-1]
        self._head = None  # until COMMIT succeeds (see append_many)
        if (last.seq + 1) // _BLOCK > start // _BLOCK:
            self._index_subjects(db, (last.seq + 1) // _BLOCK)
        if self._signer is not None and (
            (last.seq + 1) // self._every > start // self._every
            or now >= self._checkpoint_due
        ):
            self._checkpoint_locked(db, last.seq + 1, last.entry_hash, now)
        return out

    def _insert(self, db: sqlite3.Connection, prepared: list[_Prepared],
                head: tuple[int, bytes], time: str) -> list[AuditEntry]:
        seq, prev = head
        out: list[AuditEntry] = []
        for record, fast, subjects in prepared:
            doc = dict(record)
            doc["seq"] = seq
            doc["time"] = time
            body = canonical_bytes(doc, checked=fast)
            entry_hash = chained_leaf_hash(prev, body)
            try:
                db.execute(_INSERT, (seq, body, entry_hash))
            except sqlite3.IntegrityError as exc:
                if not out:
                    raise _StaleHead from exc
                raise
            self._remember(seq, subjects)
            out.append(AuditEntry(seq, time, record, entry_hash, prev, body))
            prev = entry_hash
            seq += 1
        return out

    def _remember(self, seq: int, subjects: Sequence[str]) -> None:
        """Note the subjects of entry `seq`, just written, for the subject index.

        Kept only while this process wrote every entry of the block from its first: an
        entry from elsewhere in between (seq not following the last one we wrote) drops
        everything remembered, and the block is then indexed from the entries.
        """
        if seq != self._last_seq + 1:
            self._blocks.clear()
        self._last_seq = seq
        block = seq // _BLOCK
        rows = self._blocks.get(block)
        if rows is None:
            if seq % _BLOCK:
                return  # we came in mid-block: the statement indexes it
            rows = self._blocks[block] = {}
        for subject in subjects:
            seqs = rows.get(subject)
            if seqs is None:
                rows[subject] = [seq]
            elif seqs[-1] != seq:  # a subject named twice in one entry is listed once
                seqs.append(seq)

    def _index_subjects(self, db: sqlite3.Connection, blocks: int) -> None:
        """Index the complete blocks not indexed yet, below `blocks` (pacte.audit.index)."""
        index_blocks(db, blocks, self._blocks)
        for block in [b for b in self._blocks if b < blocks]:
            del self._blocks[block]  # indexed now, or already by another process

    # -- checkpoints ------------------------------------------------------------

    def checkpoint(self, *, index: bool = False) -> Checkpoint:
        """Sign a checkpoint of the whole log now (or return the one at this size).

        With `index`, the checkpoint also signs the subject map (`pacte.audit.subjects`)
        of the same entries: the one an access report proves its completeness against.
        It is kept apart (index_checkpoints), as computing the map reads the whole
        subject index, which only reports need.
        """
        if self._signer is None:
            raise ConfigError("this audit trail has no signing key: cannot sign a checkpoint")
        return self._write("checkpoint", lambda db: self._sign_now(db, index=index),
                           covers=not index)

    def _sign_now(self, db: sqlite3.Connection, *, index: bool) -> Checkpoint:
        size, head = _read_head(db)
        now = _aware(self._now())
        if index:
            return self._index_checkpoint_locked(db, size, head, now)
        return self._checkpoint_locked(db, size, head, now)

    def rotate_signer(self, new: SigningKey) -> Checkpoint:
        """Hand signing over to `new`: an explicit, signed event on the trail.

        The rotation entry names both public keys and carries two signatures over
        them and the log position: the old key's (it hands over) and the new key's (it
        takes over). A verifier that pins either key follows the chain to the other.
        A checkpoint signed by the new key then covers the rotation entry.
        """
        from pacte.audit.rotation import rotation_record

        old = self._signer
        if old is None:
            raise ConfigError("this audit trail has no signing key to rotate")
        if new.public_key == old.public_key:
            raise InputError("the new signing key is the current one")

        def rotate(db: sqlite3.Connection) -> Checkpoint:
            size, head = _read_head(db)
            self._head = None
            self._insert(db, [_prepare(rotation_record(old, new, seq=size, after=head))],
                         (size, head), format_time(_aware(self._now())))
            self._signer = new
            last = _read_head(db)
            if last[0] // _BLOCK > size // _BLOCK:
                self._index_subjects(db, last[0] // _BLOCK)
            return self._checkpoint_locked(db, last[0], last[1], _aware(self._now()))

        try:
            return self._write("key rotation", rotate)
        except BaseException:
            self._signer = old
            raise

    def _write(self, action: str, work: Callable[[sqlite3.Connection], Checkpoint], *,
               covers: bool = True) -> Checkpoint:
        """Run `work` in one write transaction; `covers`: it signs a plain checkpoint of
        the whole log, so close() need not sign another."""
        with self._lock:
            if self._closed:
                raise StorageError("the audit trail is closed")
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    cp = work(db)
                    db.execute("COMMIT")
                except BaseException:
                    self._blocks.clear()
                    self._last_seq = -2
                    self._head = None
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _storage_error(action, exc) from exc
            except PacteError:
                raise
            except Exception as exc:
                raise IntegrityError(f"audit {action} failed: {exc}") from exc
            if covers:
                self._appended = False
            return cp

    def _checkpoint_locked(self, db: sqlite3.Connection, size: int, head: bytes, now: datetime
                           ) -> Checkpoint:
        assert self._signer is not None
        existing = db.execute(_CHECKPOINT_AT, (size,)).fetchone()
        if existing is not None:
            return _checkpoint(existing)
        last = db.execute(_LAST_CHECKPOINT).fetchone()
        frontier = self._frontier_locked(db, size)
        # Every append indexes the blocks it completes: the index is whole at `size`.
        indexed, index_head = read_head(db)
        cp = Checkpoint.create(self._signer, size=size, root=frontier.root(), head=head,
                               time=format_time(now), prev=None if last is None else last[0],
                               index_head=index_head if indexed == size // _BLOCK else None)
        db.execute(_INSERT_CHECKPOINT, (cp.size, cp.root, cp.head, cp.time, cp.key_id,
                                        cp.public_key, cp.signature,
                                        b"".join(frontier.hashes), cp.prev, cp.index_head))
        self._checkpoint_due = now + self._interval
        return cp

    def _index_checkpoint_locked(self, db: sqlite3.Connection, size: int, head: bytes,
                                 now: datetime) -> Checkpoint:
        assert self._signer is not None
        existing = db.execute(_INDEX_CHECKPOINT_AT, (size,)).fetchone()
        if existing is not None:
            return _index_checkpoint(existing)
        subject_map = SubjectMap({s: seqs_text(seqs)
                                  for s, seqs in self._subject_lists(db, size).items()})
        last = db.execute(_LAST_INDEX_CHECKPOINT).fetchone()
        cp = Checkpoint.create(self._signer, size=size, root=self._frontier_locked(db, size)
                               .root(), head=head, time=format_time(now),
                               prev=None if last is None else last[0],
                               index_root=subject_map.root, subjects=subject_map.size)
        db.execute(_INSERT_INDEX_CHECKPOINT,
                   (cp.size, cp.root, cp.head, cp.time, cp.key_id, cp.public_key,
                    cp.signature, cp.index_root, cp.subjects, cp.prev))
        return cp

    def _subject_lists(self, db: sqlite3.Connection, size: int) -> dict[str, list[int]]:
        """Every subject's seqs below `size`, ascending, from the entries themselves.

        Not from the subject index: what is signed must not rest on a table a writer
        of the file could have changed without breaking the chain. It reads the whole
        log (about 1 s per million entries), which only index checkpoints pay.
        """
        lists: dict[str, list[int]] = {}
        loads = orjson.loads
        for start in range(0, size, 4096):
            for seq, body in db.execute(_BODIES, (start, min(size, start + 4096))):
                try:
                    subjects = loads(body).get("subjects")
                except (orjson.JSONDecodeError, TypeError, AttributeError) as exc:
                    raise IntegrityError(f"audit entry {seq} is unreadable") from exc
                if type(subjects) is list:
                    for subject in dict.fromkeys(s for s in subjects if type(s) is str):
                        found = lists.get(subject)
                        if found is None:
                            lists[subject] = [seq]
                        else:
                            found.append(seq)
        return lists

    def subject_map(self, size: int) -> SubjectMap:
        """The subject map of the first `size` entries (`size` at most the log's)."""
        with self._lock, self.reader() as db:
            return SubjectMap({s: seqs_text(seqs)
                               for s, seqs in self._subject_lists(db, size).items()})

    def _frontier_locked(self, db: sqlite3.Connection, size: int) -> CompactRange:
        """The compact range at `size`, resumed from the last checkpoint's when it checks out."""
        frontier = CompactRange()
        base = db.execute(_CHECKPOINT_BASE, (size,)).fetchone()
        if base is not None:
            blob = base[2]
            hashes = [blob[i:i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
            with contextlib.suppress(ValueError):
                candidate = CompactRange(base[0], hashes)
                # A stored frontier is only a shortcut: one that does not fold to its
                # signed root is ignored and the tree is rebuilt from the leaves.
                if candidate.root() == base[1]:
                    frontier = candidate
        leaves = [r[0] for r in db.execute(_LEAVES, (frontier.size, size))]
        if len(leaves) != size - frontier.size:
            raise IntegrityError("the audit trail has a gap: cannot checkpoint it")
        frontier.extend(leaves)
        return frontier

    def latest_checkpoint(self) -> Checkpoint | None:
        row = self._one(_LAST_CHECKPOINT, ())
        return None if row is None else _checkpoint(row)

    def latest_index_checkpoint(self) -> Checkpoint | None:
        row = self._one(_LAST_INDEX_CHECKPOINT, ())
        return None if row is None else _index_checkpoint(row)

    def export_checkpoint(self) -> dict[str, Any]:
        """The latest signed checkpoint as JSON (signing one first if there is none)."""
        cp = self.latest_checkpoint()
        if cp is None:
            cp = self.checkpoint()
        return cp.to_json()

    def _initial_checkpoint_time(self) -> datetime:
        row = self._one(_LAST_CHECKPOINT, ())
        if row is not None:
            with contextlib.suppress(ValueError):
                return _parse_time(row[3])
        first = self._one(_FIRST_TIME, ())
        if first is not None:
            with contextlib.suppress(ValueError, TypeError):
                return _parse_time(first[0])
        return _aware(self._now())

    # -- proofs -----------------------------------------------------------------

    def leaf_hashes(self, size: int) -> list[bytes]:
        """The stored leaf hashes of entries 0 .. size-1."""
        rows = self._all(_LEAVES, (0, size))
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
        row = self._one(_HEAD, ())
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
        block = max(after + 1, 0) // _BLOCK
        # A bounded run of blocks per query: a page costs what it returns, not what
        # the subject's whole history would.
        while len(rows) < limit and block < indexed:
            stop = min(block + _BLOCKS_PER_QUERY, indexed)
            rows += self._all(_BY_SUBJECT_BLOCKS,
                              (*filters, limit - len(rows), subject, block, stop, *kinds))
            block = stop
        if len(rows) < limit:
            rows += self._all(_BY_SUBJECT_TAIL,
                              (*filters, limit - len(rows), subject, indexed * _BLOCK, None,
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
                raise _storage_error("read", exc) from exc
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
            raise _storage_error("read", exc) from exc
        except sqlite3.DatabaseError as exc:
            raise CorruptStore(f"{self.path} is damaged ({exc})") from exc
        finally:
            db.close()


def schema_objects() -> dict[tuple[str, str], str | None]:
    """What sqlite_master of every trail holds: (type, name) -> its CREATE statement."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        rows = db.execute("SELECT type, name, sql FROM sqlite_master")
        return {(t, n): sql for t, n, sql in rows}
    finally:
        db.close()


def _read_head(db: sqlite3.Connection) -> tuple[int, bytes]:
    """(the next seq, the hash it chains from), read inside the write transaction."""
    row = db.execute(_HEAD).fetchone()
    return (0, GENESIS) if row is None else (int(row[0]) + 1, bytes(row[1]))


def _checkpoint(row: Sequence[Any]) -> Checkpoint:
    return Checkpoint(size=row[0], root=row[1], head=row[2], time=row[3], key_id=row[4],
                      public_key=row[5], signature=row[6], prev=row[7], index_head=row[8])


def _index_checkpoint(row: Sequence[Any]) -> Checkpoint:
    return Checkpoint(size=row[0], root=row[1], head=row[2], time=row[3], key_id=row[4],
                      public_key=row[5], signature=row[6], index_root=row[7],
                      subjects=row[8], prev=row[9])


def _prepare_file(db: sqlite3.Connection, path: Path, *, read_only: bool,
                  check_version: bool = True) -> None:
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    fresh = app_id != _APPLICATION_ID
    if fresh and (tables or read_only):
        raise CorruptStore(f"{path} is not a pacte audit trail")
    if not read_only:
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives application crashes; the graph store makes the
        # same choice, so an entry is exactly as durable as the write it records.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    if fresh:
        # Idempotent DDL: another process creating the same file at once is harmless.
        db.executescript("BEGIN IMMEDIATE;" + _SCHEMA
                         + f"PRAGMA application_id={_APPLICATION_ID}; COMMIT;")
        db.execute(_INIT_META, ("schema_version", SCHEMA_VERSION))
        return
    version = db.execute(_GET_META, ("schema_version",)).fetchone()
    found = "none" if version is None else version[0]
    if found == _UPGRADABLE and _is_version_3(db):
        if read_only:
            raise CorruptStore(f"{path} has audit schema version 3: open it once for writing "
                               "with this pacte (any command that records, such as `pacte "
                               "audit checkpoint`), which upgrades it, then verify it")
        _upgrade_from_3(db)
    elif check_version and found != SCHEMA_VERSION:
        raise CorruptStore(f"{path} has audit schema version {found}; this pacte reads "
                           f"version {SCHEMA_VERSION} (a trail from a pre-release build "
                           "cannot be read: move it aside and keep it as it is)")


_UPGRADABLE = "3"


def _is_version_3(db: sqlite3.Connection) -> bool:
    """A version 3 file: its checkpoints have no index_head yet (one that has, with a
    version row saying 3, is a version 4 file tampered with: verify names it)."""
    columns = [row[1] for row in db.execute("PRAGMA table_info(checkpoints)")]
    return "index_head" not in columns


def _upgrade_from_3(db: sqlite3.Connection) -> None:
    """Version 3 to 4: the checkpoints' index_head column, and the index chain's head.

    The head is made from the entries, not from the index rows (the slow way, once):
    checkpoints signed from now on vouch for the rows the entries make, so index rows
    changed before the upgrade are still found by verify. Checkpoints signed before it
    sign no head; verify recomputes the blocks only they cover.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        if _is_version_3(db):  # another process may have upgraded it meanwhile
            db.execute("ALTER TABLE checkpoints ADD COLUMN index_head BLOB")
            indexed, _ = read_head(db)
            if indexed:
                head = expected_head(db, 0, indexed, INDEX_GENESIS)
                db.execute(_SET_META, (HEAD_KEY, head.hex()))
            db.execute(_SET_META, ("schema_version", SCHEMA_VERSION))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
