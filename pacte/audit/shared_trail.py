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

A chain's first entry (`audit.chain.open`) names the other chains and their sizes as
the new writer found them, so a chain removed whole is missed by every chain opened
after it (verify checks those references). An append is one transaction: a writer
killed mid-append leaves its entries either all there or none, so its chain ends at
its last committed entry and verifies (the entries after its last checkpoint are
chained but not signed, as a single-writer trail's are until its next checkpoint).

    (:PacteAuditChain {chain, opened, key_id})                    unique chain
    (:PacteAuditEntry {key: chain/n, chain, n, time, body, hash})  unique key
    (:PacteAuditSubject {subject, chain, n, time})                 index (subject, time)
    (:PacteAuditCheckpoint {key: chain/size, chain, size, root, head, time, key_id,
                            public_key, signature, prev})

Bodies are RFC 8785 JSON of the record plus `chain`, `n` and `time`; records hold no
personal value (subjects are pseudonymous references) and bytes are refused, as in the
single-writer trail.
"""

from __future__ import annotations

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
from pacte.errors import InputError, IntegrityError, StorageError
from pacte.graph.neo4j_store import Neo4jStore

__all__ = ["CHAIN_OPEN", "SharedEntry", "SharedTrail", "SharedVerification", "genesis",
           "verify_shared"]

CHAIN_OPEN = "audit.chain.open"
_RESERVED = frozenset({"chain", "n", "time"})
_MAX_LIMIT = 10_000
_PAGE = 5000

_OPEN_CHAIN = (
    "CREATE (c:PacteAuditChain {chain: $chain, opened: $time, key_id: $key_id})"
)
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
_CHAINS = "MATCH (c:PacteAuditChain) WITH c ORDER BY c.chain RETURN collect([c.chain, c.key_id])"
_ORPHANS = (
    "MATCH (e:PacteAuditEntry) WHERE NOT EXISTS { MATCH (c:PacteAuditChain {chain: e.chain}) } "
    "RETURN collect(DISTINCT e.chain)"
)
_CHAIN_PAGE = (
    "MATCH (e:PacteAuditEntry) WHERE e.chain = $chain AND e.n >= $start "
    "WITH e ORDER BY e.n LIMIT $limit RETURN collect([e.n, e.time, e.body, e.hash])"
)
_CHECKPOINTS = (
    "MATCH (c:PacteAuditCheckpoint {chain: $chain}) WITH c ORDER BY c.size "
    "RETURN collect([c.size, c.root, c.head, c.time, c.key_id, c.public_key, c.signature, "
    "c.prev])"
)
# After (time, chain, n): the time bound uses the index, the rest breaks ties.
_ENTRIES = (
    "MATCH (e:PacteAuditEntry) WHERE e.time >= $time AND (e.time > $time OR e.chain > $chain "
    "OR (e.chain = $chain AND e.n > $n)) "
    "WITH e ORDER BY e.time, e.chain, e.n LIMIT $limit "
    "RETURN collect([e.chain, e.n, e.time, e.body, e.hash])"
)
_BY_SUBJECT = (
    "MATCH (s:PacteAuditSubject {subject: $subject}) WHERE s.time >= $time "
    "AND (s.time > $time OR s.chain > $chain OR (s.chain = $chain AND s.n > $n)) "
    "WITH s ORDER BY s.time, s.chain, s.n LIMIT $limit "
    "MATCH (e:PacteAuditEntry {key: s.chain + '/' + toString(s.n)}) "
    "RETURN collect([e.chain, e.n, e.time, e.body, e.hash])"
)
_SIZE = "MATCH (e:PacteAuditEntry) RETURN count(e)"


def genesis(chain: str) -> bytes:
    """What a chain's first entry chains from: fixed, domain-separated, naming the chain."""
    return hashlib.sha256(b"pacte.audit.shared/v1 genesis\x00" + chain.encode()).digest()


def _key(chain: str, n: int) -> str:
    return f"{chain}/{n}"


@dataclass(frozen=True, slots=True)
class SharedEntry:
    """One entry of one chain: where it is, its time, the caller's record, its hash."""

    chain: str
    n: int
    time: str
    record: Mapping[str, Any]
    entry_hash: bytes = field(repr=False)

    @property
    def cursor(self) -> tuple[str, str, int]:
        """Its place in the merged order: (time, chain, n)."""
        return (self.time, self.chain, self.n)


def _entry(row: Sequence[Any]) -> SharedEntry:
    chain, n, time, body, entry_hash = row
    try:
        doc = orjson.loads(body)
        for name in _RESERVED:
            doc.pop(name)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"audit entry {chain}/{n} is unreadable") from exc
    return SharedEntry(str(chain), int(n), str(time), doc, bytes(entry_hash))


class SharedTrail:
    """This process's chain of the trail kept in Neo4j; reads see every chain.

    Thread-safe: the appends of this process's threads take turns on its chain (one
    transaction each); other processes append to their own chains meanwhile.
    """

    def __init__(self, store: Neo4jStore, chain: str, *, signer: SigningKey,
                 checkpoint_every: int, checkpoint_seconds: float,
                 now: Callable[[], datetime]) -> None:
        self._store = store
        self.chain = chain
        self._signer = signer
        self._every = checkpoint_every
        self._interval = timedelta(seconds=checkpoint_seconds)
        self._now = now
        self._lock = threading.Lock()
        self._n = 0
        self._head = genesis(chain)
        self._tree = CompactRange()
        self._last_checkpoint: int | None = None
        self._due = now() + self._interval
        self._closed = False
        self._broken: BaseException | None = None

    @classmethod
    def open(cls, store: Neo4jStore, *, signer: SigningKey, checkpoint_every: int = 1000,
             checkpoint_seconds: float = 60, now: Callable[[], datetime] = utcnow
             ) -> SharedTrail:
        """Start a new chain for this process; its first entry names the others."""
        if checkpoint_every < 1 or checkpoint_seconds <= 0:
            raise InputError("checkpoints must be due after >= 1 entry and > 0 seconds")
        chain = "w_" + os.urandom(8).hex()
        sizes = {str(c): (-1 if last is None else int(last)) + 1
                 for c, last in _one(store, _CHAIN_SIZES) or []}
        store.run_write("audit chain creation", lambda tx: tx.run(
            _OPEN_CHAIN, chain=chain, time=format_time(now()),
            key_id=signer.key_id).consume())
        trail = cls(store, chain, signer=signer, checkpoint_every=checkpoint_every,
                    checkpoint_seconds=checkpoint_seconds, now=now)
        trail.append({"action": CHAIN_OPEN, "chains": sizes})
        return trail

    # -- appending ----------------------------------------------------------------------

    def append(self, record: Mapping[str, object]) -> SharedEntry:
        return self.append_many([record])[0]

    def append_many(self, records: Sequence[Mapping[str, object]]) -> list[SharedEntry]:
        """Append records in one transaction: all of them, consecutive, or none."""
        prepared = [_prepare(r) for r in records]
        if not prepared:
            return []
        with self._lock:
            if self._closed:
                raise StorageError("the audit trail is closed")
            if self._broken is not None:
                # After a failure whose outcome is unknown (a lost connection at commit)
                # this chain's head is not known for sure: no more appends to it.
                raise StorageError("this audit chain stopped after a failed append; "
                                   "restart the server to open a new chain")
            now = self._now()
            time = format_time(now)
            n, head = self._n, self._head
            tree = CompactRange(self._tree.size, self._tree.hashes)
            out: list[SharedEntry] = []
            rows: list[dict[str, Any]] = []
            subjects: list[dict[str, Any]] = []
            for record, fast, refs in prepared:
                doc = dict(record)
                doc["chain"], doc["n"], doc["time"] = self.chain, n, time
                body = canonical_bytes(doc, checked=fast)
                head = chained_leaf_hash(head, body)
                tree.append(head)
                rows.append({"key": _key(self.chain, n), "n": n, "time": time,
                             "body": body.decode("utf-8"), "hash": head})
                subjects += [{"subject": s, "n": n, "time": time} for s in dict.fromkeys(refs)]
                out.append(SharedEntry(self.chain, n, time, record, head))
                n += 1
            checkpoints = []
            if n // self._every > self._n // self._every or now >= self._due:
                cp = self._sign(tree, head, time)
                checkpoints.append(cp)
            try:
                self._store.run_write("audit append", _append_work(
                    self.chain, rows, subjects, checkpoints))
            except BaseException as exc:
                self._broken = exc
                raise
            self._n, self._head, self._tree = n, head, tree
            if checkpoints:
                self._last_checkpoint = n
                self._due = now + self._interval
            return out

    def _sign(self, tree: CompactRange, head: bytes, time: str) -> dict[str, Any]:
        cp = Checkpoint.create(self._signer, size=tree.size, root=tree.root(), head=head,
                               time=time, prev=self._last_checkpoint)
        return {"key": _key(self.chain, cp.size), "size": cp.size, "root": cp.root,
                "head": cp.head, "time": cp.time, "key_id": cp.key_id,
                "public_key": cp.public_key, "signature": cp.signature, "prev": cp.prev}

    def checkpoint(self) -> None:
        """Sign a checkpoint of this chain as it is now (nothing if it has one already)."""
        with self._lock:
            if self._n == self._last_checkpoint or self._broken is not None:
                return
            cp = self._sign(self._tree, self._head, format_time(self._now()))
            self._store.run_write("audit checkpoint",
                                  _append_work(self.chain, [], [], [cp]))
            self._last_checkpoint = self._n

    def close(self) -> None:
        """Sign the chain's final checkpoint, then refuse further appends."""
        if self._closed:
            return
        try:
            self.checkpoint()
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
                after: tuple[str, str, int] | None = None, limit: int = 50
                ) -> list[SharedEntry]:
        """Every chain's entries merged by time (then chain, then place), after `after`
        (an entry's `cursor`); with `subject`, those naming it (the subject index)."""
        if not isinstance(limit, int) or not 0 <= limit <= _MAX_LIMIT:
            raise InputError(f"limit must be between 0 and {_MAX_LIMIT}")
        time, chain, n = after if after is not None else ("", "", -1)
        if subject is None:
            rows = _one(self._store, _ENTRIES, time=time, chain=chain, n=n, limit=limit)
        else:
            rows = _one(self._store, _BY_SUBJECT, subject=subject, time=time, chain=chain,
                        n=n, limit=limit)
        return [_entry(r) for r in rows or []]


def _append_work(chain: str, rows: list[dict[str, Any]], subjects: list[dict[str, Any]],
                 checkpoints: list[dict[str, Any]]
                 ) -> Callable[[neo4j.ManagedTransaction], None]:
    def work(tx: neo4j.ManagedTransaction) -> None:
        tx.run(_APPEND, chain=chain, entries=rows, subjects=subjects,
               checkpoints=checkpoints).consume()
    return work


_Prepared = tuple[Mapping[str, object], bool, Sequence[str]]


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


# -- verification -------------------------------------------------------------------------


@dataclass
class SharedVerification:
    """The result of verifying every chain; `first_bad` names `chain/n`."""

    ok: bool
    chains: int = 0
    entries: int = 0
    checkpoints: int = 0
    unsigned: int = 0  # entries after their chain's last checkpoint (chained, not signed)
    first_bad: str | None = None
    reason: str | None = None

    def lines(self) -> list[str]:
        out = [f"Validating the shared audit trail: {self.chains} chains, {self.entries} "
               f"entries, {self.checkpoints} signed checkpoints, {self.unsigned} entries "
               "not yet covered by a checkpoint"]
        if self.ok:
            out.append("Audit trail is VALID")
        else:
            out.append(f"Audit trail is INVALID: {self.reason} (first bad entry "
                       f"{self.first_bad})")
        return out


class _Bad(Exception):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(reason)
        self.where, self.reason = where, reason


def verify_shared(store: Neo4jStore, *, public_key: bytes | None = None
                  ) -> SharedVerification:
    """Verify every chain: links, places, checkpoints (signed under `public_key` if
    given), and that no chain another one named at its opening is gone or shorter."""
    report = SharedVerification(ok=True)
    chains = [(str(c), str(k)) for c, k in _one(store, _CHAINS) or []]
    report.chains = len(chains)
    sizes: dict[str, int] = {}
    named: list[tuple[str, str, int]] = []  # (naming chain, named chain, size named)
    try:
        orphans = _one(store, _ORPHANS) or []
        if orphans:
            raise _Bad(f"{orphans[0]}/0", "entries of a chain that was never opened")
        for chain, _ in chains:
            size, opened = _verify_chain(store, chain, public_key, report)
            sizes[chain] = size
            named += [(chain, other, n) for other, n in opened.items()]
        for chain, other, n in named:
            if sizes.get(other, 0) < n:
                raise _Bad(f"{chain}/0", f"chain {other} holds fewer than the {n} entries "
                                         "it held when this chain opened")
    except _Bad as bad:
        report.ok, report.first_bad, report.reason = False, bad.where, bad.reason
    return report


def _verify_chain(store: Neo4jStore, chain: str, public_key: bytes | None,
                  report: SharedVerification) -> tuple[int, dict[str, int]]:
    checkpoints = {}
    for row in _one(store, _CHECKPOINTS, chain=chain) or []:
        cp = Checkpoint(size=int(row[0]), root=bytes(row[1]), head=bytes(row[2]),
                        time=str(row[3]), key_id=str(row[4]), public_key=bytes(row[5]),
                        signature=bytes(row[6]), prev=None if row[7] is None else int(row[7]))
        if not cp.verify(public_key):
            raise _Bad(f"{chain}/{max(cp.size - 1, 0)}",
                       "a checkpoint's signature does not verify"
                       + (" under the pinned key" if public_key is not None else ""))
        checkpoints[cp.size] = cp
    tree = CompactRange()
    head = genesis(chain)
    opened: dict[str, int] = {}
    n = 0
    while True:
        page = _one(store, _CHAIN_PAGE, chain=chain, start=n, limit=_PAGE) or []
        for at, time, body, stored in page:
            where = f"{chain}/{n}"
            if at != n:
                raise _Bad(where, "an entry is missing")
            raw = str(body).encode("utf-8")
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise _Bad(where, "an entry is unreadable") from None
            if not isinstance(doc, dict) or doc.get("chain") != chain or doc.get("n") != n \
                    or doc.get("time") != time:
                raise _Bad(where, "an entry's place or time differs from its body")
            try:
                canonical = canonical_bytes(doc)
            except IntegrityError:
                raise _Bad(where, "an entry is not canonical JSON") from None
            if canonical != raw:
                raise _Bad(where, "an entry is not canonical JSON")
            head = chained_leaf_hash(head, raw)
            if head != bytes(stored):
                raise _Bad(where, "an entry's hash does not match its content and chain")
            if n == 0:
                if doc.get("action") != CHAIN_OPEN or not isinstance(doc.get("chains"), dict):
                    raise _Bad(where, "a chain does not start with its opening entry")
                opened = {str(k): int(v) for k, v in doc["chains"].items()}
            tree.append(head)
            n += 1
            signed = checkpoints.get(n)
            if signed is not None:
                if signed.root != tree.root() or signed.head != head:
                    raise _Bad(where, "a signed checkpoint does not match the entries")
                report.checkpoints += 1
        if len(page) < _PAGE:
            break
    beyond = [s for s in checkpoints if s > n]
    if beyond:
        raise _Bad(f"{chain}/{n}", f"entries up to {max(beyond) - 1} were signed and are gone")
    last = max(checkpoints, default=0)
    report.entries += n
    report.unsigned += n - last
    return n, opened


def chains_of(store: Neo4jStore) -> Iterator[str]:
    """Every chain's id, in order."""
    for chain, _ in _one(store, _CHAINS) or []:
        yield str(chain)
