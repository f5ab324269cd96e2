"""How `Neo4jStore.write` applies a `WriteBatch` (and `set_meta` its value): constant
Cypher, parameter lists.

A batch is one transaction of a few UNWIND statements, each over a list parameter, so
the query texts stay constant (one cached plan each) however large the batch.

Bulk loads (seeding, ingestion) are mostly new nodes with new edges, and the server's
time goes into per-row work. So the write first asks which of the batch's nodes exist
(one indexed read), then CREATEs the others and SETs the rest, where a MERGE per row
would seek and lock every row in the uniqueness index again. An upserted edge is
deleted and created afresh (a relationship cannot move to other endpoints); only an
edge between two nodes that existed before the batch can exist already, so only those
edges are looked for and deleted first. That is the same answer as deleting every
upserted edge id, without a seek for the edges of new nodes. Together: about 10% of the
server's CPU time on a seed (docs/performance.md). Likewise a blind-index entry of a
node new in the batch is CREATEd (its key names the node, so it cannot exist yet) and
only the others are MERGEd: an ingestion writes about as many entries as edges (an event
id per interaction, identifiers and row keys per customer), and the MERGE was the
largest part of its write time.

The puts go out in chunks of `CHUNK_ROWS` rows, each chunk's rows encoded just before
it is sent, and each statement sent without waiting for the one before to run (see
`_Pipeline`): the server works on one chunk while the driver encodes the next, where
encoding the whole batch first and sending its statements one by one left the server
idle for about a fifth of a seed's write time.

If another transaction creates one of the "new" nodes between that read and the
commit, the CREATE fails on the uniqueness constraint; the store then replays the
batch once with MERGE for every node and index entry and the full edge deletion (the
plan before this optimisation), so concurrent upserts of one id still both succeed, one
after the other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, LiteralString, TypeVar

import neo4j
from neo4j.exceptions import ClientError

from pacte.errors import StorageError
from pacte.graph.neo4j_errors import CONSTRAINT_FAILED
from pacte.graph.store import EVENT_INDEX, Edge, IndexEntry, Node, WriteBatch, encode_props

__all__ = ["SEEK_NODE", "WritePlan", "apply", "commit", "plan", "set_meta", "unique"]

_T = TypeVar("_T")

SEEK_NODE: LiteralString = " USING INDEX SEEK n:PacteNode(id)"
# An updating statement that returns nothing runs when the server receives it; one that
# returns a row runs when its result is pulled, so the driver can send the next one
# meanwhile (see `_Pipeline`).
_DEFERRED: LiteralString = "RETURN count(*)"
# The rows of the puts are lists, not maps, in the orders of the `_*_rows` encoders
# below (`n[0]` is a node row's id): a map repeats its keys in every row, which the driver
# packs and the server decodes again and again, for nothing.
_DELETE_NODES = (
    "UNWIND $ids AS nid MATCH (n:PacteNode {id: nid})" + SEEK_NODE + " DETACH DELETE n"
)
_DELETE_EDGES = (
    "UNWIND $ids AS eid MATCH ()-[r:PACTE_EDGE {id: eid}]->() "
    "USING INDEX SEEK r:PACTE_EDGE(id) DELETE r"
)
_UNINDEX = (
    "UNWIND $ids AS nid MATCH (i:PacteIndex {node_id: nid}) "
    "USING INDEX SEEK i:PacteIndex(node_id) DELETE i"
)
_EXISTING_NODES = (
    "UNWIND $ids AS nid MATCH (n:PacteNode {id: nid})" + SEEK_NODE + " RETURN collect(n.id)"
)
_CREATE_NODES = (
    "UNWIND $nodes AS n "
    "CREATE (:PacteNode {id: n[0], kind: n[1], owner: n[2], props: n[3]}) " + _DEFERRED
)
_SET_NODES = (
    "UNWIND $nodes AS x MATCH (n:PacteNode {id: x[0]})" + SEEK_NODE
    + " SET n.kind = x[1], n.owner = x[2], n.props = x[3] " + _DEFERRED
)
# MERGE on a property with a uniqueness constraint always seeks the constraint's index.
_MERGE_NODES = (
    "UNWIND $nodes AS n MERGE (x:PacteNode {id: n[0]}) "
    "SET x.kind = n[1], x.owner = n[2], x.props = n[3] " + _DEFERRED
)
# The count tells whether every endpoint existed.
_CREATE_EDGES = (
    "UNWIND $edges AS e "
    "MATCH (s:PacteNode {id: e[2]}) USING INDEX SEEK s:PacteNode(id) "
    "MATCH (d:PacteNode {id: e[3]}) USING INDEX SEEK d:PacteNode(id) "
    "CREATE (s)-[:PACTE_EDGE {id: e[0], type: e[1], at: e[4], props: e[5]}]->(d) "
    + _DEFERRED
)
_SET_META = "MERGE (m:PacteMeta {key: $key}) SET m.value = $value"
_CREATE_INDEX = (
    "UNWIND $entries AS i CREATE (:PacteIndex {key: i[0], name: i[1], token: i[2], "
    "node_id: i[3], unique_key: i[4]}) " + _DEFERRED
)
_PUT_INDEX = (
    "UNWIND $entries AS i MERGE (x:PacteIndex {key: i[0]}) "
    "ON CREATE SET x.name = i[1], x.token = i[2], x.node_id = i[3], x.unique_key = i[4] "
    + _DEFERRED
)


class EndpointMissing(StorageError):
    """Raised inside the write transaction, so the whole batch rolls back."""


def unique(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _last_wins(items: Sequence[_T], key: Callable[[_T], Hashable]) -> list[_T]:
    # Within one UNWIND, Cypher does not let a later row see an earlier row's writes in
    # every plan, so repeated ids in a batch are collapsed here: the last put wins, as in
    # a sequence of upserts (a dict keeps the first position and the last value; the
    # order of puts within a batch means nothing).
    return list({key(item): item for item in items}.values())


# One encoder for every key: json.dumps with options builds a new one each time.
_encode_key = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _index_key(name: str, token_hex: str, node_id: str) -> str:
    # One unique string per (name, token, node_id): Community has no composite node keys.
    return _encode_key([name, token_hex, node_id])


@dataclass(frozen=True)
class WritePlan:
    """A batch, its repeated puts collapsed; the statements' rows are encoded from it
    chunk by chunk inside the transaction (see `_Pipeline`)."""

    nodes: list[Node]
    edges: list[Edge]
    entries: list[IndexEntry]
    delete_nodes: list[str]
    delete_edges: list[str]
    unindex: list[str]


def plan(batch: WriteBatch) -> WritePlan:
    return WritePlan(_last_wins(batch.nodes, lambda n: n.id),
                     _last_wins(batch.edges, lambda e: e.id),
                     _last_wins(batch.index, lambda i: (i.name, bytes(i.token), i.node_id)),
                     unique(batch.delete_nodes), unique(batch.delete_edges),
                     unique(batch.unindex))


# Encoding a value that cannot be stored raises inside the transaction, which then rolls
# back: the batch is not applied, as when it failed before the transaction started.

class _Rows(list[Any]):
    """A statement's parameter list, shown by its length.

    The driver formats every RUN's parameters for its debug log whether or not debug
    logging is on: `repr` of 5,000 rows took about a sixth of the writer thread's time.
    It packs a list subclass as a list."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} rows>"


def _node_rows(nodes: Sequence[Node]) -> _Rows:
    return _Rows([[n.id, n.kind, n.owner, encode_props(n.props)] for n in nodes])


def _edge_rows(edges: Sequence[Edge]) -> _Rows:
    return _Rows([[e.id, e.type, e.src, e.dst, e.at, encode_props(e.props)] for e in edges])


def _entry_rows(entries: Sequence[IndexEntry]) -> _Rows:
    rows = _Rows()
    for i in entries:
        token = bytes(i.token).hex()
        rows.append([_index_key(i.name, token, i.node_id), i.name, token, i.node_id,
                     f"{i.name}:{token}" if i.name == EVENT_INDEX else None])
    return rows


def commit(session: neo4j.Session, p: WritePlan) -> None:
    """The batch in one managed transaction, replayed once with MERGE after a lost race."""
    try:
        session.execute_write(apply, p)
    except ClientError as exc:
        if exc.code != CONSTRAINT_FAILED:
            raise
        # Another transaction may have created a node this one found absent (see the
        # module's docstring). A real conflict (an event id recorded twice) fails again,
        # and is raised as Conflict.
        session.execute_write(apply, p, merge=True)


def set_meta(tx: neo4j.ManagedTransaction, key: str, value: str) -> None:
    tx.run(_SET_META, key=key, value=value).consume()


def apply(tx: neo4j.ManagedTransaction, p: WritePlan, *, merge: bool = False) -> None:
    """The batch in the order WriteBatch documents: deletions, then puts.

    The puts are sent in chunks of `CHUNK_ROWS` rows, each without waiting for the one
    before (see `_Pipeline`). `merge` is the replay after a lost race (see the module's
    docstring).
    """
    _delete(tx, p)
    sent = _Pipeline(tx)
    new = _put_nodes(tx, sent, p.nodes, merge=merge)
    if p.edges:
        _put_edges(tx, sent, p.edges, new)
    if p.entries:
        _put_entries(sent, p.entries, new)
    made = sent.wait()
    if made != len(p.edges):
        raise EndpointMissing(
            f"{len(p.edges) - made} edge(s) refer to nodes that do not exist; "
            "the batch was not applied")


# Rows per statement of a batch's puts. The driver encodes a chunk while the server
# runs the one before, so only the first chunk's encoding waits for the server.
CHUNK_ROWS = 5000


class _Pipeline:
    """Statements of one transaction sent one after the other without waiting for
    their results: `tx.run` returns once the server accepted a statement, and the
    server runs it while the next is encoded. `wait` reads every result; an error of
    any statement is raised by the `send` after it or by `wait`, and rolls the whole
    transaction back."""

    def __init__(self, tx: neo4j.ManagedTransaction) -> None:
        self._tx = tx
        self._counted: list[neo4j.Result] = []
        self._other: list[neo4j.Result] = []

    def send(self, query: LiteralString, name: str, items: Sequence[_T],
             encode: Callable[[Sequence[_T]], _Rows], *,
             counted: bool = False) -> None:
        """`query` over `items` in chunks, each encoded by `encode` just before it is sent."""
        for start in range(0, len(items), CHUNK_ROWS):
            result = self._tx.run(query, {name: encode(items[start:start + CHUNK_ROWS])})
            (self._counted if counted else self._other).append(result)

    def wait(self) -> int:
        """The sum of the counted statements' single values, once all have run."""
        for result in self._other:
            result.consume()
        return sum(int(r.single(strict=True)[0]) for r in self._counted)


def _delete(tx: neo4j.ManagedTransaction, p: WritePlan) -> None:
    if p.delete_nodes:
        tx.run(_DELETE_NODES, ids=_Rows(p.delete_nodes)).consume()
        tx.run(_UNINDEX, ids=_Rows(p.delete_nodes)).consume()
    if p.delete_edges:
        tx.run(_DELETE_EDGES, ids=_Rows(p.delete_edges)).consume()
    if p.unindex:
        tx.run(_UNINDEX, ids=_Rows(p.unindex)).consume()


def _put_nodes(tx: neo4j.ManagedTransaction, sent: _Pipeline, nodes: list[Node], *,
               merge: bool) -> set[str]:
    """Upsert the nodes; the ids of those that did not exist before (none when merging)."""
    if not nodes:
        return set()
    if merge:
        sent.send(_MERGE_NODES, "nodes", nodes, _node_rows)
        return set()
    # After the deletions: a node deleted above and put again is new, edges and all.
    ids = _Rows([n.id for n in nodes])
    existing = set(tx.run(_EXISTING_NODES, ids=ids).single(strict=True)[0])
    created = [n for n in nodes if n.id not in existing] if existing else nodes
    updated = [n for n in nodes if n.id in existing] if existing else []
    if created:
        sent.send(_CREATE_NODES, "nodes", created, _node_rows)
    if updated:
        sent.send(_SET_NODES, "nodes", updated, _node_rows)
    return {n.id for n in created}


def _put_entries(sent: _Pipeline, entries: list[IndexEntry], new: set[str]) -> None:
    # An entry's key names its node: one of a node new in this batch cannot exist yet.
    fresh = [i for i in entries if i.node_id in new]
    old = [i for i in entries if i.node_id not in new] if fresh else entries
    if fresh:
        sent.send(_CREATE_INDEX, "entries", fresh, _entry_rows)
    if old:
        sent.send(_PUT_INDEX, "entries", old, _entry_rows)


def _put_edges(tx: neo4j.ManagedTransaction, sent: _Pipeline, edges: list[Edge],
               new: set[str]) -> None:
    # An edge at a node that did not exist before this batch cannot exist yet.
    old = _Rows([e.id for e in edges if e.src not in new and e.dst not in new])
    if old:
        tx.run(_DELETE_EDGES, ids=old).consume()
    sent.send(_CREATE_EDGES, "edges", edges, _edge_rows, counted=True)
