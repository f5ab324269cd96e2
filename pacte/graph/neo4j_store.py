"""The Neo4j store: the official driver, managed transactions, constant Cypher.

Layout in the graph (every query text is a constant; values are always parameters):

    (:PacteNode {id, kind, owner, props})           unique id; index (kind, id); index owner
    (:PacteNode)-[:PACTE_EDGE {id, type, at, props}]->(:PacteNode)     unique id
    (:PacteIndex {key, name, token, node_id, unique_key})
                                                    unique key; index (name, token); node_id;
                                                    unique unique_key (event ids only)
    (:PacteMeta {key, value})                       unique key

(The statements that make those constraints and indexes: pacte.graph.neo4j_schema.)

Node kinds and edge types are properties, not labels or relationship types: Cypher
cannot take a label or type as a parameter (5.26's dynamic labels do not use indexes),
so splicing them into query text would be the only alternative, and a whitelist would
tie the store to today's model. One label and one relationship type keep every query
text constant and the store model-agnostic, at the cost of a per-node filter on `type`
when expanding edges (the traversal starts at an indexed node, so its cost follows the
node's degree, never the size of the graph).

`props` is one string (`encode_props`, the same JSON as the SQLite store): Neo4j cannot
store None or mixed lists as properties, and structural names (`id`, `kind`) would
collide with user property names. Personal values are ciphertext anyway, so nothing is
lost by not querying them server-side. Blind-index tokens are stored as hex, which is
exact and indexable on any Neo4j 5.

Every lookup by id names its index (`USING INDEX SEEK`): a plan cached while the graph
was empty, or while the index statistics lagged behind a bulk load, could otherwise
scan a whole index per row (a 1000-customer batch then ran for minutes).

A read costs one round trip (see `_query`), and returns its rows as one list in one
record: each record is a Bolt message, and handling messages is most of the driver's
time. Read scopes (pacte.graph.neo4j_scope) save the round trips themselves; batch
writes are in pacte.graph.neo4j_write.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, LiteralString, TypeVar
from urllib.parse import unquote, urlsplit

import neo4j
from neo4j.exceptions import DriverError, Neo4jError

from pacte.errors import ConfigError, CorruptStore
from pacte.graph import neo4j_reads as _reads
from pacte.graph.neo4j_errors import mapped as _mapped
from pacte.graph.neo4j_schema import SCHEMA_VERSION, create_schema
from pacte.graph.neo4j_scope import AROUND as _AROUND
from pacte.graph.neo4j_scope import LOOKUP_AROUND as _LOOKUP_AROUND
from pacte.graph.neo4j_scope import PAGE_AROUND as _PAGE_AROUND
from pacte.graph.neo4j_scope import PAGE_AROUND_FIRST as _PAGE_AROUND_FIRST
from pacte.graph.neo4j_scope import Scope as _Scope
from pacte.graph.neo4j_scope import edge_row as _edge
from pacte.graph.neo4j_scope import node_row as _node
from pacte.graph.neo4j_write import commit, plan, set_meta, unique
from pacte.graph.store import (
    NEO4J_SCHEMES,
    Cursor,
    Direction,
    Edge,
    Hop,
    IndexEntry,
    Node,
    WriteBatch,
)

__all__ = ["SCHEMA_VERSION", "Hop", "Neo4jStore"]

_T = TypeVar("_T")

# Larger than any real page; LIMIT cannot be null, and one query text per shape is enough.
_NO_LIMIT = 2**62





def _single_value(result: neo4j.Result) -> Any:
    return result.single(strict=True)[0]


def _all_values(result: neo4j.Result) -> list[list[Any]]:
    return result.values()


def _first_record(result: neo4j.Result) -> list[Any] | None:
    record = result.single(strict=False)
    return None if record is None else list(record.values())


# -- the store ----------------------------------------------------------------------------


class Neo4jStore:
    """A `Store` on a Neo4j 5 server or cluster. Thread-safe (one driver; sessions never shared).

    `uri` may be ``neo4j://`` (routing: reads and writes go to the right cluster members)
    or ``bolt://`` (one server). Writes use managed transactions, so the driver retries
    transient failures and leader switches for up to `max_retry_time` seconds; a read that
    fails that way is retried the same way (see `_query`). Every transaction shares one
    bookmark manager, so a read sees every write that returned before it, on a cluster too.
    """

    def __init__(
        self,
        uri: str,
        *,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        max_retry_time: float = 30.0,
        connection_timeout: float = 30.0,
    ) -> None:
        if not uri.startswith(NEO4J_SCHEMES):
            # The driver also speaks HTTP (a preview); pacte needs Bolt's transactions.
            raise ConfigError("a Neo4j store URI starts with neo4j:// or bolt:// "
                              "(or their +s / +ssc variants)")
        if "@" in urlsplit(uri).netloc:
            raise ConfigError("pass credentials as user= and password=, or use "
                              "Neo4jStore.from_uri()")
        self._database = database
        # Queries and transactions sent to the server, for /metrics (pacte.metrics). A
        # plain `+=` from many threads may lose a count now and then: a gauge of load,
        # never used to decide anything.
        self.round_trips = 0
        # What callers see (and migration hashes): never a password, the database in the path.
        parts = urlsplit(uri)
        self.uri = parts._replace(path=f"/{database}" if database else "").geturl()
        auth = neo4j.basic_auth(user, password or "") if user is not None else None
        try:
            self._driver = neo4j.GraphDatabase.driver(
                uri, auth=auth,
                max_transaction_retry_time=max_retry_time,
                connection_timeout=connection_timeout,
                # Notifications (unknown labels on an empty graph, plan hints) are for
                # people at a Cypher prompt; a library would only spam logs with them.
                notifications_min_severity="OFF",
                # The driver tells the server which of its APIs each transaction uses: one
                # more message per query, for the server's statistics only.
                telemetry_disabled=True,
            )
        except (ValueError, DriverError) as exc:
            raise ConfigError(f"unusable Neo4j URI ({type(exc).__name__})") from exc
        # Shared by every transaction (a cluster may serve reads from another member).
        self._bookmarks = neo4j.GraphDatabase.bookmark_manager()
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        # Idle read sessions (see `_query`); as many as reads ever ran at once.
        self._readers: list[neo4j.Session] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        # The read scope of the current thread or task (see `read_scope`).
        self._scope: ContextVar[_Scope | None] = ContextVar(f"neo4j-read-scope-{id(self)}",
                                                            default=None)

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> Neo4jStore:
        """``neo4j://user:password@host:7687/database`` (credentials and database optional)."""
        parts = urlsplit(uri)
        if not parts.scheme or not parts.hostname:
            raise ConfigError("a Neo4j URI needs a scheme and a host, e.g. neo4j://host:7687")
        user = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        database = unquote(parts.path.strip("/")) or None
        if database is not None and "/" in database:
            raise ConfigError("a Neo4j URI names at most one database")
        host = parts.netloc.rpartition("@")[2]
        server = f"{parts.scheme}://{host}" + (f"?{parts.query}" if parts.query else "")
        return cls(server, user=user, password=password, database=database, **options)

    # -- plumbing -----------------------------------------------------------------------

    def _session(self) -> neo4j.Session:
        return self._driver.session(database=self._database, bookmark_manager=self._bookmarks)

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            with _mapped("schema setup"), self._session() as session:
                version = create_schema(session)
            if version != SCHEMA_VERSION:
                raise CorruptStore("the Neo4j database holds an unknown pacte schema version")
            self._schema_ready = True

    def _query(self, operation: str, query: LiteralString, params: dict[str, Any],
               transform: Callable[[neo4j.Result], _T]) -> _T:
        """One read, in one round trip when all goes well.

        A read is one query, so it runs as an auto-commit transaction on a pooled read
        session: one round trip, where a managed transaction takes two or three (BEGIN,
        the query, COMMIT) and a new session per call costs as much again in the driver.
        If it fails with an error the driver deems retryable (a lost connection, a leader
        switch, a transient error), the read goes through `driver.execute_query`: a
        managed transaction that the driver retries for up to `max_retry_time`, as it
        does the writes. Reads are idempotent, so running one twice is harmless.
        """
        self._ensure_schema()
        self.round_trips += 1
        with _mapped(operation):
            session = self._reader()
            try:
                value = transform(session.run(query, params))
            except (Neo4jError, DriverError) as exc:
                session.close()
                if not exc.is_retryable():
                    raise
                return self._driver.execute_query(
                    query, params, routing_=neo4j.RoutingControl.READ,
                    database_=self._database, bookmark_manager_=self._bookmarks,
                    result_transformer_=transform)
            except BaseException:
                session.close()
                raise
            self._release(session)
            return value

    def _reader(self) -> neo4j.Session:
        with self._readers_lock:
            if self._readers:
                return self._readers.pop()
        return self._driver.session(database=self._database, bookmark_manager=self._bookmarks,
                                    default_access_mode=neo4j.READ_ACCESS)

    def _release(self, session: neo4j.Session) -> None:
        # An idle session holds no connection: the pool only spares creating sessions.
        with self._readers_lock:
            if not self._closed:
                self._readers.append(session)
                return
        session.close()

    def _read(self, operation: str, query: LiteralString, **params: Any) -> Any:
        """The value of a query that returns one record of one column (a list, mostly)."""
        return self._query(operation, query, params, _single_value)

    def _read_rows(self, operation: str, query: LiteralString, **params: Any
                   ) -> list[list[Any]]:
        return self._query(operation, query, params, _all_values)

    # -- read scopes ----------------------------------------------------------------------

    @contextlib.contextmanager
    def read_scope(self, *, around: str | None = None, hops: Sequence[Hop] = ()
                   ) -> Iterator[None]:
        """A block whose reads are answered, where they can be, from what it read first.

        With `around`, the scope starts by reading that node and its `hops` in one round
        trip (see `prefetch`). Inside the block (in this thread, or in tasks created
        inside it), `get_nodes`, `edges` and `edges_many` answer from what the scope read
        whenever that covers the call: a node it read (or found absent), a complete edge
        list, or the newest edges up to a hop's limit. Anything else goes to the server
        as usual. A write through this store empties the scope, so the block reads its
        own writes. A nested scope is the outer one.

        What a scope answers is what the server held when the scope read it, as if those
        calls had been made then: one request (one purpose-bound session) is the intended
        span. Open it where the request starts, so that every resolver's task sees it.
        """
        outer = self._scope.get()
        token = self._scope.set(_Scope()) if outer is None else None
        try:
            if around is not None:
                self.prefetch(around, hops)
            yield
        finally:
            if token is not None:
                self._scope.reset(token)

    def prefetch(self, around: str, hops: Sequence[Hop]) -> bool:
        """Read a node and its hops into the current read scope, in one round trip.

        For a customer-360 view: ``Hop("HAD", limit=21, nodes=True, then=("ABOUT",),
        then_nodes=True)``,
        ``Hop("BOUGHT", nodes=True)`` and ``Hop("CONSENTED")``. Returns False, reading
        nothing, outside a read scope.
        """
        params = _reads.hop_params(hops)
        scope = self._scope.get()
        if scope is None:
            return False
        scope.add(around, hops, self._query("prefetch", _AROUND,
                                            {"id": around, "hops": params}, _first_record))
        return True

    def prefetch_lookup(self, name: str, token: bytes, hops: Sequence[Hop], *, kind: str,
                        decoy_after: str) -> bool:
        """Read the nodes the index entry (`name`, `token`) points at, each with its
        `hops`, into the current read scope, in one round trip: `lookup` of that entry
        and the reads around what it finds are then answered from the scope.

        When the entry points at nothing, the first node of `kind` after `decoy_after`
        (or the first) is read in their place: the node a miss reads as its decoy (see
        `Session._decoy_read`), so that a miss costs what a hidden match costs. Returns
        False, reading nothing, outside a read scope.
        """
        params = _reads.hop_params(hops)
        scope = self._scope.get()
        if scope is None:
            return False
        hexed = bytes(token).hex()
        scope.add_lookup(name, hexed, hops, self._query(
            "prefetch", _LOOKUP_AROUND,
            {"name": name, "token": hexed, "kind": kind, "after": decoy_after,
             "hops": params}, _first_record))
        return True

    def prefetch_page(self, kind: str, *, after: str | None, limit: int,
                      hops: Sequence[Hop]) -> bool:
        """Read the page `scan_nodes(kind, after=after, limit=limit)` reads, each node with
        its `hops`, into the current read scope in one round trip: that scan and the
        reads around its nodes are then answered from the scope. Returns False, reading
        nothing, outside a read scope."""
        params = _reads.hop_params(hops)
        scope = self._scope.get()
        if scope is None:
            return False
        query, extra = (_PAGE_AROUND_FIRST, {}) if after is None else (
            _PAGE_AROUND, {"after": after})
        value = self._query("prefetch", query, {"kind": kind, "limit": limit,
                                                "hops": params, **extra}, _first_record)
        scope.add_page(kind, after, limit, hops, value or ([], None))
        return True

    def prefetched_keys(self, customer_ids: Sequence[str]) -> tuple[int, list[Any]] | None:
        """The wrapped data keys of `customer_ids` that a prefetch of the current read
        scope read with them (pacte.crypto.neo4j_vault's rows), with the smallest of the
        vault's destruction counters read before them; None unless it read at least one
        key of every one of them (a customer without keys is asked of the server).

        A destruction deletes the keys and moves the counter in one transaction, and
        the counter is read first: keys read with a counter at or after one a process
        has seen cannot be keys destroyed by then. The caller (the vault) compares.
        """
        scope = self._scope.get()
        if scope is None or not customer_ids:
            return None
        seqs: list[int] = []
        rows: list[Any] = []
        for cid in customer_ids:
            known = scope.keys.get(cid)
            if known is None:
                return None
            seqs.append(known[0])
            rows += known[1]
        return min(seqs), rows

    def _forget_scope(self) -> None:
        scope = self._scope.get()
        if scope is not None:
            scope.clear()

    # -- writes ---------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        if not batch:
            return
        planned = plan(batch)
        self._ensure_schema()
        self._forget_scope()
        self.round_trips += 1
        with _mapped("write"), self._session() as session:
            commit(session, planned)

    def set_meta(self, key: str, value: str) -> None:
        self._ensure_schema()
        self._forget_scope()
        self.round_trips += 1
        with _mapped("set_meta"), self._session() as session:
            session.execute_write(set_meta, key, value)

    # -- beside the graph: the key vault and the audit trail --------------------------------

    def run_write(self, operation: str, work: Callable[[neo4j.ManagedTransaction], _T]) -> _T:
        """`work` in one managed write transaction on this store's database, retried by
        the driver on transient failures (so `work` must be safe to run again), with the
        store's bookmarks: what pacte keeps beside the graph (pacte.crypto.neo4j_vault)."""
        self._ensure_schema()
        self.round_trips += 1
        with _mapped(operation), self._session() as session:
            return session.execute_write(work)

    @contextlib.contextmanager
    def write_transaction(self, operation: str, *, timeout: float | None = None
                          ) -> Iterator[neo4j.Transaction]:
        """One explicit write transaction, committed when the block ends without an
        exception (unless the block closed it), else rolled back: for a lock held across
        several steps (the shared audit trail's `exclusive()`, an erasure). Not retried:
        the block is not run again. `timeout`: seconds, lock waits included."""
        self._ensure_schema()
        self.round_trips += 1
        with _mapped(operation), self._session() as session, \
                session.begin_transaction(timeout=timeout) as tx:
            yield tx
            if not tx.closed():
                tx.commit()

    def run_read(self, operation: str, query: LiteralString, **params: Any) -> list[list[Any]]:
        """The rows of one read query, in one round trip (see `_query`)."""
        rows: list[list[Any]] = self._query(operation, query, params, _all_values)
        return rows

    # -- reads ----------------------------------------------------------------------------

    def get_nodes(self, ids: Sequence[str]) -> dict[str, Node]:
        if not ids:
            return {}
        wanted = unique(ids)
        found: dict[str, Node] = {}
        scope = self._scope.get()
        if scope is not None:
            found, wanted = scope.get_nodes(wanted)
            if not wanted:
                return found
        for row in self._read("get_nodes", _reads.GET_NODES, ids=wanted):
            found[row[0]] = _node(row)
        return found

    def scan_nodes(self, kind: str, *, after: str | None = None, limit: int = 100) -> list[Node]:
        scope = self._scope.get()
        if scope is not None and (page := scope.pages.get((kind, after, limit))) is not None:
            return [scope.nodes[i] for i in page]
        if after is None:
            rows = self._read("scan_nodes", _reads.SCAN_FIRST, kind=kind, limit=limit)
        else:
            rows = self._read("scan_nodes", _reads.SCAN_AFTER, kind=kind, after=after,
                              limit=limit)
        return [_node(r) for r in rows]

    def edges(
        self,
        node_id: str,
        type: str,
        *,
        direction: Direction = "out",
        limit: int | None = None,
        before: Cursor | None = None,
    ) -> list[Edge]:
        scope = self._scope.get()
        if scope is not None:
            known = scope.edges(node_id, type, direction, limit, before)
            if known is not None:
                return known
        lim = _NO_LIMIT if limit is None else limit
        if before is None:
            query = _reads.EDGES_OUT if direction == "out" else _reads.EDGES_IN
            rows = self._read("edges", query, node_id=node_id, type=type, limit=lim)
        else:
            query = _reads.EDGES_OUT_BEFORE if direction == "out" else _reads.EDGES_IN_BEFORE
            rows = self._read("edges", query, node_id=node_id, type=type, limit=lim,
                              at=before.at, id=before.id)
        return [_edge(r) for r in rows]

    def edges_many(
        self, node_ids: Sequence[str], type: str, *, direction: Direction = "out"
    ) -> dict[str, list[Edge]]:
        if not node_ids:
            return {}
        scope = self._scope.get()
        if scope is not None:
            known = {i: scope.edges(i, type, direction, None, None) for i in node_ids}
            if all(edges is not None for edges in known.values()):
                return {i: edges or [] for i, edges in known.items()}
        out: dict[str, list[Edge]] = {i: [] for i in node_ids}
        query = _reads.EDGES_MANY_OUT if direction == "out" else _reads.EDGES_MANY_IN
        for r in self._read("edges_many", query, ids=unique(node_ids), type=type):
            e = _edge(r)
            out[e.src if direction == "out" else e.dst].append(e)
        return out

    def find_edges(self, type: str, src: str, dst: str) -> list[Edge]:
        rows = self._read("find_edges", _reads.FIND_EDGES, type=type, src=src, dst=dst)
        return [_edge(r) for r in rows]

    def edge_sources(self, dst: str, type: str, *, after: str | None = None,
                     limit: int = 100) -> list[str]:
        rows = self._read("edge_sources", _reads.EDGE_SOURCES, dst=dst, type=type,
                          after=after or "", limit=limit)
        return [str(r) for r in rows]

    def lookup(self, name: str, token: bytes) -> list[str]:
        scope = self._scope.get()
        if scope is not None:
            known = scope.lookups.get((name, bytes(token).hex()))
            if known is not None:
                return list(known)
        rows = self._read("lookup", _reads.LOOKUP, name=name, token=bytes(token).hex())
        return [str(r) for r in rows]

    def lookup_many(self, name: str, tokens: Sequence[bytes]) -> dict[bytes, list[str]]:
        unique = list(dict.fromkeys(bytes(t).hex() for t in tokens if t))
        if not unique:
            return {}
        rows = self._read_rows("lookup_many", _reads.LOOKUP_MANY, name=name, tokens=unique)
        return {bytes.fromhex(t): [str(i) for i in ids] for t, ids in rows}

    def lookup_groups(self, groups: Mapping[str, Sequence[bytes]]
                      ) -> dict[str, dict[bytes, list[str]]]:
        pairs = list(dict.fromkeys((name, bytes(t).hex())
                                   for name, tokens in groups.items() for t in tokens if t))
        out: dict[str, dict[bytes, list[str]]] = {name: {} for name in groups}
        if pairs:
            rows = self._read("lookup_groups", _reads.LOOKUP_GROUPS,
                              pairs=[list(p) for p in pairs])
            for name, token, ids in rows:
                out[name][bytes.fromhex(token)] = [str(i) for i in ids]
        return out

    def ids_of_kind(self, ids: Sequence[str], kind: str) -> list[str]:
        if not ids:
            return []
        return [str(i) for i in self._read("ids_of_kind", _reads.IDS_OF_KIND,
                                           ids=unique(ids), kind=kind)]

    def owned_by(self, owner: str) -> list[str]:
        return [str(r) for r in self._read("owned_by", _reads.OWNED_BY, owner=owner)]

    def count_nodes(self) -> dict[str, int]:
        rows = self._read_rows("count_nodes", _reads.COUNT_NODES)
        return {str(k): int(v) for k, v in sorted(rows)}

    def count_edges(self) -> dict[str, int]:
        rows = self._read_rows("count_edges", _reads.COUNT_EDGES)
        return {str(k): int(v) for k, v in sorted(rows)}

    def iter_nodes(self, *, batch: int = 1000) -> Iterator[list[Node]]:
        last = ""
        while rows := self._read("iter_nodes", _reads.ITER_NODES, after=last, limit=batch):
            yield [_node(r) for r in rows]
            last = str(rows[-1][0])

    def iter_edges(self, *, batch: int = 1000) -> Iterator[list[Edge]]:
        last = ""
        while rows := self._read("iter_edges", _reads.ITER_EDGES, after=last, limit=batch):
            yield [_edge(r) for r in rows]
            last = str(rows[-1][0])

    def iter_index(self, *, batch: int = 1000) -> Iterator[list[IndexEntry]]:
        last = ""
        while rows := self._read("iter_index", _reads.ITER_INDEX, after=last, limit=batch):
            yield [IndexEntry(str(r[1]), bytes.fromhex(r[2]), str(r[3])) for r in rows]
            last = str(rows[-1][0])

    def get_meta(self, key: str) -> str | None:
        values = self._read("get_meta", _reads.GET_META, key=key)
        return str(values[0]) if values else None

    def ping(self) -> None:
        """Reach the server once (within the connection timeout); StorageError if not."""
        with _mapped("connection"):
            self._driver.verify_connectivity()

    def close(self) -> None:
        with self._readers_lock:
            self._closed = True
            readers, self._readers = self._readers, []
        with contextlib.suppress(DriverError, OSError):  # closing twice, or a dead server
            for session in readers:
                session.close()
            self._driver.close()
