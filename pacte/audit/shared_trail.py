"""The audit trail in Neo4j, for many servers: one hash chain per writer (a server process).

Why chains and not one sequenced log: with one log, every append of every server
reads and moves one head, so every request of every server queues behind one lock
(held across the network round trips of a transaction). With one chain per writer,
a writer alone appends to its chain: it keeps its head in memory and appends in one
write transaction that locks nothing another writer needs. The trail is then the set
of chains, verified together and merged by time for reading (docs/scale-out.md).

Each chain keeps every guarantee of the single-writer trail (pacte.audit.trail):

- a hash chain: `entry_hash = SHA-256(0x00 || prev || canonical bytes)`, the same
  one-hash scheme, from a genesis that names the chain, so no entry can move to
  another chain or another place;
- the entry hashes are the leaves of the chain's Merkle tree; every
  `checkpoint_every` entries, or `checkpoint_seconds`, and when the writer closes, a
  checkpoint (size, root, head, time) is signed with the audit signing key and written
  in the same transaction as the entry that made it due;
- a subject index: one `PacteAuditSubject` node per (subject, entry), written with
  the entry, read to list a subject's entries across every chain.

A chain is opened in one transaction: its node, its first entry (`audit.chain.open`: its
ordinal, the signing key's id, the other chains and their sizes as the new writer found
them) and a signed checkpoint of that entry. Verify (pacte.audit.shared_verify) rejects
a chain whose opening is not signed (a chain forged without the key), whose node differs
from its opening (ordinals swapped), ordinals that are not 0.. the counter each once,
and a chain that a later opening names as gone or shorter. An append is one transaction:
a writer killed mid-append leaves its entries either all there or none, so its chain
ends at its last committed entry and verifies (the entries after its last checkpoint are
chained but not signed, as a single-writer trail's are until its next checkpoint).

    (:PacteAuditChain {chain, opened, key_id, ord})               unique chain, ord
    (:PacteAuditEntry {key: chain/n, chain, n, time, body, hash})  unique key
    (:PacteAuditSubject {subject, chain, n, time})      index (subject, time), (chain, n)
    (:PacteAuditCheckpoint {key: chain/size, chain, size, root, head, time, key_id,
                            public_key, signature, prev})

Each chain has an ordinal `ord` (from a counter in `PacteMeta`, taken when the chain
is opened), and each entry a number `seq = ord * 65536 + n`: the integer handle the
readers of a trail use (cursors, receipts, GraphQL's `seq`). A writer opens a chain on
its first append, and a new one when its chain holds 65536 entries.

Bodies are RFC 8785 JSON of the record plus `chain`, `n` and `time`; records hold no
personal value (subjects are pseudonymous references) and bytes are refused, as in the
single-writer trail.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import neo4j
import orjson

from pacte.audit.canonical import canonical_bytes, check_json_value
from pacte.audit.checkpoint import Checkpoint
from pacte.audit.merkle import CompactRange, chained_leaf_hash
from pacte.audit.trail import format_time
from pacte.clock import utcnow
from pacte.crypto.signing import SigningKey
from pacte.errors import ConfigError, InputError, IntegrityError, StorageError
from pacte.graph.neo4j_store import Neo4jStore

__all__ = ["CHAIN_OPEN", "CHAIN_SPAN", "SharedEntry", "SharedTrail", "genesis"]

CHAIN_OPEN = "audit.chain.open"
_RESERVED = frozenset({"chain", "n", "time"})
_MAX_LIMIT = 10_000
_PAGE = 5000
# Entries per chain: `seq = ord * CHAIN_SPAN + n` stays a small integer for 32768 chains.
CHAIN_SPAN = 1 << 16

# The counter is a PacteMeta node (unique key): MERGE on it is safe between servers,
# and its write lock orders the (rare) chain openings.
_OPEN_CHAIN = (
    "MERGE (m:PacteMeta {key: 'audit.chains'}) ON CREATE SET m.value = '0' "
    # The SET takes the counter's write lock before it is read: two openings never
    # read the same value (reading first lost updates).
    "SET m.value = toString(toInteger(m.value) + 1) "
    "WITH m, toInteger(m.value) - 1 AS ord "
    "CREATE (c:PacteAuditChain {chain: $chain, opened: $time, key_id: $key_id, ord: ord}) "
    "RETURN ord"
)
_ORDS = "MATCH (c:PacteAuditChain) RETURN collect([c.chain, c.ord])"
_AT_SEQ = (
    "MATCH (c:PacteAuditChain {ord: $ord}) "
    "MATCH (e:PacteAuditEntry {key: c.chain + '/' + toString($n)}) RETURN [e.time, c.chain]"
)
# Held for the length of `exclusive()`: the write lock of one node every server takes.
_EXCLUSIVE = "MERGE (m:PacteMeta {key: 'audit.exclusive'}) SET m.value = $time"
_CHAIN_SIZES = (
    "MATCH (c:PacteAuditChain) WITH c.chain AS chain ORDER BY chain "
    "CALL (chain) { MATCH (e:PacteAuditEntry {chain: chain}) "
    "RETURN max(e.n) AS last } RETURN collect([chain, last])"
)
# One statement, one round trip: the entries, their subject rows, a checkpoint if due.
_APPEND = """
CALL { UNWIND $entries AS e
  CREATE (:PacteAuditEntry {key: e.key, chain: $chain, n: e.n, time: e.time, body: e.body,
                            hash: e.hash}) }
CALL { UNWIND $subjects AS s
  CREATE (:PacteAuditSubject {subject: s.subject, chain: $chain, n: s.n, time: s.time}) }
CALL { UNWIND $checkpoints AS c
  CREATE (:PacteAuditCheckpoint {key: c.key, chain: $chain, size: c.size, root: c.root,
                                 head: c.head, time: c.time, key_id: c.key_id,
                                 public_key: c.public_key, signature: c.signature,
                                 prev: c.prev}) }
"""
_CHAINS = (
    "MATCH (c:PacteAuditChain) WITH c ORDER BY c.chain RETURN collect([c.chain, c.key_id, c.ord])"
)
_CHECKPOINTS = (
    "MATCH (c:PacteAuditCheckpoint {chain: $chain}) WITH c ORDER BY c.size "
    "RETURN collect([c.size, c.root, c.head, c.time, c.key_id, c.public_key, c.signature, "
    "c.prev])"
)
# After (time, chain, n): the time bound uses the index, the rest breaks ties.
_ENTRIES = (
    "MATCH (e:PacteAuditEntry) WHERE e.time >= $time AND (e.time > $time OR e.chain > $chain "
    "OR (e.chain = $chain AND e.n > $n)) AND e.time >= $since AND e.time < $until "
    "WITH e ORDER BY e.time, e.chain, e.n LIMIT $limit "
    "OPTIONAL MATCH (p:PacteAuditEntry {key: e.chain + '/' + toString(e.n - 1)}) "
    "RETURN collect([e.chain, e.n, e.time, e.body, e.hash, p.hash])"
)
_BY_SUBJECT = (
    "MATCH (s:PacteAuditSubject {subject: $subject}) WHERE s.time >= $time "
    "AND (s.time > $time OR s.chain > $chain OR (s.chain = $chain AND s.n > $n)) "
    "AND s.time >= $since AND s.time < $until "
    "WITH s ORDER BY s.time, s.chain, s.n LIMIT $limit "
    "MATCH (e:PacteAuditEntry {key: s.chain + '/' + toString(s.n)}) "
    "OPTIONAL MATCH (p:PacteAuditEntry {key: e.chain + '/' + toString(e.n - 1)}) "
    "RETURN collect([e.chain, e.n, e.time, e.body, e.hash, p.hash])"
)
_IN_CHAIN = (
    "MATCH (e:PacteAuditEntry) WHERE e.chain = $chain AND e.n >= $start "
    "WITH e ORDER BY e.n LIMIT $limit "
    "OPTIONAL MATCH (p:PacteAuditEntry {key: e.chain + '/' + toString(e.n - 1)}) "
    "RETURN collect([e.chain, e.n, e.time, e.body, e.hash, p.hash])"
)
_SIZE = "MATCH (e:PacteAuditEntry) RETURN count(e)"


def genesis(chain: str) -> bytes:
    """What a chain's first entry chains from: fixed, domain-separated, naming the chain."""
    return hashlib.sha256(b"pacte.audit.shared/v1 genesis\x00" + chain.encode()).digest()


def _key(chain: str, n: int) -> str:
    return f"{chain}/{n}"


@dataclass(frozen=True, slots=True)
class SharedEntry:
    """One entry of one chain: where it is, its time, the caller's record, its hash.

    It reads like a single-writer trail's entry (`seq`, `prev_hash`, `canonical`,
    `subjects`, `to_json`), so reports and the API take either.
    """

    chain: str
    n: int
    time: str
    record: Mapping[str, Any]
    entry_hash: bytes = field(repr=False)
    seq: int = -1
    prev_hash: bytes = field(default=b"", repr=False)
    canonical: bytes = field(default=b"", repr=False)

    @property
    def cursor(self) -> tuple[str, str, int]:
        """Its place in the merged order: (time, chain, n)."""
        return (self.time, self.chain, self.n)

    @property
    def subjects(self) -> list[str]:
        named = self.record.get("subjects")
        return [s for s in named if isinstance(s, str)] if isinstance(named, list) else []

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "chain": self.chain, "n": self.n, "time": self.time,
                "record": dict(self.record), "entry_hash": self.entry_hash.hex(),
                "prev_hash": self.prev_hash.hex()}


def _entry(row: Sequence[Any], ords: Mapping[str, int]) -> SharedEntry:
    chain, n, time, body, entry_hash, prev = row
    try:
        doc = orjson.loads(body)
        for name in _RESERVED:
            doc.pop(name)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"audit entry {chain}/{n} is unreadable") from exc
    ord_ = ords.get(str(chain), -1)
    return SharedEntry(str(chain), int(n), str(time), doc, bytes(entry_hash),
                       seq=-1 if ord_ < 0 else ord_ * CHAIN_SPAN + int(n),
                       prev_hash=genesis(str(chain)) if prev is None else bytes(prev),
                       canonical=str(body).encode("utf-8"))


@dataclass
class _Head:
    """What a writer keeps of its chain: its place, head, Merkle frontier, checkpoints."""

    chain: str
    ord: int
    due: datetime
    n: int = 0
    head: bytes = b""
    tree: CompactRange = field(default_factory=CompactRange)
    last_checkpoint: int | None = None


class SharedTrail:
    """This process's chain of the trail kept in Neo4j; reads see every chain.

    Thread-safe: the appends of this process's threads take turns on its chain (one
    transaction each); other processes append to their own chains meanwhile. The chain
    is opened on the first append, so a process that only reads opens none.
    """

    def __init__(self, store: Neo4jStore, *, signer: SigningKey,
                 checkpoint_every: int, checkpoint_seconds: float,
                 now: Callable[[], datetime]) -> None:
        self._store = store
        self._signer = signer
        self._every = checkpoint_every
        self._interval = timedelta(seconds=checkpoint_seconds)
        self._now = now
        self._lock = threading.RLock()
        self._head: _Head | None = None
        self._ords: dict[str, int] = {}
        self._closed = False
        self._broken: BaseException | None = None
        self._exclusive: neo4j.Transaction | None = None

    @classmethod
    def open(cls, store: Neo4jStore, *, signer: SigningKey, checkpoint_every: int = 1000,
             checkpoint_seconds: float = 60, now: Callable[[], datetime] = utcnow
             ) -> SharedTrail:
        """This process's writer; its chain is opened on its first append."""
        if checkpoint_every < 1 or checkpoint_seconds <= 0:
            raise InputError("checkpoints must be due after >= 1 entry and > 0 seconds")
        return cls(store, signer=signer, checkpoint_every=checkpoint_every,
                   checkpoint_seconds=checkpoint_seconds, now=now)

    @property
    def chain(self) -> str | None:
        """This writer's current chain (None before its first append)."""
        return None if self._head is None else self._head.chain

    @property
    def signer(self) -> SigningKey:
        return self._signer

    @property
    def store(self) -> Neo4jStore:
        return self._store

    def seq_of(self, chain: str, n: int) -> int | None:
        """The `seq` of entry n of `chain` (None for a chain not opened)."""
        if chain not in self._ords:
            self._ords.update({str(c): int(o) for c, o in _one(self._store, _ORDS) or []
                               if o is not None})
        ord_ = self._ords.get(chain)
        return None if ord_ is None else ord_ * CHAIN_SPAN + n

    def _open_chain(self) -> _Head:
        """A new chain for this writer, opened in one transaction: its node (with the next
        ordinal), its first entry (naming that ordinal, the signing key, and the other
        chains with their sizes) and a signed checkpoint of that entry. A chain whose
        opening is not signed is then a forgery (pacte.audit.shared_verify)."""
        chain = "w_" + os.urandom(8).hex()
        sizes = {str(c): (-1 if last is None else int(last)) + 1
                 for c, last in _one(self._store, _CHAIN_SIZES) or []}
        now = self._now()
        time = format_time(now)
        key_id = self._signer.key_id
        opened: list[_Head] = []

        def work(tx: neo4j.ManagedTransaction) -> None:
            opened.clear()  # a retried transaction starts over
            ord_ = int(tx.run(_OPEN_CHAIN, chain=chain, time=time,
                              key_id=key_id).single(strict=True)[0])
            head = _Head(chain, ord_, now + self._interval, head=genesis(chain))
            opening = {"action": CHAIN_OPEN, "ord": ord_, "key_id": key_id, "chains": sizes}
            rows, subjects, _, tree, link = _rows(head, [_prepare(opening)], [time])
            checkpoint = self._sign(head, tree, link, time)
            _append_work(chain, rows, subjects, [checkpoint])(tx)
            head.n, head.head, head.tree, head.last_checkpoint = 1, link, tree, 1
            opened.append(head)

        self._store.run_write("audit chain creation", work)
        head = opened[0]
        self._ords[chain] = head.ord
        self._head = head
        return head

    # -- appending ----------------------------------------------------------------------

    def append(self, record: Mapping[str, object]) -> SharedEntry:
        return self.append_many([record])[0]

    def append_many(self, records: Sequence[Mapping[str, object]], *,
                    times: Sequence[datetime] | None = None) -> list[SharedEntry]:
        """Append records in one transaction: all of them, consecutive, or none. Each
        entry's time is now, or its own of `times` (a migration keeps the source's)."""
        prepared = [_prepare(r) for r in records]
        if times is not None and len(times) != len(prepared):
            raise InputError("one time per record")
        if not prepared:
            return []
        if len(prepared) >= CHAIN_SPAN:
            raise InputError(f"at most {CHAIN_SPAN - 1} records in one append")
        with self._lock:
            head = self._writable()
            if head.n + len(prepared) > CHAIN_SPAN:
                # Full: its last checkpoint signs it whole, and the writer goes on in a
                # new chain (seq numbers stay small).
                self._checkpoint_locked(head)
                head = self._open_chain()
            return self._append_locked(head, prepared, times)

    def _writable(self) -> _Head:
        if self._closed:
            raise StorageError("the audit trail is closed")
        if self._broken is not None:
            # After a failure whose outcome is unknown (a lost connection at commit)
            # this chain's head is not known for sure: no more appends to it.
            raise StorageError("this audit chain stopped after a failed append; "
                               "restart the server to open a new chain")
        return self._head or self._open_chain()

    def _append_locked(self, head: _Head, prepared: Sequence[_Prepared],
                       times: Sequence[datetime] | None = None) -> list[SharedEntry]:
        now = self._now()
        stamps = [format_time(t) for t in times] if times is not None \
            else [format_time(now)] * len(prepared)
        rows, subjects, out, tree, link = _rows(head, prepared, stamps)
        n = head.n + len(prepared)
        checkpoints = []
        if n // self._every > head.n // self._every or now >= head.due:
            checkpoints.append(self._sign(head, tree, link, format_time(now)))
        self._write("audit append", _append_work(head.chain, rows, subjects, checkpoints))
        head.n, head.head, head.tree = n, link, tree
        if checkpoints:
            head.last_checkpoint = n
            head.due = now + self._interval
        return out

    def _write(self, operation: str, work: Callable[[Any], None]) -> None:
        try:
            if self._exclusive is not None:
                work(self._exclusive)  # committed when `exclusive()` ends
            else:
                self._store.run_write(operation, work)
        except BaseException as exc:
            self._broken = exc
            raise

    def _sign(self, head: _Head, tree: CompactRange, link: bytes, time: str
              ) -> dict[str, Any]:
        cp = Checkpoint.create(self._signer, size=tree.size, root=tree.root(), head=link,
                               time=time, prev=head.last_checkpoint)
        return {"key": _key(head.chain, cp.size), "size": cp.size, "root": cp.root,
                "head": cp.head, "time": cp.time, "key_id": cp.key_id,
                "public_key": cp.public_key, "signature": cp.signature, "prev": cp.prev}

    def checkpoint(self) -> Checkpoint:
        """Sign a checkpoint of this writer's chain as it is now (opening the chain if it
        has none yet); the one it has if nothing was appended since."""
        with self._lock:
            head = self._writable()
            cp = self._checkpoint_locked(head)
            return cp if cp is not None else self._latest(head)

    def _checkpoint_locked(self, head: _Head) -> Checkpoint | None:
        if head.n == head.last_checkpoint or self._broken is not None:
            return None
        row = self._sign(head, head.tree, head.head, format_time(self._now()))
        self._write("audit checkpoint", _append_work(head.chain, [], [], [row]))
        head.last_checkpoint = head.n
        return _checkpoint(row)

    def _latest(self, head: _Head) -> Checkpoint:
        rows = _one(self._store, _CHECKPOINTS, chain=head.chain) or []
        return _checkpoint_row(rows[-1])

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One step of every server: what is read and appended inside the block.

        For a check that depends on the trail and an append that depends on the check
        (a privacy budget). Every server's `exclusive()` takes the write lock of one
        node in a transaction held open for the block; the block's appends are written
        in that transaction, so they commit when it ends without an exception, else
        none does. Reads inside see what every other server committed before.
        """
        with self._lock:
            if self._exclusive is not None:
                raise IntegrityError("exclusive() does not nest")
            head = self._writable()
            saved = (head.n, head.head, CompactRange(head.tree.size, head.tree.hashes),
                     head.last_checkpoint, head.due)
            committing = False
            try:
                with self._store.write_transaction("audit lock") as tx:
                    tx.run(_EXCLUSIVE, time=format_time(self._now())).consume()
                    self._exclusive = tx
                    try:
                        yield
                        committing = True
                    finally:
                        self._exclusive = None
            except BaseException as exc:
                # Rolled back: what the block appended is not on the chain. A commit that
                # failed may have happened all the same: the chain stops there.
                head.n, head.head, head.tree, head.last_checkpoint, head.due = saved
                if committing:
                    self._broken = exc
                raise

    def rotate_signer(self, new: SigningKey) -> Checkpoint:
        raise ConfigError("the signing key of a trail shared by many servers is not rotated "
                          "by one of them (see docs/scale-out.md)")

    def close(self) -> None:
        """Sign the chain's final checkpoint, then refuse further appends."""
        if self._closed:
            return
        try:
            with self._lock:
                if self._head is not None:
                    self._checkpoint_locked(self._head)
        finally:
            self._closed = True

    def __enter__(self) -> SharedTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------

    def size(self) -> int:
        """How many entries all chains hold."""
        return int(_one(self._store, _SIZE) or 0)

    def entries(self, *, subject: str | None = None,
                after: tuple[str, str, int] | None = None, after_seq: int | None = None,
                limit: int = 50, since: datetime | str | None = None,
                until: datetime | str | None = None, principal: str | None = None,
                purpose: str | None = None, action: str | None = None,
                outcome: str | None = None) -> list[SharedEntry]:
        """Every chain's entries merged by time (then chain, then place), after `after`
        (an entry's `cursor`) or `after_seq` (an entry's `seq`); with `subject`, those
        naming it (the subject index); filtered like the single-writer trail's
        (`until` exclusive). Principal, purpose, action and outcome are read from the
        bodies as the rows come, a page at a time, until `limit` match."""
        if not isinstance(limit, int) or not 0 <= limit <= _MAX_LIMIT:
            raise InputError(f"limit must be between 0 and {_MAX_LIMIT}")
        if after is None and after_seq is not None:
            after = self._cursor_of(after_seq)
        wanted = {k: v for k, v in (("principal", principal), ("purpose", purpose),
                                    ("action", action), ("outcome", outcome)) if v is not None}
        bounds = {"since": _bound(since, ""), "until": _bound(until, "~")}
        out: list[SharedEntry] = []
        while len(out) < limit:
            page = self._page(subject, after, limit if not wanted else _PAGE, bounds)
            out += [e for e in page if all(e.record.get(k) == v for k, v in wanted.items())]
            if len(page) < (limit if not wanted else _PAGE):
                break
            after = page[-1].cursor
        return out[:limit]

    def chain_entries(self, chain: str, *, start: int = 0, limit: int = 50
                      ) -> list[SharedEntry]:
        """The entries of one chain in its own order, from place `start` (times need not
        rise along a chain: a migrated one carries its source's)."""
        if not isinstance(limit, int) or not 0 <= limit <= _MAX_LIMIT:
            raise InputError(f"limit must be between 0 and {_MAX_LIMIT}")
        rows = _one(self._store, _IN_CHAIN, chain=chain, start=start, limit=limit) or []
        return self._read(rows)

    def _read(self, rows: Sequence[Sequence[Any]]) -> list[SharedEntry]:
        if any(str(r[0]) not in self._ords for r in rows):
            self._ords.update({str(c): int(o) for c, o in _one(self._store, _ORDS) or []
                               if o is not None})
        return [_entry(r, self._ords) for r in rows]

    def _page(self, subject: str | None, after: tuple[str, str, int] | None, limit: int,
              bounds: Mapping[str, str]) -> list[SharedEntry]:
        time, chain, n = after if after is not None else ("", "", -1)
        if subject is None:
            rows = _one(self._store, _ENTRIES, time=time, chain=chain, n=n, limit=limit,
                        **bounds) or []
        else:
            rows = _one(self._store, _BY_SUBJECT, subject=subject, time=time, chain=chain,
                        n=n, limit=limit, **bounds) or []
        return self._read(rows)

    def _cursor_of(self, seq: int) -> tuple[str, str, int]:
        """The merged-order place of the entry numbered `seq`."""
        if not isinstance(seq, int) or seq < 0:
            raise InputError("an audit position is a whole number >= 0")
        ord_, n = divmod(seq, CHAIN_SPAN)
        found = _one(self._store, _AT_SEQ, ord=ord_, n=n)
        if found is None:
            raise InputError(f"no audit entry {seq}")
        return (str(found[0]), str(found[1]), n)


def _bound(moment: datetime | str | None, default: str) -> str:
    if moment is None:
        return default
    return moment if isinstance(moment, str) else format_time(moment)


def _checkpoint(row: Mapping[str, Any]) -> Checkpoint:
    return Checkpoint(size=row["size"], root=row["root"], head=row["head"], time=row["time"],
                      key_id=row["key_id"], public_key=row["public_key"],
                      signature=row["signature"], prev=row["prev"])


def _checkpoint_row(row: Sequence[Any]) -> Checkpoint:
    return Checkpoint(size=int(row[0]), root=bytes(row[1]), head=bytes(row[2]),
                      time=str(row[3]), key_id=str(row[4]), public_key=bytes(row[5]),
                      signature=bytes(row[6]), prev=None if row[7] is None else int(row[7]))


def _append_work(chain: str, rows: list[dict[str, Any]], subjects: list[dict[str, Any]],
                 checkpoints: list[dict[str, Any]]) -> Callable[[Any], None]:
    def work(tx: neo4j.ManagedTransaction | neo4j.Transaction) -> None:
        tx.run(_APPEND, chain=chain, entries=rows, subjects=subjects,
               checkpoints=checkpoints).consume()
    return work


_Prepared = tuple[Mapping[str, object], bool, Sequence[str]]


def _rows(head: _Head, prepared: Sequence[_Prepared], times: Sequence[str]
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[SharedEntry],
                     CompactRange, bytes]:
    """The rows that put `prepared` after `head` (which is left as it is): entries,
    subject rows, the entries as read back, the Merkle frontier and head after them."""
    n, link = head.n, head.head
    tree = CompactRange(head.tree.size, head.tree.hashes)
    out: list[SharedEntry] = []
    rows: list[dict[str, Any]] = []
    subjects: list[dict[str, Any]] = []
    for (record, fast, refs), time in zip(prepared, times, strict=True):
        doc = dict(record)
        doc["chain"], doc["n"], doc["time"] = head.chain, n, time
        body = canonical_bytes(doc, checked=fast)
        prev, link = link, chained_leaf_hash(link, body)
        tree.append(link)
        rows.append({"key": _key(head.chain, n), "n": n, "time": time,
                     "body": body.decode("utf-8"), "hash": link})
        subjects += [{"subject": s, "n": n, "time": time} for s in dict.fromkeys(refs)]
        out.append(SharedEntry(head.chain, n, time, record, link,
                               seq=head.ord * CHAIN_SPAN + n, prev_hash=prev, canonical=body))
        n += 1
    return rows, subjects, out, tree, link


def _prepare(record: Mapping[str, object]) -> _Prepared:
    if not isinstance(record, Mapping):
        raise IntegrityError("an audit record must be a mapping")
    if _RESERVED & record.keys():
        raise IntegrityError(f"audit records may not set {sorted(_RESERVED)}: "
                             "the trail assigns them")
    fast = check_json_value(record)
    subjects = record.get("subjects") or ()
    if not isinstance(subjects, list | tuple) or any(type(s) is not str for s in subjects):
        raise IntegrityError("audit record subjects must be a list of strings")
    return record, fast, subjects


def _one(store: Neo4jStore, query: Any, **params: Any) -> Any:
    rows = store.run_read("audit read", query, **params)
    return rows[0][0] if rows else None
