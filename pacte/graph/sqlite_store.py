"""The embedded default store: one SQLite file, WAL, one transaction per batch.

Every query text is a constant (a listed edge type's is made once from its checked
name); values are always parameters. Point lookups and a node's newest edges are
served by covering indexes, so their cost does not grow with the graph.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar, cast

from pacte.errors import Conflict, CorruptStore, InputError, StorageError
from pacte.graph import sqlite_rows as row
from pacte.graph.read_cache import DEFAULT_ENTRIES, MISSING, Freeze, ReadCache, as_read, frozen
from pacte.graph.store import (
    EVENT_INDEX,
    Cursor,
    Direction,
    Edge,
    IndexEntry,
    Node,
    Reached,
    Value,
    WriteBatch,
    decode_props,
    encode_props,
)

__all__ = ["SQLiteStore"]

SCHEMA_VERSION = "1"
_APPLICATION_ID = 0x70616374  # "pact": marks the file as ours, so a foreign database is refused

# The sources of one edge type into each node, in id order, for the types whose
# sources the caller lists page by page (`listed_sources`, see `edge_sources`): partial,
# so the other edges (interactions, purchases, by far the most) carry no entry. Created
# on opening, for files made before it existed too. A type is a catalogue name, checked
# by _EDGE_TYPE before it is written into the statements (a partial index serves only
# queries that spell its condition out, not a parameter).
_EDGE_TYPE = re.compile(r"[A-Z][A-Z0-9_]*")
_SOURCES_INDEX = (
    "CREATE INDEX IF NOT EXISTS edges_sources_{type} ON edges(dst, src) WHERE type = '{type}'"
)
_LISTED_SOURCES = (
    "SELECT DISTINCT src FROM edges WHERE dst = ? AND type = '{type}' AND src > ?"
    " ORDER BY src LIMIT ?"
)
# What this index was called when only one edge type had it.
_OLD_SOURCES_INDEX = "edges_consent_sources"
_HAS_INDEX = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?"
# One entry per event id (idempotent interactions, also across processes): partial, so
# blind-index tokens (which may collide by design) are not constrained. Created on
# opening too, for files made before it existed.
_UNIQUE_EVENTS = (
    "CREATE UNIQUE INDEX IF NOT EXISTS blind_index_events ON blind_index(token)"
    f" WHERE name = '{EVENT_INDEX}'"
)
# A file written before the unique index may hold a second entry for an event id (two
# processes raced): the index keeps the first node's entry, and the other interaction
# stays, unindexed (a replay answers with the first, as it would have).
_DEDUPE_EVENTS = (
    "DELETE FROM blind_index WHERE name = ?1 AND (token, node_id) NOT IN"
    " (SELECT token, min(node_id) FROM blind_index WHERE name = ?1 GROUP BY token)"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    id    TEXT PRIMARY KEY,
    kind  TEXT NOT NULL,
    owner TEXT,
    props TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nodes_kind ON nodes(kind, id);
CREATE INDEX IF NOT EXISTS nodes_owner ON nodes(owner) WHERE owner IS NOT NULL;
CREATE TABLE IF NOT EXISTS edges (
    id    TEXT PRIMARY KEY,
    type  TEXT NOT NULL,
    src   TEXT NOT NULL,
    dst   TEXT NOT NULL,
    at    INTEGER NOT NULL,
    props TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS edges_out ON edges(src, type, at DESC, id DESC);
CREATE INDEX IF NOT EXISTS edges_in ON edges(dst, type, at DESC, id DESC);
CREATE TABLE IF NOT EXISTS blind_index (
    name    TEXT NOT NULL,
    token   BLOB NOT NULL,
    node_id TEXT NOT NULL,
    PRIMARY KEY (name, token, node_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blind_index_node ON blind_index(node_id);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""

_PUT_NODE = "INSERT OR REPLACE INTO nodes (id, kind, owner, props) VALUES (?, ?, ?, ?)"
_PUT_EDGE = "INSERT OR REPLACE INTO edges (id, type, src, dst, at, props) VALUES (?, ?, ?, ?, ?, ?)"
# Only an identical entry is ignored: a second node for an event id breaks the unique
# index and fails the batch.
_PUT_INDEX = (
    "INSERT INTO blind_index (name, token, node_id) VALUES (?, ?, ?)"
    " ON CONFLICT (name, token, node_id) DO NOTHING"
)
_DELETE_EDGE = "DELETE FROM edges WHERE id = ?"
_DELETE_NODE = "DELETE FROM nodes WHERE id = ?"
_DELETE_NODE_EDGES = "DELETE FROM edges WHERE src = ? OR dst = ?"
_DELETE_NODE_INDEX = "DELETE FROM blind_index WHERE node_id = ?"
_GET_NODES = "SELECT id, kind, owner, props FROM nodes WHERE id IN (SELECT value FROM json_each(?))"
_SCAN_FIRST = "SELECT id, kind, owner, props FROM nodes WHERE kind = ? ORDER BY id LIMIT ?"
_SCAN_AFTER = (
    "SELECT id, kind, owner, props FROM nodes WHERE kind = ? AND id > ? ORDER BY id LIMIT ?"
)
# A type not listed: reads the edges_in range of (dst, type) and sorts its sources,
# without decoding a property. A listed type (_LISTED_SOURCES) has its partial index,
# and a page costs what it returns.
_EDGE_SOURCES = (
    "SELECT DISTINCT src FROM edges WHERE dst = ? AND type = ? AND src > ? ORDER BY src LIMIT ?"
)
_EDGE_COLS = "SELECT id, type, src, dst, at, props FROM edges"
_EDGES_OUT = _EDGE_COLS + " WHERE src = ? AND type = ? ORDER BY at DESC, id DESC LIMIT ?"
_EDGES_IN = _EDGE_COLS + " WHERE dst = ? AND type = ? ORDER BY at DESC, id DESC LIMIT ?"
_EDGES_OUT_BEFORE = (
    _EDGE_COLS + " WHERE src = ? AND type = ? AND (at < ? OR (at = ? AND id < ?))"
    " ORDER BY at DESC, id DESC LIMIT ?"
)
_EDGES_IN_BEFORE = (
    _EDGE_COLS + " WHERE dst = ? AND type = ? AND (at < ? OR (at = ? AND id < ?))"
    " ORDER BY at DESC, id DESC LIMIT ?"
)
_EDGES_MANY_OUT = (
    "SELECT id, type, src, dst, at, props FROM edges"
    " WHERE type = ? AND src IN (SELECT value FROM json_each(?)) ORDER BY at DESC, id DESC"
)
_EDGES_MANY_IN = (
    "SELECT id, type, src, dst, at, props FROM edges"
    " WHERE type = ? AND dst IN (SELECT value FROM json_each(?)) ORDER BY at DESC, id DESC"
)
# `reach`: the edges, the nodes they lead to, and (with a second type, ?3) where the
# newest edge of that type out of each of those leads, in one statement: the same index
# ranges as _EDGES_OUT (_BEFORE), a primary-key probe per node, and per edge an
# edges_out probe when there is a second type (its column is NULL otherwise).
_REACH = (
    "SELECT e.id, e.dst, e.at, e.props, n.kind, n.owner, n.props, {then}"
    " FROM edges e LEFT JOIN nodes n ON n.id = e.dst"
    " WHERE e.src = ?1 AND e.type = ?2 AND e.at >= ?4{before}"
    " ORDER BY e.at DESC, e.id DESC LIMIT ?5"
)
_THEN = (
    "(SELECT t.dst FROM edges t WHERE t.src = e.dst AND t.type = ?3"
    " ORDER BY t.at DESC, t.id DESC LIMIT 1)"
)
_BEFORE = " AND (e.at < ?6 OR (e.at = ?6 AND e.id < ?7))"
# By (before given, second type given).
_REACHES = {(b, t): _REACH.format(before=_BEFORE if b else "", then=_THEN if t else "?3")
            for b in (False, True) for t in (False, True)}
_FIND_EDGES = _EDGE_COLS + " WHERE src = ? AND type = ? AND dst = ? ORDER BY at DESC, id DESC"
_LOOKUP = "SELECT node_id FROM blind_index WHERE name = ? AND token = ? ORDER BY node_id"
# Tokens are blobs and SQLite 3.40 cannot unhex a JSON list, so a batched lookup binds
# a fixed number of tokens per query (padded with an empty token, which no entry has):
# the text stays one constant, prepared once (placeholders only, joined at import).
_LOOKUP_CHUNK = 250
_LOOKUP_MANY = (
    "SELECT token, node_id FROM blind_index WHERE name = ? AND token IN ("  # noqa: S608
    + ", ".join("?" * _LOOKUP_CHUNK) + ") ORDER BY token, node_id"
)
_OWNED_BY = "SELECT id FROM nodes WHERE owner = ? ORDER BY id"
_COUNT_NODES = "SELECT kind, count(*) FROM nodes GROUP BY kind ORDER BY kind"
_COUNT_EDGES = "SELECT type, count(*) FROM edges GROUP BY type ORDER BY type"
_ITER_NODES = "SELECT id, kind, owner, props FROM nodes WHERE id > ? ORDER BY id LIMIT ?"
_ITER_EDGES = _EDGE_COLS + " WHERE id > ? ORDER BY id LIMIT ?"
_ITER_INDEX = (
    "SELECT name, token, node_id FROM blind_index WHERE (name, token, node_id) > (?, ?, ?)"
    " ORDER BY name, token, node_id LIMIT ?"
)
_GET_META = "SELECT value FROM meta WHERE key = ?"
_SET_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"

_NO_LIMIT = -1  # SQLite reads a negative LIMIT as "no limit"
_EARLIEST = -(2**63)  # no edge is older
_DATA_VERSION = "PRAGMA data_version"  # changed by another connection's commit

_first = itemgetter(0)
T = TypeVar("T")
R = TypeVar("R")

def _json_list(ids: Sequence[str]) -> str:
    # One parameter for any number of ids: SQLite expands it with json_each, so the
    # query text stays constant and the statement cache keeps it prepared.
    return json.dumps(list(ids))


class SQLiteStore:
    """A `Store` in one SQLite file. Safe to share between threads of one process.

    `listed_sources`: the edge types whose sources `edge_sources` pages through over
    many edges; each gets an index, so that a page costs what it returns. Which types
    those are is the caller's to say (see `pacte.graph.stores.open_store`).

    `read_cache`: how many rows of the reads a request makes (`get_nodes`, `edges`,
    `edges_many`, `reach`, `lookup`, `scan_nodes`, `edge_sources`) this store keeps and
    serves again while the file is unchanged (`pacte.graph.read_cache`); 0: none, every
    read reads the file. What it serves is read-only (props raise on a change).
    """

    def __init__(self, path: str | Path, *, create: bool = False,
                 listed_sources: Collection[str] = (),
                 read_cache: int = DEFAULT_ENTRIES) -> None:
        self.path = Path(path)
        self.uri = f"sqlite:///{self.path}"
        if not create and not self.path.exists():
            raise StorageError(f"no store at {self.path}")
        for type in listed_sources:
            if not _EDGE_TYPE.fullmatch(type):
                raise InputError(f"not an edge type: {type!r}")
        self._listed = {type: _LISTED_SOURCES.format(type=type) for type in listed_sources}
        if read_cache < 0:
            raise InputError("read_cache is a number of rows, 0 for none")
        self._cache = ReadCache(entries=read_cache) if read_cache else None
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open store at {self.path}: {exc}") from exc
        try:
            self._prepare(create=create)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise CorruptStore(f"{self.path} is damaged or is not a pacte store ({exc})") from exc

    def _prepare(self, *, create: bool) -> None:
        db = self._db
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != _APPLICATION_ID and not (create and tables == 0):
            raise CorruptStore(f"{self.path} is not a pacte store")
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across application crashes in WAL mode; only power loss
        # can roll back the last transactions, never corrupt the file.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=OFF")
        # Deleted rows are overwritten, so an erased customer's ciphertext does not
        # linger in free pages of the file.
        db.execute("PRAGMA secure_delete=ON")
        db.execute("PRAGMA cache_size=-65536")
        # Checkpoints are where WAL mode syncs; a 64 MiB WAL between them makes bulk
        # loads about twice as fast without weakening durability.
        db.execute("PRAGMA wal_autocheckpoint=16384")
        if app_id != _APPLICATION_ID:
            db.executescript("BEGIN;" + _SCHEMA + _UNIQUE_EVENTS + ";"
                             f"PRAGMA application_id={_APPLICATION_ID};COMMIT;")
            db.execute(_SET_META, ("schema_version", SCHEMA_VERSION))
        else:
            version = db.execute(_GET_META, ("schema_version",)).fetchone()
            if version is None or version[0] != SCHEMA_VERSION:
                raise CorruptStore(f"{self.path} has an unknown schema version")
            db.execute("PRAGMA quick_check(1)")
            try:
                db.execute(_UNIQUE_EVENTS)
            except sqlite3.IntegrityError:
                db.execute("BEGIN IMMEDIATE")
                db.execute(_DEDUPE_EVENTS, (EVENT_INDEX,))
                db.execute(_UNIQUE_EVENTS)
                db.execute("COMMIT")
        for type in self._listed:
            db.execute(_SOURCES_INDEX.format(type=type))
        if self._listed and db.execute(_HAS_INDEX, (_OLD_SOURCES_INDEX,)).fetchone():
            # The caller's list says which source indexes there are now.
            db.execute(f"DROP INDEX {_OLD_SOURCES_INDEX}")

    # -- writes ---------------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        if not batch:
            return
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    _delete(db, batch)
                    _put(db, batch)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
                if self._cache is not None:
                    # Now rather than at the next read: what a write deletes (an erasure)
                    # is not kept in memory until then (other processes: at their next).
                    self._cache.clear()
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"write refused: {exc}") from exc
            except sqlite3.OperationalError as exc:
                raise StorageError(f"write failed: {exc}", retryable="locked" in str(exc)) \
                    from exc
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"write failed: {exc}") from exc

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(_SET_META, (key, value))

    # -- reads ----------------------------------------------------------------

    def _all(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                raise StorageError(f"read failed: {exc}", retryable="locked" in str(exc)) \
                    from exc
            except sqlite3.DatabaseError as exc:
                raise CorruptStore(f"{self.path} is damaged ({exc})") from exc

    def _synced(self) -> ReadCache | None:
        """The read cache, emptied if the file changed since its answers were read.

        Called under the lock, by a read that then serves from it or reads the file and
        keeps the answer, all before releasing the lock (the argument is in
        `pacte.graph.read_cache` and docs/sqlite-reads.md)."""
        cache = self._cache
        if cache is not None:
            # Another connection's commit changes data_version; this connection's own
            # changes (any write path) grow total_changes.
            db = self._db
            try:
                version = db.execute(_DATA_VERSION).fetchone()[0]
            except sqlite3.OperationalError as exc:
                raise StorageError(f"read failed: {exc}", retryable="locked" in str(exc)) \
                    from exc
            except sqlite3.DatabaseError as exc:
                raise CorruptStore(f"{self.path} is damaged ({exc})") from exc
            cache.sync((version, db.total_changes))
        return cache

    def _read(self, key: Hashable, rows: Callable[[], Iterable[R]],
              build: Callable[[R, Freeze], T]) -> list[T]:
        """`build` of each of the `rows`: kept (raw) under `key`, or read (and kept)."""
        with self._lock:
            cache = self._synced()
            if cache is None:
                return [build(r, as_read) for r in rows()]
            kept = cache.get(key)
            if kept is MISSING:
                kept = tuple(rows())
                cache.put(key, kept, rows=len(kept))
            return [build(r, frozen) for r in cast("tuple[R, ...]", kept)]  # rows() for key

    def _read_each(self, tag: str, ids: Sequence[str],
                   read: Callable[[Sequence[str]], dict[str, R]],
                   build: Callable[[R, Freeze], T], weigh: Callable[[R], int]) -> dict[str, T]:
        """`_read` per id, the ids not kept read at once; an id `read` does not answer
        is kept as absent too (asking again for an absent node costs what asking for a
        present one does, as a hidden customer and an absent one must, G3)."""
        with self._lock:
            cache = self._synced()
            if cache is None:
                return {i: build(r, as_read) for i, r in read(ids).items()}
            raws: dict[str, R | None] = {}
            for i in ids:
                kept = cache.get((tag, i))
                if kept is not MISSING:
                    raws[i] = cast("R | None", kept)  # kept by the loop below
            if missing := [i for i in dict.fromkeys(ids) if i not in raws]:
                found = read(missing)
                for i in missing:
                    raw = raws[i] = found.get(i)
                    cache.put((tag, i), raw, rows=1 if raw is None else weigh(raw))
            return {i: build(r, frozen) for i, r in raws.items() if r is not None}

    def get_nodes(self, ids: Sequence[str]) -> dict[str, Node]:
        if not ids:
            return {}
        return self._read_each("n", ids, lambda ids: {
            r[0]: row.raw_node(r) for r in self._all(_GET_NODES, (_json_list(ids),))},
            row.built_node, row.one)

    def scan_nodes(self, kind: str, *, after: str | None = None, limit: int = 100) -> list[Node]:
        sql, params = (_SCAN_FIRST, (kind, limit)) if after is None else \
            (_SCAN_AFTER, (kind, after, limit))
        return self._read(("s", kind, after, limit), lambda: (
            row.raw_node(r) for r in self._all(sql, params)), row.built_node)

    def edges(self, node_id: str, type: str, *, direction: Direction = "out",
              limit: int | None = None, before: Cursor | None = None) -> list[Edge]:
        lim = _NO_LIMIT if limit is None else limit
        if before is None:
            sql = _EDGES_OUT if direction == "out" else _EDGES_IN
            params: tuple[object, ...] = (node_id, type, lim)
        else:
            sql = _EDGES_OUT_BEFORE if direction == "out" else _EDGES_IN_BEFORE
            params = (node_id, type, before.at, before.at, before.id, lim)
        return self._read(("e", node_id, type, direction, limit, before), lambda: (
            row.raw_edge(r) for r in self._all(sql, params)), row.built_edge)

    def edges_many(
        self, node_ids: Sequence[str], type: str, *, direction: Direction = "out"
    ) -> dict[str, list[Edge]]:
        if not node_ids:
            return {}
        found = self._read_each(f"e{direction} {type}", node_ids, lambda ids: self._edges_many(
            ids, type, direction), row.built_edges, len)
        return {i: found.get(i, []) for i in node_ids}

    def _edges_many(self, node_ids: Sequence[str], type: str,
                    direction: Direction) -> dict[str, tuple[row.RawEdge, ...]]:
        out: dict[str, list[row.RawEdge]] = {i: [] for i in node_ids}
        sql = _EDGES_MANY_OUT if direction == "out" else _EDGES_MANY_IN
        end = 2 if direction == "out" else 3  # the src or dst column
        for r in self._all(sql, (type, _json_list(node_ids))):
            out[r[end]].append(row.raw_edge(r))
        return {i: tuple(es) for i, es in out.items()}

    def reach(self, node_id: str, type: str, *, limit: int | None = None,
              before: Cursor | None = None, since: int | None = None,
              then: str | None = None) -> list[Reached]:
        if self._cache is None:
            return row.reached(node_id, type, self._reach(
                node_id, type, limit, before, since, then), as_read)
        # Kept without the horizon, which moves with every request (now minus the
        # purpose's retention), and cut to it here. The same answer: rows come newest
        # first, so those at `since` or later are a prefix of the rows without a
        # horizon, and the first `limit` of that prefix are the first `limit` rows cut
        # to it (tests/graph/test_read_cache.py compares them).
        kept = self._read(("r", node_id, type, limit, before, then), lambda: self._reach(
            node_id, type, limit, before, None, then), row.as_is)
        return row.reached(node_id, type, kept if since is None else [
            r for r in kept if r[2] >= since], frozen)

    def _reach(self, node_id: str, type: str, limit: int | None, before: Cursor | None,
               since: int | None, then: str | None) -> list[row.RawReached]:
        params: tuple[object, ...] = (
            node_id, type, then, _EARLIEST if since is None else since,
            _NO_LIMIT if limit is None else limit)
        sql = _REACHES[before is not None, then is not None]
        rows = self._all(sql, params if before is None else (*params, before.at, before.id))
        # Each props text decoded once, however many edges lead to its node.
        decoded: dict[str, dict[str, Value]] = {}
        out: list[row.RawReached] = []
        for eid, dst, at, edge_props, kind, owner, node_props, further in rows:
            node = decoded.get(dst)
            if node is None and kind is not None:
                node = decoded[dst] = decode_props(node_props)
            out.append((eid, dst, at, {} if edge_props == "{}" else decode_props(edge_props),
                        kind, owner, node, further))
        return out

    def find_edges(self, type: str, src: str, dst: str) -> list[Edge]:
        return [row.edge_of(r) for r in self._all(_FIND_EDGES, (src, type, dst))]

    def edge_sources(self, dst: str, type: str, *, after: str | None = None,
                     limit: int = 100) -> list[str]:
        listed = self._listed.get(type)
        sql, params = (listed, (dst, after or "", limit)) if listed is not None else \
            (_EDGE_SOURCES, (dst, type, after or "", limit))
        return self._read(("src", dst, type, after, limit), lambda: (
            str(r[0]) for r in self._all(sql, params)), row.as_is)

    def lookup(self, name: str, token: bytes) -> list[str]:
        return self._read(("l", name, bytes(token)), lambda: (
            str(r[0]) for r in self._all(_LOOKUP, (name, token))), row.as_is)

    def lookup_many(self, name: str, tokens: Sequence[bytes]) -> dict[bytes, list[str]]:
        unique = list(dict.fromkeys(bytes(t) for t in tokens if t))
        out: dict[bytes, list[str]] = {}
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start:start + _LOOKUP_CHUNK]
            chunk += [b""] * (_LOOKUP_CHUNK - len(chunk))
            for token, node_id in self._all(_LOOKUP_MANY, (name, *chunk)):
                if token:  # not the padding, whatever the index holds
                    out.setdefault(bytes(token), []).append(str(node_id))
        return out

    def owned_by(self, owner: str) -> list[str]:
        return [str(r[0]) for r in self._all(_OWNED_BY, (owner,))]

    def count_nodes(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._all(_COUNT_NODES, ())}

    def count_edges(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._all(_COUNT_EDGES, ())}

    def iter_nodes(self, *, batch: int = 1000) -> Iterator[list[Node]]:
        last = ""
        while rows := self._all(_ITER_NODES, (last, batch)):
            yield [row.node_of(r) for r in rows]
            last = str(rows[-1][0])

    def iter_edges(self, *, batch: int = 1000) -> Iterator[list[Edge]]:
        last = ""
        while rows := self._all(_ITER_EDGES, (last, batch)):
            yield [row.edge_of(r) for r in rows]
            last = str(rows[-1][0])

    def iter_index(self, *, batch: int = 1000) -> Iterator[list[IndexEntry]]:
        last: Any = ("", b"", "")
        while rows := self._all(_ITER_INDEX, (*last, batch)):
            yield [IndexEntry(str(r[0]), bytes(r[1]), str(r[2])) for r in rows]
            last = rows[-1]

    def get_meta(self, key: str) -> str | None:
        rows = self._all(_GET_META, (key,))
        return str(rows[0][0]) if rows else None

    def checkpoint(self) -> None:
        """Fold the WAL into the main file and truncate it (before a backup)."""
        with self._lock:
            self._truncate_log()

    def scrub(self) -> None:
        """Leave no byte of deleted rows in any file: rewrite the database, truncate the WAL.

        The erasure calls it after the write that deleted the customer's nodes (see
        `pacte.runtime._Backend.shredding`), apart from that write, so that a failure here
        (a retryable StorageError: other connections kept reading) cannot be taken for
        a failed deletion; the erasure then stays pending and this is retried.
        """
        with self._lock:
            self._scrub()

    def _scrub(self) -> None:
        # secure_delete zeroes a deleted row's cell and every freed page, but not the
        # stale copies of live rows that B-tree rebalancing leaves behind: when a page
        # is split or its cells are redistributed among siblings, SQLite rebuilds the
        # page without clearing the unused space between its cell pointers and its
        # cells, so a row that moved to another page long ago can still sit there, in
        # full. Deleting the row later zeroes only its live cell. Whether an erased
        # customer has such a copy depends on where their ids fall among the others'
        # (one erasure in about fifteen in the tests did). VACUUM rebuilds the database
        # from the live rows only, so no copy of a deleted one is left in any page; it
        # holds the write lock for a time that grows with the file (about a second per
        # 70 MB).
        try:
            self._db.execute("VACUUM")
        except sqlite3.OperationalError as exc:
            raise StorageError(f"deleted, but the database could not be rewritten ({exc}); "
                               "call scrub() again", retryable=True) from exc
        self._truncate_log()

    def _truncate_log(self) -> None:
        # The rewritten pages are in the WAL, and the main file keeps the old ones (and
        # the log older frames) until a checkpoint has copied the new ones over them and
        # the log is truncated. The checkpoint waits (busy timeout) for readers of other
        # connections to finish; a checkpoint that still cannot finish reports it in its
        # result row rather than raising, hence the check.
        busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            raise StorageError("deleted, but the write-ahead log could not be truncated "
                               "while other connections read; call scrub() again",
                               retryable=True)

    # Reads are local calls here: there is no round trip for a read scope to save.
    def close(self) -> None:
        # Closing twice, or after a crash, is not an error.
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()


def _delete(db: sqlite3.Connection, batch: WriteBatch) -> None:
    """A batch's deletions, first: a batch may delete a node and write it anew."""
    for node_id in batch.delete_nodes:
        db.execute(_DELETE_NODE_EDGES, (node_id, node_id))
        db.execute(_DELETE_NODE_INDEX, (node_id,))
        db.execute(_DELETE_NODE, (node_id,))
    if batch.delete_edges:
        db.executemany(_DELETE_EDGE, ((e,) for e in batch.delete_edges))
    if batch.unindex:
        db.executemany(_DELETE_NODE_INDEX, ((n,) for n in batch.unindex))


def _put(db: sqlite3.Connection, batch: WriteBatch) -> None:
    # Rows sorted by key touch each B-tree page once per batch; the sort is stable, so
    # of two puts of one id the later still wins.
    if batch.nodes:
        db.executemany(_PUT_NODE, sorted(
            ((n.id, n.kind, n.owner, encode_props(n.props)) for n in batch.nodes), key=_first))
    if batch.edges:
        db.executemany(_PUT_EDGE, sorted(
            ((e.id, e.type, e.src, e.dst, e.at, encode_props(e.props)) for e in batch.edges),
            key=_first))
    if batch.index:
        db.executemany(_PUT_INDEX, sorted((i.name, i.token, i.node_id) for i in batch.index))
