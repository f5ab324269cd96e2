"""The Neo4j store: the official driver, managed transactions, constant Cypher.

Layout in the graph (every query text is a constant; values are always parameters):

    (:PacteNode {id, kind, owner, props})           unique id; index (kind, id); index owner
    (:PacteNode)-[:PACTE_EDGE {id, type, at, props}]->(:PacteNode)     unique id
    (:PacteIndex {key, name, token, node_id, unique_key})
                                                    unique key; index (name, token); node_id;
                                                    unique unique_key (event ids only)
    (:PacteMeta {key, value})                       unique key

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

A read costs one round trip (see `_query`), and one returns its rows as one list in one
record: each record is a Bolt message, and handling messages is most of the driver's
time. What is left per read is the round trip itself, about a millisecond on one
machine. So `read_scope(around=..., hops=...)` reads a node and its neighbourhood (a
customer's newest interactions with their products, purchases, consents) in one round
trip and answers the matching store calls of the block from it: the customer-360 read
is 7 calls, 7 round trips without it.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, LiteralString, TypeVar
from urllib.parse import unquote, urlsplit

import neo4j
from neo4j.exceptions import (
    AuthError,
    ClientError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from pacte.errors import ConfigError, Conflict, CorruptStore, StorageError
from pacte.graph.store import (
    EVENT_INDEX,
    NEO4J_SCHEMES,
    Cursor,
    Direction,
    Edge,
    Hop,
    IndexEntry,
    Node,
    Value,
    WriteBatch,
    decode_props,
    encode_props,
)

__all__ = ["SCHEMA_VERSION", "Hop", "Neo4jStore"]

SCHEMA_VERSION = "1"
_T = TypeVar("_T")

# Larger than any real page; LIMIT cannot be null, and one query text per shape is enough.
_NO_LIMIT = 2**62
# The same for a list slice, which Cypher takes as a 32-bit integer.
_NO_SLICE = 2**31 - 1

_SCHEMA: tuple[LiteralString, ...] = (
    "CREATE CONSTRAINT pacte_node_id IF NOT EXISTS "
    "FOR (n:PacteNode) REQUIRE n.id IS UNIQUE",
    "CREATE INDEX pacte_node_kind IF NOT EXISTS FOR (n:PacteNode) ON (n.kind, n.id)",
    "CREATE INDEX pacte_node_owner IF NOT EXISTS FOR (n:PacteNode) ON (n.owner)",
    "CREATE CONSTRAINT pacte_edge_id IF NOT EXISTS "
    "FOR ()-[r:PACTE_EDGE]-() REQUIRE r.id IS UNIQUE",
    "CREATE CONSTRAINT pacte_index_key IF NOT EXISTS "
    "FOR (i:PacteIndex) REQUIRE i.key IS UNIQUE",
    "CREATE INDEX pacte_index_token IF NOT EXISTS FOR (i:PacteIndex) ON (i.name, i.token)",
    # Set on event-id entries only (Neo4j has no partial constraints; a node without the
    # property is not constrained): one interaction per event id, even when two
    # processes record it at the same moment.
    "CREATE CONSTRAINT pacte_index_unique IF NOT EXISTS "
    "FOR (i:PacteIndex) REQUIRE i.unique_key IS UNIQUE",
    "CREATE INDEX pacte_index_node IF NOT EXISTS FOR (i:PacteIndex) ON (i.node_id)",
    "CREATE CONSTRAINT pacte_meta_key IF NOT EXISTS "
    "FOR (m:PacteMeta) REQUIRE m.key IS UNIQUE",
)
_AWAIT_INDEXES = "CALL db.awaitIndexes($seconds)"
_INIT_VERSION = (
    "MERGE (m:PacteMeta {key: 'schema_version'}) ON CREATE SET m.value = $version "
    "RETURN m.value AS version"
)

# -- writes ----------------------------------------------------------------------------
_SEEK_NODE: LiteralString = " USING INDEX SEEK n:PacteNode(id)"
_DELETE_NODES = (
    "UNWIND $ids AS nid MATCH (n:PacteNode {id: nid})" + _SEEK_NODE + " DETACH DELETE n"
)
_DELETE_EDGES = (
    "UNWIND $ids AS eid MATCH ()-[r:PACTE_EDGE {id: eid}]->() "
    "USING INDEX SEEK r:PACTE_EDGE(id) DELETE r"
)
_UNINDEX = (
    "UNWIND $ids AS nid MATCH (i:PacteIndex {node_id: nid}) "
    "USING INDEX SEEK i:PacteIndex(node_id) DELETE i"
)
# MERGE on a property with a uniqueness constraint always seeks the constraint's index.
_PUT_NODES = (
    "UNWIND $nodes AS n MERGE (x:PacteNode {id: n.id}) "
    "SET x.kind = n.kind, x.owner = n.owner, x.props = n.props"
)
# Relationships cannot move to other endpoints, so an upserted edge is deleted (above,
# with _DELETE_EDGES) and created afresh; the count tells whether every endpoint existed.
_CREATE_EDGES = (
    "UNWIND $edges AS e "
    "MATCH (s:PacteNode {id: e.src}) USING INDEX SEEK s:PacteNode(id) "
    "MATCH (d:PacteNode {id: e.dst}) USING INDEX SEEK d:PacteNode(id) "
    "CREATE (s)-[:PACTE_EDGE {id: e.id, type: e.type, at: e.at, props: e.props}]->(d) "
    "RETURN count(*) AS created"
)
_PUT_INDEX = (
    "UNWIND $entries AS i MERGE (x:PacteIndex {key: i.key}) "
    "ON CREATE SET x.name = i.name, x.token = i.token, x.node_id = i.node_id, "
    "x.unique_key = i.unique_key"
)
_SET_META = "MERGE (m:PacteMeta {key: $key}) SET m.value = $value"

# -- reads -----------------------------------------------------------------------------
# Rows come back as one list in one record (see the module's docstring); `collect` keeps
# the order of the ORDER BY before it.
_NODE_ROW = "[n.id, n.kind, n.owner, n.props]"
_GET_NODES = (
    "UNWIND $ids AS nid MATCH (n:PacteNode {id: nid})" + _SEEK_NODE
    + " RETURN collect(" + _NODE_ROW + ")"
)
# Ordered by (kind, id), the composite index's own order: the page is read from the
# index and stops at the limit (ORDER BY n.id alone made the server sort every node of
# the kind for every page).
_SCAN_FIRST = (
    "MATCH (n:PacteNode) USING INDEX SEEK n:PacteNode(kind, id) "
    "WHERE n.kind = $kind AND n.id IS NOT NULL "
    "WITH n ORDER BY n.kind, n.id LIMIT $limit RETURN collect(" + _NODE_ROW + ")"
)
_SCAN_AFTER = (
    "MATCH (n:PacteNode) USING INDEX SEEK n:PacteNode(kind, id) "
    "WHERE n.kind = $kind AND n.id > $after "
    "WITH n ORDER BY n.kind, n.id LIMIT $limit RETURN collect(" + _NODE_ROW + ")"
)
_EDGE_ROW = " RETURN collect([r.id, r.type, s.id, d.id, r.at, r.props])"
_NEWEST_FIRST = " WITH r, s, d ORDER BY r.at DESC, r.id DESC"
_BEFORE = " AND (r.at < $at OR (r.at = $at AND r.id < $id))"
_OUT = (
    "MATCH (s:PacteNode {id: $node_id})-[r:PACTE_EDGE]->(d:PacteNode) "
    "USING INDEX SEEK s:PacteNode(id) WHERE r.type = $type"
)
_IN = (
    "MATCH (s:PacteNode)-[r:PACTE_EDGE]->(d:PacteNode {id: $node_id}) "
    "USING INDEX SEEK d:PacteNode(id) WHERE r.type = $type"
)
_EDGES_OUT = _OUT + _NEWEST_FIRST + " LIMIT $limit" + _EDGE_ROW
_EDGES_IN = _IN + _NEWEST_FIRST + " LIMIT $limit" + _EDGE_ROW
_EDGES_OUT_BEFORE = _OUT + _BEFORE + _NEWEST_FIRST + " LIMIT $limit" + _EDGE_ROW
_EDGES_IN_BEFORE = _IN + _BEFORE + _NEWEST_FIRST + " LIMIT $limit" + _EDGE_ROW
_EDGES_MANY_OUT = (
    "UNWIND $ids AS nid "
    "MATCH (s:PacteNode {id: nid})-[r:PACTE_EDGE]->(d:PacteNode) "
    "USING INDEX SEEK s:PacteNode(id) WHERE r.type = $type" + _NEWEST_FIRST + _EDGE_ROW
)
_EDGES_MANY_IN = (
    "UNWIND $ids AS nid "
    "MATCH (s:PacteNode)-[r:PACTE_EDGE]->(d:PacteNode {id: nid}) "
    "USING INDEX SEEK d:PacteNode(id) WHERE r.type = $type" + _NEWEST_FIRST + _EDGE_ROW
)
_FIND_EDGES = (
    "MATCH (s:PacteNode {id: $src})-[r:PACTE_EDGE]->(d:PacteNode {id: $dst}) "
    "USING INDEX SEEK s:PacteNode(id) "
    "WHERE r.type = $type" + _NEWEST_FIRST + _EDGE_ROW
)
_EDGE_SOURCES = (
    "MATCH (s:PacteNode)-[r:PACTE_EDGE]->(d:PacteNode {id: $dst}) "
    "USING INDEX SEEK d:PacteNode(id) WHERE r.type = $type AND s.id > $after "
    "WITH DISTINCT s.id AS id ORDER BY id LIMIT $limit RETURN collect(id)"
)
_LOOKUP = (
    "MATCH (i:PacteIndex {name: $name, token: $token}) "
    "USING INDEX SEEK i:PacteIndex(name, token) "
    "WITH i.node_id AS node_id ORDER BY node_id RETURN collect(node_id)"
)
_OWNED_BY = (
    "MATCH (n:PacteNode {owner: $owner}) USING INDEX SEEK n:PacteNode(owner) "
    "WITH n.id AS id ORDER BY id RETURN collect(id)"
)
_COUNT_NODES = "MATCH (n:PacteNode) RETURN n.kind, count(*)"
_COUNT_EDGES = "MATCH ()-[r:PACTE_EDGE]->() RETURN r.type, count(*)"
# Keyset pagination on the unique (indexed) keys: stable batches for resumable migration.
_ITER_NODES = (
    "MATCH (n:PacteNode) USING INDEX SEEK n:PacteNode(id) WHERE n.id > $after "
    "WITH n ORDER BY n.id LIMIT $limit RETURN collect(" + _NODE_ROW + ")"
)
_ITER_EDGES = (
    "MATCH (s:PacteNode)-[r:PACTE_EDGE]->(d:PacteNode) USING INDEX SEEK r:PACTE_EDGE(id) "
    "WHERE r.id > $after WITH r, s, d ORDER BY r.id LIMIT $limit" + _EDGE_ROW
)
_ITER_INDEX = (
    "MATCH (i:PacteIndex) USING INDEX SEEK i:PacteIndex(key) WHERE i.key > $after "
    "WITH i ORDER BY i.key LIMIT $limit RETURN collect([i.key, i.name, i.token, i.node_id])"
)
_GET_META = "MATCH (m:PacteMeta {key: $key}) RETURN collect(m.value)"

# A node and, per hop, its newest `limit` edges of one type and direction, with the
# nodes at their other ends and those nodes' outgoing edges of the `then` types: one
# round trip for a customer-360 view. Hops are parameters (a list of maps), so the text
# stays constant. The per-hop limit is a list slice (LIMIT takes no variable); the sort
# before it is over the node's edges of that type, as in `edges`. The last aggregation
# has no grouping key, so the node comes back even when no hop finds an edge.
_AROUND = """
MATCH (n:PacteNode {id: $id}) USING INDEX SEEK n:PacteNode(id)
CALL (n) {
  UNWIND range(0, size($hops) - 1) AS i
  WITH n, i, $hops[i] AS h
  CALL (n, h) {
    MATCH (n)-[r:PACTE_EDGE]->(m:PacteNode) WHERE h.out AND r.type = h.type
    RETURN r, m
    UNION ALL
    MATCH (n)<-[r:PACTE_EDGE]-(m:PacteNode) WHERE NOT h.out AND r.type = h.type
    RETURN r, m
  }
  WITH i, h, r, m ORDER BY r.at DESC, r.id DESC
  WITH i, h, collect([r, m])[..h.limit] AS picked
  UNWIND picked AS p
  WITH i, h, p[0] AS r, p[1] AS m
  WITH i, collect([r.id, r.at, r.props, m.id,
      CASE WHEN h.nodes THEN [m.kind, m.owner, m.props] END,
      [(m)-[t:PACTE_EDGE]->(q:PacteNode) WHERE t.type IN h.then
       | [t.id, t.type, m.id, q.id, t.at, t.props]]]) AS rows
  RETURN collect([i, rows]) AS hops
}
RETURN n.id, n.kind, n.owner, n.props, hops
"""


def _props(text: str) -> dict[str, Value]:
    # Most edges carry no properties: no JSON parser for those.
    return {} if text == "{}" else decode_props(text)


def _node(row: Sequence[Any]) -> Node:
    return Node(row[1], row[0], _props(row[3]), row[2])


def _edge(row: Sequence[Any]) -> Edge:
    return Edge(row[1], row[0], row[2], row[3], row[4], _props(row[5]))


def _index_key(name: str, token_hex: str, node_id: str) -> str:
    # One unique string per (name, token, node_id): Community has no composite node keys.
    return json.dumps([name, token_hex, node_id], separators=(",", ":"), ensure_ascii=False)


def _last_wins(items: Sequence[_T], key: Callable[[_T], str]) -> list[_T]:
    # Within one UNWIND, Cypher does not let a later row see an earlier row's writes in
    # every plan, so repeated ids in a batch are collapsed here: the last put wins, as in
    # a sequence of upserts.
    seen: dict[str, _T] = {}
    for item in items:
        seen.pop(key(item), None)
        seen[key(item)] = item
    return list(seen.values())


def _unique(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _run_statement(tx: neo4j.ManagedTransaction, statement: LiteralString) -> None:
    tx.run(statement).consume()


def _single_value(result: neo4j.Result) -> Any:
    return result.single(strict=True)[0]


def _all_values(result: neo4j.Result) -> list[list[Any]]:
    return result.values()


def _first_record(result: neo4j.Result) -> list[Any] | None:
    record = result.single(strict=False)
    return None if record is None else list(record.values())


_CONSTRAINT_FAILED = "Neo.ClientError.Schema.ConstraintValidationFailed"


class _EndpointMissing(StorageError):
    """Raised inside the write transaction, so the whole batch rolls back."""


@contextlib.contextmanager
def _mapped(operation: str) -> Iterator[None]:
    """Driver errors become StorageError; messages carry codes, never values.

    Neo4j's own messages can quote property values (a constraint violation names the
    duplicate), so only the status code and the error class are kept.
    """
    try:
        yield
    except StorageError:
        raise
    except (ServiceUnavailable, SessionExpired) as exc:
        raise StorageError(f"neo4j {operation} failed: server unavailable "
                           f"({type(exc).__name__})", retryable=True) from exc
    except TransientError as exc:
        raise StorageError(f"neo4j {operation} failed: {exc.code}", retryable=True) from exc
    except AuthError as exc:
        raise StorageError(f"neo4j {operation} failed: authentication refused ({exc.code})",
                           retryable=False) from exc
    except Neo4jError as exc:
        if exc.code == _CONSTRAINT_FAILED:
            raise Conflict(f"neo4j {operation} refused: {exc.code}") from exc
        raise StorageError(f"neo4j {operation} failed: {exc.code}", retryable=False) from exc
    except DriverError as exc:
        raise StorageError(f"neo4j {operation} failed: {type(exc).__name__}",
                           retryable=False) from exc


# -- read scopes ---------------------------------------------------------------------------


def _newest_first(edges: list[Edge]) -> list[Edge]:
    edges.sort(key=lambda e: (e.at, e.id), reverse=True)
    return edges


class _Scope:
    """What the read scopes of one thread (or task) have read: nodes, and edge lists.

    An edge list is newest first, and either complete or the newest `limit` edges.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.absent: set[str] = set()
        # (node id, type, direction) -> (newest-first edges, whether that is all of them)
        self.lists: dict[tuple[str, str, str], tuple[list[Edge], bool]] = {}

    def clear(self) -> None:
        self.nodes, self.absent, self.lists = {}, set(), {}

    def add(self, node_id: str, hops: Sequence[Hop], value: Sequence[Any] | None) -> None:
        """Remember the answer of _AROUND (None: there is no such node)."""
        if value is None:
            self.absent.add(node_id)
            for h in hops:
                self.lists[(node_id, h.type, h.direction)] = ([], True)
            return
        self.nodes[node_id] = _node(value)
        self.absent.discard(node_id)
        found: dict[int, list[Any]] = {int(i): rows for i, rows in value[4]}
        for i, h in enumerate(hops):
            listed: list[Edge] = []
            for edge_id, at, props, other, node, then in found.get(i, ()):
                src, dst = (node_id, other) if h.direction == "out" else (other, node_id)
                listed.append(Edge(h.type, edge_id, src, dst, at, _props(props)))
                if node is not None:
                    self.nodes[other] = Node(node[0], other, _props(node[2]), node[1])
                    self.absent.discard(other)
                if h.then:
                    by_type: dict[str, list[Edge]] = {t: [] for t in h.then}
                    for row in then:
                        by_type[row[1]].append(_edge(row))
                    for t, next_edges in by_type.items():
                        self.lists[(other, t, "out")] = (_newest_first(next_edges), True)
            complete = h.limit is None or len(listed) < h.limit
            self.lists[(node_id, h.type, h.direction)] = (listed, complete)

    def get_nodes(self, ids: Sequence[str]) -> tuple[dict[str, Node], list[str]]:
        """The nodes it read among `ids`, and the ids it knows nothing of."""
        found: dict[str, Node] = {}
        unknown: list[str] = []
        for i in ids:
            node = self.nodes.get(i)
            if node is not None:
                found[i] = node
            elif i not in self.absent:
                unknown.append(i)
        return found, unknown

    def edges(self, node_id: str, type: str, direction: str, limit: int | None,
              before: Cursor | None) -> list[Edge] | None:
        """What `Store.edges` would answer, or None when this scope cannot tell."""
        known = self.lists.get((node_id, type, direction))
        if known is None:
            return None
        listed, complete = known
        if before is not None:
            if not complete:
                return None
            listed = [e for e in listed if (e.at, e.id) < (before.at, before.id)]
        elif not complete and (limit is None or limit > len(listed)):
            return None
        return listed[:limit] if limit is not None else list(listed)


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
                for statement in _SCHEMA:
                    try:
                        session.execute_write(_run_statement, statement)
                    except ClientError as exc:
                        # Another process created the same rule between IF NOT EXISTS and us.
                        if "AlreadyExists" not in (exc.code or ""):
                            raise
                session.run(_AWAIT_INDEXES, seconds=300).consume()
                version = session.execute_write(
                    lambda tx: tx.run(_INIT_VERSION, version=SCHEMA_VERSION).single(strict=True)[0])
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

        For a customer-360 view: ``Hop("HAD", limit=21, nodes=True, then=("ABOUT",))``,
        ``Hop("BOUGHT", nodes=True)`` and ``Hop("CONSENTED")``. Returns False, reading
        nothing, outside a read scope.
        """
        for h in hops:
            if h.direction not in ("out", "in"):
                raise ValueError(f"unknown direction {h.direction!r}")
            if h.limit is not None and not 0 <= h.limit < _NO_SLICE:
                raise ValueError(f"a hop's limit must be between 0 and {_NO_SLICE - 1}")
        scope = self._scope.get()
        if scope is None:
            return False
        params = [{"type": h.type, "out": h.direction == "out",
                   "limit": _NO_SLICE if h.limit is None else h.limit,
                   "nodes": h.nodes, "then": list(h.then)} for h in hops]
        scope.add(around, hops, self._query("prefetch", _AROUND,
                                            {"id": around, "hops": params}, _first_record))
        return True

    def _forget_scope(self) -> None:
        scope = self._scope.get()
        if scope is not None:
            scope.clear()

    # -- writes ---------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        if not batch:
            return
        # Everything is encoded before the transaction: a value that cannot be stored
        # fails here, before anything reaches the server.
        nodes = [{"id": n.id, "kind": n.kind, "owner": n.owner, "props": encode_props(n.props)}
                 for n in _last_wins(batch.nodes, lambda n: n.id)]
        edges = [{"id": e.id, "type": e.type, "src": e.src, "dst": e.dst, "at": e.at,
                  "props": encode_props(e.props)}
                 for e in _last_wins(batch.edges, lambda e: e.id)]
        entries = []
        for i in batch.index:
            token = bytes(i.token).hex()
            entries.append({"key": _index_key(i.name, token, i.node_id), "name": i.name,
                            "token": token, "node_id": i.node_id,
                            "unique_key": f"{i.name}:{token}" if i.name == EVENT_INDEX
                            else None})
        delete_nodes = _unique(batch.delete_nodes)
        delete_edges = _unique(batch.delete_edges)
        unindex = _unique(batch.unindex)

        def work(tx: neo4j.ManagedTransaction) -> None:
            # The order WriteBatch documents: deletions, then puts.
            if delete_nodes:
                tx.run(_DELETE_NODES, ids=delete_nodes).consume()
                tx.run(_UNINDEX, ids=delete_nodes).consume()
            if delete_edges:
                tx.run(_DELETE_EDGES, ids=delete_edges).consume()
            if unindex:
                tx.run(_UNINDEX, ids=unindex).consume()
            if nodes:
                tx.run(_PUT_NODES, nodes=nodes).consume()
            if edges:
                tx.run(_DELETE_EDGES, ids=[e["id"] for e in edges]).consume()
                created = tx.run(_CREATE_EDGES, edges=edges).single(strict=True)[0]
                if created != len(edges):
                    raise _EndpointMissing(
                        f"{len(edges) - created} edge(s) refer to nodes that do not exist; "
                        "the batch was not applied")
            if entries:
                tx.run(_PUT_INDEX, entries=entries).consume()

        self._ensure_schema()
        self._forget_scope()
        with _mapped("write"), self._session() as session:
            session.execute_write(work)

    def set_meta(self, key: str, value: str) -> None:
        self._ensure_schema()
        self._forget_scope()
        with _mapped("set_meta"), self._session() as session:
            session.execute_write(lambda tx: tx.run(_SET_META, key=key, value=value).consume())

    # -- reads ----------------------------------------------------------------------------

    def get_nodes(self, ids: Sequence[str]) -> dict[str, Node]:
        if not ids:
            return {}
        wanted = _unique(ids)
        found: dict[str, Node] = {}
        scope = self._scope.get()
        if scope is not None:
            found, wanted = scope.get_nodes(wanted)
            if not wanted:
                return found
        for row in self._read("get_nodes", _GET_NODES, ids=wanted):
            found[row[0]] = _node(row)
        return found

    def scan_nodes(self, kind: str, *, after: str | None = None, limit: int = 100) -> list[Node]:
        if after is None:
            rows = self._read("scan_nodes", _SCAN_FIRST, kind=kind, limit=limit)
        else:
            rows = self._read("scan_nodes", _SCAN_AFTER, kind=kind, after=after, limit=limit)
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
            query = _EDGES_OUT if direction == "out" else _EDGES_IN
            rows = self._read("edges", query, node_id=node_id, type=type, limit=lim)
        else:
            query = _EDGES_OUT_BEFORE if direction == "out" else _EDGES_IN_BEFORE
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
        query = _EDGES_MANY_OUT if direction == "out" else _EDGES_MANY_IN
        for r in self._read("edges_many", query, ids=_unique(node_ids), type=type):
            e = _edge(r)
            out[e.src if direction == "out" else e.dst].append(e)
        return out

    def find_edges(self, type: str, src: str, dst: str) -> list[Edge]:
        rows = self._read("find_edges", _FIND_EDGES, type=type, src=src, dst=dst)
        return [_edge(r) for r in rows]

    def edge_sources(self, dst: str, type: str, *, after: str | None = None,
                     limit: int = 100) -> list[str]:
        rows = self._read("edge_sources", _EDGE_SOURCES, dst=dst, type=type,
                          after=after or "", limit=limit)
        return [str(r) for r in rows]

    def lookup(self, name: str, token: bytes) -> list[str]:
        rows = self._read("lookup", _LOOKUP, name=name, token=bytes(token).hex())
        return [str(r) for r in rows]

    def owned_by(self, owner: str) -> list[str]:
        return [str(r) for r in self._read("owned_by", _OWNED_BY, owner=owner)]

    def count_nodes(self) -> dict[str, int]:
        rows = self._read_rows("count_nodes", _COUNT_NODES)
        return {str(k): int(v) for k, v in sorted(rows)}

    def count_edges(self) -> dict[str, int]:
        rows = self._read_rows("count_edges", _COUNT_EDGES)
        return {str(k): int(v) for k, v in sorted(rows)}

    def iter_nodes(self, *, batch: int = 1000) -> Iterator[list[Node]]:
        last = ""
        while rows := self._read("iter_nodes", _ITER_NODES, after=last, limit=batch):
            yield [_node(r) for r in rows]
            last = str(rows[-1][0])

    def iter_edges(self, *, batch: int = 1000) -> Iterator[list[Edge]]:
        last = ""
        while rows := self._read("iter_edges", _ITER_EDGES, after=last, limit=batch):
            yield [_edge(r) for r in rows]
            last = str(rows[-1][0])

    def iter_index(self, *, batch: int = 1000) -> Iterator[list[IndexEntry]]:
        last = ""
        while rows := self._read("iter_index", _ITER_INDEX, after=last, limit=batch):
            yield [IndexEntry(str(r[1]), bytes.fromhex(r[2]), str(r[3])) for r in rows]
            last = str(rows[-1][0])

    def get_meta(self, key: str) -> str | None:
        values = self._read("get_meta", _GET_META, key=key)
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
