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

If another transaction creates one of the "new" nodes between that read and the
commit, the CREATE fails on the uniqueness constraint; the store then replays the
batch once with MERGE for every node and index entry and the full edge deletion (the
plan before this optimisation), so concurrent upserts of one id still both succeed, one
after the other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, LiteralString, TypeVar

import neo4j
from neo4j.exceptions import ClientError

from pacte.errors import StorageError
from pacte.graph.neo4j_errors import CONSTRAINT_FAILED
from pacte.graph.store import EVENT_INDEX, WriteBatch, encode_props

__all__ = ["SEEK_NODE", "WritePlan", "apply", "commit", "plan", "set_meta", "unique"]

_T = TypeVar("_T")

SEEK_NODE: LiteralString = " USING INDEX SEEK n:PacteNode(id)"
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
    "CREATE (:PacteNode {id: n.id, kind: n.kind, owner: n.owner, props: n.props})"
)
_SET_NODES = (
    "UNWIND $nodes AS x MATCH (n:PacteNode {id: x.id})" + SEEK_NODE
    + " SET n.kind = x.kind, n.owner = x.owner, n.props = x.props"
)
# MERGE on a property with a uniqueness constraint always seeks the constraint's index.
_MERGE_NODES = (
    "UNWIND $nodes AS n MERGE (x:PacteNode {id: n.id}) "
    "SET x.kind = n.kind, x.owner = n.owner, x.props = n.props"
)
# The count tells whether every endpoint existed.
_CREATE_EDGES = (
    "UNWIND $edges AS e "
    "MATCH (s:PacteNode {id: e.src}) USING INDEX SEEK s:PacteNode(id) "
    "MATCH (d:PacteNode {id: e.dst}) USING INDEX SEEK d:PacteNode(id) "
    "CREATE (s)-[:PACTE_EDGE {id: e.id, type: e.type, at: e.at, props: e.props}]->(d) "
    "RETURN count(*) AS created"
)
_SET_META = "MERGE (m:PacteMeta {key: $key}) SET m.value = $value"
_CREATE_INDEX = (
    "UNWIND $entries AS i CREATE (:PacteIndex {key: i.key, name: i.name, token: i.token, "
    "node_id: i.node_id, unique_key: i.unique_key})"
)
_PUT_INDEX = (
    "UNWIND $entries AS i MERGE (x:PacteIndex {key: i.key}) "
    "ON CREATE SET x.name = i.name, x.token = i.token, x.node_id = i.node_id, "
    "x.unique_key = i.unique_key"
)


class EndpointMissing(StorageError):
    """Raised inside the write transaction, so the whole batch rolls back."""


def unique(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _last_wins(items: Sequence[_T], key: Callable[[_T], str]) -> list[_T]:
    # Within one UNWIND, Cypher does not let a later row see an earlier row's writes in
    # every plan, so repeated ids in a batch are collapsed here: the last put wins, as in
    # a sequence of upserts.
    seen: dict[str, _T] = {}
    for item in items:
        seen.pop(key(item), None)
        seen[key(item)] = item
    return list(seen.values())


def _index_key(name: str, token_hex: str, node_id: str) -> str:
    # One unique string per (name, token, node_id): Community has no composite node keys.
    return json.dumps([name, token_hex, node_id], separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class WritePlan:
    """A batch as the statements' parameters, encoded before any transaction starts."""

    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    entries: list[dict[str, Any]]
    delete_nodes: list[str]
    delete_edges: list[str]
    unindex: list[str]


def plan(batch: WriteBatch) -> WritePlan:
    """Everything is encoded here: a value that cannot be stored fails before the server."""
    nodes = [{"id": n.id, "kind": n.kind, "owner": n.owner, "props": encode_props(n.props)}
             for n in _last_wins(batch.nodes, lambda n: n.id)]
    edges = [{"id": e.id, "type": e.type, "src": e.src, "dst": e.dst, "at": e.at,
              "props": encode_props(e.props)}
             for e in _last_wins(batch.edges, lambda e: e.id)]
    entries = []
    for i in _last_wins(batch.index, lambda i: _index_key(i.name, bytes(i.token).hex(),
                                                          i.node_id)):
        token = bytes(i.token).hex()
        entries.append({"key": _index_key(i.name, token, i.node_id), "name": i.name,
                        "token": token, "node_id": i.node_id,
                        "unique_key": f"{i.name}:{token}" if i.name == EVENT_INDEX else None})
    return WritePlan(nodes, edges, entries, unique(batch.delete_nodes),
                     unique(batch.delete_edges), unique(batch.unindex))


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

    `merge` is the replay after a lost race (see the module's docstring).
    """
    _delete(tx, p)
    new = _put_nodes(tx, p.nodes, merge=merge)
    if p.edges:
        _put_edges(tx, p.edges, new)
    if p.entries:
        _put_entries(tx, p.entries, new)


def _delete(tx: neo4j.ManagedTransaction, p: WritePlan) -> None:
    if p.delete_nodes:
        tx.run(_DELETE_NODES, ids=p.delete_nodes).consume()
        tx.run(_UNINDEX, ids=p.delete_nodes).consume()
    if p.delete_edges:
        tx.run(_DELETE_EDGES, ids=p.delete_edges).consume()
    if p.unindex:
        tx.run(_UNINDEX, ids=p.unindex).consume()


def _put_nodes(tx: neo4j.ManagedTransaction, nodes: list[dict[str, Any]], *, merge: bool
               ) -> set[str]:
    """Upsert the nodes; the ids of those that did not exist before (none when merging)."""
    if not nodes:
        return set()
    if merge:
        tx.run(_MERGE_NODES, nodes=nodes).consume()
        return set()
    # After the deletions: a node deleted above and put again is new, edges and all.
    existing = set(tx.run(_EXISTING_NODES, ids=[n["id"] for n in nodes]).single(strict=True)[0])
    created = [n for n in nodes if n["id"] not in existing]
    updated = [n for n in nodes if n["id"] in existing]
    if created:
        tx.run(_CREATE_NODES, nodes=created).consume()
    if updated:
        tx.run(_SET_NODES, nodes=updated).consume()
    return {n["id"] for n in created}


def _put_entries(tx: neo4j.ManagedTransaction, entries: list[dict[str, Any]], new: set[str]
                 ) -> None:
    # An entry's key names its node: one of a node new in this batch cannot exist yet.
    fresh = [i for i in entries if i["node_id"] in new]
    old = [i for i in entries if i["node_id"] not in new] if fresh else entries
    if fresh:
        tx.run(_CREATE_INDEX, entries=fresh).consume()
    if old:
        tx.run(_PUT_INDEX, entries=old).consume()


def _put_edges(tx: neo4j.ManagedTransaction, edges: list[dict[str, Any]], new: set[str]
               ) -> None:
    # An edge at a node that did not exist before this batch cannot exist yet.
    old = [e["id"] for e in edges if e["src"] not in new and e["dst"] not in new]
    if old:
        tx.run(_DELETE_EDGES, ids=old).consume()
    made = tx.run(_CREATE_EDGES, edges=edges).single(strict=True)[0]
    if made != len(edges):
        raise EndpointMissing(
            f"{len(edges) - made} edge(s) refer to nodes that do not exist; "
            "the batch was not applied")
