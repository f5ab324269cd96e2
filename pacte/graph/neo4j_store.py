"""The Neo4j store: the official driver, managed transactions, constant Cypher.

Layout in the graph (every query text is a constant; values are always parameters):

    (:PacteNode {id, kind, owner, props})           unique id; index (kind, id); index owner
    (:PacteNode)-[:PACTE_EDGE {id, type, at, props}]->(:PacteNode)     unique id
    (:PacteIndex {key, name, token, node_id})       unique key; index (name, token); node_id
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
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
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

from pacte.errors import ConfigError, CorruptStore, StorageError
from pacte.graph.store import (
    Cursor,
    Direction,
    Edge,
    IndexEntry,
    Node,
    WriteBatch,
    decode_props,
    encode_props,
)
from pacte.graph.stores import NEO4J_SCHEMES

__all__ = ["SCHEMA_VERSION", "Neo4jStore"]

SCHEMA_VERSION = "1"
_T = TypeVar("_T")

# Larger than any real page; LIMIT cannot be null, and one query text per shape is enough.
_NO_LIMIT = 2**62

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
_DELETE_NODES = "UNWIND $ids AS nid MATCH (n:PacteNode {id: nid}) DETACH DELETE n"
_DELETE_EDGES = "UNWIND $ids AS eid MATCH ()-[r:PACTE_EDGE {id: eid}]->() DELETE r"
_UNINDEX = "UNWIND $ids AS nid MATCH (i:PacteIndex {node_id: nid}) DELETE i"
_PUT_NODES = (
    "UNWIND $nodes AS n MERGE (x:PacteNode {id: n.id}) "
    "SET x.kind = n.kind, x.owner = n.owner, x.props = n.props"
)
# Relationships cannot move to other endpoints, so an upserted edge is deleted (above,
# with _DELETE_EDGES) and created afresh; the count tells whether every endpoint existed.
_CREATE_EDGES = (
    "UNWIND $edges AS e "
    "MATCH (s:PacteNode {id: e.src}) MATCH (d:PacteNode {id: e.dst}) "
    "CREATE (s)-[:PACTE_EDGE {id: e.id, type: e.type, at: e.at, props: e.props}]->(d) "
    "RETURN count(*) AS created"
)
_PUT_INDEX = (
    "UNWIND $entries AS i MERGE (x:PacteIndex {key: i.key}) "
    "ON CREATE SET x.name = i.name, x.token = i.token, x.node_id = i.node_id"
)
_SET_META = "MERGE (m:PacteMeta {key: $key}) SET m.value = $value"

# -- reads -----------------------------------------------------------------------------
_NODE_COLS = " RETURN n.id, n.kind, n.owner, n.props"
_GET_NODES = "UNWIND $ids AS nid MATCH (n:PacteNode {id: nid})" + _NODE_COLS
_SCAN_FIRST = (
    "MATCH (n:PacteNode) WHERE n.kind = $kind AND n.id IS NOT NULL"
    + _NODE_COLS + " ORDER BY n.id LIMIT $limit"
)
_SCAN_AFTER = (
    "MATCH (n:PacteNode) WHERE n.kind = $kind AND n.id > $after"
    + _NODE_COLS + " ORDER BY n.id LIMIT $limit"
)
_EDGE_COLS = " RETURN r.id, r.type, s.id, d.id, r.at, r.props"
_NEWEST_FIRST = " ORDER BY r.at DESC, r.id DESC"
_BEFORE = " AND (r.at < $at OR (r.at = $at AND r.id < $id))"
_OUT = "MATCH (s:PacteNode {id: $node_id})-[r:PACTE_EDGE]->(d:PacteNode) WHERE r.type = $type"
_IN = "MATCH (s:PacteNode)-[r:PACTE_EDGE]->(d:PacteNode {id: $node_id}) WHERE r.type = $type"
_EDGES_OUT = _OUT + _EDGE_COLS + _NEWEST_FIRST + " LIMIT $limit"
_EDGES_IN = _IN + _EDGE_COLS + _NEWEST_FIRST + " LIMIT $limit"
_EDGES_OUT_BEFORE = _OUT + _BEFORE + _EDGE_COLS + _NEWEST_FIRST + " LIMIT $limit"
_EDGES_IN_BEFORE = _IN + _BEFORE + _EDGE_COLS + _NEWEST_FIRST + " LIMIT $limit"
_EDGES_MANY_OUT = (
    "UNWIND $ids AS nid "
    "MATCH (s:PacteNode {id: nid})-[r:PACTE_EDGE]->(d:PacteNode) WHERE r.type = $type"
    + _EDGE_COLS + _NEWEST_FIRST
)
_EDGES_MANY_IN = (
    "UNWIND $ids AS nid "
    "MATCH (s:PacteNode)-[r:PACTE_EDGE]->(d:PacteNode {id: nid}) WHERE r.type = $type"
    + _EDGE_COLS + _NEWEST_FIRST
)
_FIND_EDGES = (
    "MATCH (s:PacteNode {id: $src})-[r:PACTE_EDGE]->(d:PacteNode {id: $dst}) "
    "WHERE r.type = $type" + _EDGE_COLS + _NEWEST_FIRST
)
_LOOKUP = (
    "MATCH (i:PacteIndex {name: $name, token: $token}) RETURN i.node_id ORDER BY i.node_id"
)
_OWNED_BY = "MATCH (n:PacteNode {owner: $owner}) RETURN n.id ORDER BY n.id"
_COUNT_NODES = "MATCH (n:PacteNode) RETURN n.kind, count(*)"
_COUNT_EDGES = "MATCH ()-[r:PACTE_EDGE]->() RETURN r.type, count(*)"
# Keyset pagination on the unique (indexed) keys: stable batches for resumable migration.
_ITER_NODES = (
    "MATCH (n:PacteNode) WHERE n.id > $after" + _NODE_COLS + " ORDER BY n.id LIMIT $limit"
)
_ITER_EDGES = (
    "MATCH (s:PacteNode)-[r:PACTE_EDGE]->(d:PacteNode) WHERE r.id > $after"
    + _EDGE_COLS + " ORDER BY r.id LIMIT $limit"
)
_ITER_INDEX = (
    "MATCH (i:PacteIndex) WHERE i.key > $after "
    "RETURN i.key, i.name, i.token, i.node_id ORDER BY i.key LIMIT $limit"
)
_GET_META = "MATCH (m:PacteMeta {key: $key}) RETURN m.value"


def _node(row: list[Any]) -> Node:
    return Node(kind=row[1], id=row[0], props=decode_props(row[3]), owner=row[2])


def _edge(row: list[Any]) -> Edge:
    return Edge(type=row[1], id=row[0], src=row[2], dst=row[3], at=row[4],
                props=decode_props(row[5]))


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
        raise StorageError(f"neo4j {operation} failed: {exc.code}", retryable=False) from exc
    except DriverError as exc:
        raise StorageError(f"neo4j {operation} failed: {type(exc).__name__}",
                           retryable=False) from exc


class Neo4jStore:
    """A `Store` on a Neo4j 5 server or cluster. Thread-safe (one driver, a session per call).

    `uri` may be ``neo4j://`` (routing: reads and writes go to the right cluster members)
    or ``bolt://`` (one server). Writes use managed transactions, so the driver retries
    transient failures and leader switches for up to `max_retry_time` seconds.
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
            )
        except (ValueError, DriverError) as exc:
            raise ConfigError(f"unusable Neo4j URI ({type(exc).__name__})") from exc
        self._schema_ready = False
        self._schema_lock = threading.Lock()

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
        return self._driver.session(database=self._database)

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

    def _read(self, operation: str, query: LiteralString, **params: Any) -> list[list[Any]]:
        self._ensure_schema()

        def work(tx: neo4j.ManagedTransaction) -> list[list[Any]]:
            return [list(record.values()) for record in tx.run(query, params)]

        with _mapped(operation), self._session() as session:
            return session.execute_read(work)

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
                            "token": token, "node_id": i.node_id})
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
        with _mapped("write"), self._session() as session:
            session.execute_write(work)

    def set_meta(self, key: str, value: str) -> None:
        self._ensure_schema()
        with _mapped("set_meta"), self._session() as session:
            session.execute_write(lambda tx: tx.run(_SET_META, key=key, value=value).consume())

    # -- reads ----------------------------------------------------------------------------

    def get_nodes(self, ids: Sequence[str]) -> dict[str, Node]:
        if not ids:
            return {}
        rows = self._read("get_nodes", _GET_NODES, ids=_unique(ids))
        return {r[0]: _node(r) for r in rows}

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
        out: dict[str, list[Edge]] = {i: [] for i in node_ids}
        if not node_ids:
            return out
        query = _EDGES_MANY_OUT if direction == "out" else _EDGES_MANY_IN
        for r in self._read("edges_many", query, ids=_unique(node_ids), type=type):
            e = _edge(r)
            out[e.src if direction == "out" else e.dst].append(e)
        return out

    def find_edges(self, type: str, src: str, dst: str) -> list[Edge]:
        rows = self._read("find_edges", _FIND_EDGES, type=type, src=src, dst=dst)
        return [_edge(r) for r in rows]

    def lookup(self, name: str, token: bytes) -> list[str]:
        rows = self._read("lookup", _LOOKUP, name=name, token=bytes(token).hex())
        return [str(r[0]) for r in rows]

    def owned_by(self, owner: str) -> list[str]:
        return [str(r[0]) for r in self._read("owned_by", _OWNED_BY, owner=owner)]

    def count_nodes(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in sorted(self._read("count_nodes", _COUNT_NODES))}

    def count_edges(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in sorted(self._read("count_edges", _COUNT_EDGES))}

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
        rows = self._read("get_meta", _GET_META, key=key)
        return str(rows[0][0]) if rows else None

    def close(self) -> None:
        with contextlib.suppress(DriverError, OSError):  # closing twice, or a dead server
            self._driver.close()
