"""The audit trail: an append-only, hash-chained, Merkle-checkpointed log in its own SQLite file.

What an entry is, and its one hash (chain link and Merkle leaf at once), is in
`pacte.audit.entry`; the file's tables in `pacte.audit.schema`; the subject index and
the chain that signs it in `pacte.audit.index`; checkpoints as stored in
`pacte.audit.checkpoint_store`. So every entry costs one hash to write and one to
verify, and nothing binds less: changing an entry changes its leaf, and with it every
later link and every later root.

The head is read inside a `BEGIN IMMEDIATE` transaction, so appenders in several
processes queue on SQLite's write lock and never fork the chain. Every
`checkpoint_every` entries, or when `checkpoint_seconds` have passed (checked at each
append), a signed checkpoint of (size, root, head, time, key id, index head) is
written in the same transaction as the entry that made it due. `exclusive()` holds
that write lock around a caller's read and append, for appends that depend on what
the trail says (a privacy budget).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pacte.audit.canonical import canonical_bytes
from pacte.audit.checkpoint import Checkpoint
from pacte.audit.checkpoint_store import (
    LAST_CHECKPOINT,
    sign_checkpoint,
    sign_index_checkpoint,
    subject_map,
)
from pacte.audit.entry import (
    GENESIS,
    AuditEntry,
    Prepared,
    aware,
    format_time,
    parse_time,
    prepare,
)
from pacte.audit.index import BLOCK, index_blocks
from pacte.audit.merkle import MerkleTree, chained_leaf_hash
from pacte.audit.reading import HEAD, TrailReader, storage_error
from pacte.audit.schema import prepare_file
from pacte.audit.subjects import SubjectMap
from pacte.audit.wal import WalCheckpointer
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

# AuditEntry and format_time are imported from here by other packages.
__all__ = ["AuditEntry", "AuditTrail", "format_time"]

# Only the body and its hash: time, principal and purpose are computed from the body
# (see pacte.audit.reading).
_INSERT = "INSERT INTO entries (seq, body, entry_hash) VALUES (?, ?, ?)"
_FIRST_TIME = "SELECT time FROM entries ORDER BY seq LIMIT 1"


class _StaleHead(Exception):
    """Another process appended since this one last saw the head."""


class AuditTrail(TrailReader):
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
            prepare_file(db, path, read_only=read_only, check_version=not for_verify)
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
        prepared = [prepare(r) for r in records]
        if not prepared:
            return []
        with self._lock:
            if self._closed:
                raise StorageError("the audit trail is closed")
            db = self._db
            now = aware(self._now())
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
                raise storage_error("append", exc) from exc
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
                raise storage_error("lock", exc) from exc
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
                    raise storage_error("append", exc) from exc
                raise
            finally:
                self._exclusive = False

    def _append_alone(self, db: sqlite3.Connection, prepared: list[Prepared], now: datetime
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
        if following % BLOCK == 0 or (self._signer is not None and (
                following % self._every == 0 or now >= self._checkpoint_due)):
            return None
        try:
            return self._insert(db, prepared, head, format_time(now))
        except _StaleHead:
            self._head = None
            return None

    def _append_locked(self, db: sqlite3.Connection, prepared: list[Prepared], now: datetime
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
        if (last.seq + 1) // BLOCK > start // BLOCK:
            self._index_subjects(db, (last.seq + 1) // BLOCK)
        if self._signer is not None and (
            (last.seq + 1) // self._every > start // self._every
            or now >= self._checkpoint_due
        ):
            self._checkpoint_locked(db, last.seq + 1, last.entry_hash, now)
        return out

    def _insert(self, db: sqlite3.Connection, prepared: list[Prepared],
                head: tuple[int, bytes], time: str) -> list[AuditEntry]:
        seq, prev = head
        out: list[AuditEntry] = []
        for record, fast, subjects in prepared:
            body = canonical_bytes({**record, "seq": seq, "time": time}, checked=fast)
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
        block = seq // BLOCK
        rows = self._blocks.get(block)
        if rows is None:
            if seq % BLOCK:
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
        now = aware(self._now())
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
            self._insert(db, [prepare(rotation_record(old, new, seq=size, after=head))],
                         (size, head), format_time(aware(self._now())))
            self._signer = new
            last = _read_head(db)
            if last[0] // BLOCK > size // BLOCK:
                self._index_subjects(db, last[0] // BLOCK)
            return self._checkpoint_locked(db, last[0], last[1], aware(self._now()))

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
                raise storage_error(action, exc) from exc
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
        cp = sign_checkpoint(db, self._signer, size=size, head=head, time=format_time(now))
        self._checkpoint_due = now + self._interval
        return cp

    def _index_checkpoint_locked(self, db: sqlite3.Connection, size: int, head: bytes,
                                 now: datetime) -> Checkpoint:
        assert self._signer is not None
        return sign_index_checkpoint(db, self._signer, size=size, head=head,
                                     time=format_time(now))

    def subject_map(self, size: int) -> SubjectMap:
        """The subject map of the first `size` entries (`size` at most the log's)."""
        with self._lock, self.reader() as db:
            return subject_map(db, size)

    def export_checkpoint(self) -> dict[str, Any]:
        """The latest signed checkpoint as JSON (signing one first if there is none)."""
        cp = self.latest_checkpoint()
        if cp is None:
            cp = self.checkpoint()
        return cp.to_json()

    def _initial_checkpoint_time(self) -> datetime:
        row = self._one(LAST_CHECKPOINT, ())
        if row is not None:
            with contextlib.suppress(ValueError):
                return parse_time(row[3])
        first = self._one(_FIRST_TIME, ())
        if first is not None:
            with contextlib.suppress(ValueError, TypeError):
                return parse_time(first[0])
        return aware(self._now())

def _read_head(db: sqlite3.Connection) -> tuple[int, bytes]:
    """(the next seq, the hash it chains from), read inside the write transaction."""
    row = db.execute(HEAD).fetchone()
    return (0, GENESIS) if row is None else (int(row[0]) + 1, bytes(row[1]))


