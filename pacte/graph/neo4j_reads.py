"""The Cypher of Neo4jStore's reads (pacte.graph.neo4j_store), one constant text per shape.

Each read is one query returning one record, most often one list (`collect`), so that a
read is one round trip; parameters carry every value, so the server plans each text once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pacte.graph.neo4j_write import SEEK_NODE
from pacte.graph.store import Hop

__all__ = [
    "COUNT_EDGES", "COUNT_NODES", "EDGES_IN", "EDGES_IN_BEFORE", "EDGES_MANY_IN",
    "EDGES_MANY_OUT", "EDGES_OUT", "EDGES_OUT_BEFORE", "EDGE_SOURCES", "FIND_EDGES",
    "GET_META", "GET_NODES", "IDS_OF_KIND", "ITER_EDGES", "ITER_INDEX", "ITER_NODES", "LOOKUP",
    "LOOKUP_GROUPS", "LOOKUP_MANY",
    "NO_SLICE", "OWNED_BY", "SCAN_AFTER", "SCAN_FIRST", "hop_params",
]

# Larger than any list slice of a hop: Cypher takes a slice bound as a 32-bit integer.
NO_SLICE = 2**31 - 1

# Rows come back as one list in one record (see the module's docstring); `collect` keeps
# the order of the ORDER BY before it.
NODE_ROW = "[n.id, n.kind, n.owner, n.props]"
GET_NODES = (
    "UNWIND $ids AS nid MATCH (n:PacteNode {id: nid})" + SEEK_NODE
    + " RETURN collect(" + NODE_ROW + ")"
)
# Ordered by (kind, id), the composite index's own order: the page is read from the
# index and stops at the limit (ORDER BY n.id alone made the server sort every node of
# the kind for every page).
SCAN_FIRST = (
    "MATCH (n:PacteNode) USING INDEX SEEK n:PacteNode(kind, id) "
    "WHERE n.kind = $kind AND n.id IS NOT NULL "
    "WITH n ORDER BY n.kind, n.id LIMIT $limit RETURN collect(" + NODE_ROW + ")"
)
SCAN_AFTER = (
    "MATCH (n:PacteNode) USING INDEX SEEK n:PacteNode(kind, id) "
    "WHERE n.kind = $kind AND n.id > $after "
    "WITH n ORDER BY n.kind, n.id LIMIT $limit RETURN collect(" + NODE_ROW + ")"
)
EDGE_ROW = " RETURN collect([r.id, r.type, s.id, d.id, r.at, r.props])"
NEWEST_FIRST = " WITH r, s, d ORDER BY r.at DESC, r.id DESC"
BEFORE = " AND (r.at < $at OR (r.at = $at AND r.id < $id))"
OUT = (
    "MATCH (s:PacteNode {id: $node_id})-[r:PACTE_EDGE]->(d:PacteNode) "
    "USING INDEX SEEK s:PacteNode(id) WHERE r.type = $type"
)
IN = (
    "MATCH (s:PacteNode)-[r:PACTE_EDGE]->(d:PacteNode {id: $node_id}) "
    "USING INDEX SEEK d:PacteNode(id) WHERE r.type = $type"
)
EDGES_OUT = OUT + NEWEST_FIRST + " LIMIT $limit" + EDGE_ROW
EDGES_IN = IN + NEWEST_FIRST + " LIMIT $limit" + EDGE_ROW
EDGES_OUT_BEFORE = OUT + BEFORE + NEWEST_FIRST + " LIMIT $limit" + EDGE_ROW
EDGES_IN_BEFORE = IN + BEFORE + NEWEST_FIRST + " LIMIT $limit" + EDGE_ROW
EDGES_MANY_OUT = (
    "UNWIND $ids AS nid "
    "MATCH (s:PacteNode {id: nid})-[r:PACTE_EDGE]->(d:PacteNode) "
    "USING INDEX SEEK s:PacteNode(id) WHERE r.type = $type" + NEWEST_FIRST + EDGE_ROW
)
EDGES_MANY_IN = (
    "UNWIND $ids AS nid "
    "MATCH (s:PacteNode)-[r:PACTE_EDGE]->(d:PacteNode {id: nid}) "
    "USING INDEX SEEK d:PacteNode(id) WHERE r.type = $type" + NEWEST_FIRST + EDGE_ROW
)
FIND_EDGES = (
    "MATCH (s:PacteNode {id: $src})-[r:PACTE_EDGE]->(d:PacteNode {id: $dst}) "
    "USING INDEX SEEK s:PacteNode(id) "
    "WHERE r.type = $type" + NEWEST_FIRST + EDGE_ROW
)
EDGE_SOURCES = (
    "MATCH (s:PacteNode)-[r:PACTE_EDGE]->(d:PacteNode {id: $dst}) "
    "USING INDEX SEEK d:PacteNode(id) WHERE r.type = $type AND s.id > $after "
    "WITH DISTINCT s.id AS id ORDER BY id LIMIT $limit RETURN collect(id)"
)
LOOKUP = (
    "MATCH (i:PacteIndex {name: $name, token: $token}) "
    "USING INDEX SEEK i:PacteIndex(name, token) "
    "WITH i.node_id AS node_id ORDER BY node_id RETURN collect(node_id)"
)
LOOKUP_MANY = (
    "UNWIND $tokens AS t "
    "MATCH (i:PacteIndex {name: $name, token: t}) "
    "USING INDEX SEEK i:PacteIndex(name, token) "
    "WITH t, i.node_id AS node_id ORDER BY node_id RETURN t, collect(node_id)"
)
OWNED_BY = (
    "MATCH (n:PacteNode {owner: $owner}) USING INDEX SEEK n:PacteNode(owner) "
    "WITH n.id AS id ORDER BY id RETURN collect(id)"
)
# Bulk loads (pacte.store.BulkLookups): several indexes' tokens as [name, token] pairs
# in one query, and the ids of one kind among many (seeks only: an edge filter such as
# the SAME_AS check would expand every edge of every customer).
LOOKUP_GROUPS = (
    "UNWIND $pairs AS p "
    "MATCH (i:PacteIndex {name: p[0], token: p[1]}) "
    "USING INDEX SEEK i:PacteIndex(name, token) "
    "WITH p, i.node_id AS node_id ORDER BY node_id "
    "WITH p, collect(node_id) AS ids RETURN collect([p[0], p[1], ids])"
)
IDS_OF_KIND = (
    "UNWIND $ids AS nid MATCH (n:PacteNode {id: nid})" + SEEK_NODE
    + " WHERE n.kind = $kind RETURN collect(n.id)"
)
COUNT_NODES = "MATCH (n:PacteNode) RETURN n.kind, count(*)"
COUNT_EDGES = "MATCH ()-[r:PACTE_EDGE]->() RETURN r.type, count(*)"
# Keyset pagination on the unique (indexed) keys: stable batches for resumable migration.
ITER_NODES = (
    "MATCH (n:PacteNode) USING INDEX SEEK n:PacteNode(id) WHERE n.id > $after "
    "WITH n ORDER BY n.id LIMIT $limit RETURN collect(" + NODE_ROW + ")"
)
ITER_EDGES = (
    "MATCH (s:PacteNode)-[r:PACTE_EDGE]->(d:PacteNode) USING INDEX SEEK r:PACTE_EDGE(id) "
    "WHERE r.id > $after WITH r, s, d ORDER BY r.id LIMIT $limit" + EDGE_ROW
)
ITER_INDEX = (
    "MATCH (i:PacteIndex) USING INDEX SEEK i:PacteIndex(key) WHERE i.key > $after "
    "WITH i ORDER BY i.key LIMIT $limit RETURN collect([i.key, i.name, i.token, i.node_id])"
)
GET_META = "MATCH (m:PacteMeta {key: $key}) RETURN collect(m.value)"


def hop_params(hops: Sequence[Hop]) -> list[dict[str, Any]]:
    """Hops as query parameters (a list of maps, so the query's text stays constant)."""
    for h in hops:
        if h.direction not in ("out", "in"):
            raise ValueError(f"unknown direction {h.direction!r}")
        if h.limit is not None and not 0 <= h.limit < NO_SLICE:
            raise ValueError(f"a hop's limit must be between 0 and {NO_SLICE - 1}")
    return [{"type": h.type, "out": h.direction == "out",
             "limit": NO_SLICE if h.limit is None else h.limit,
             "nodes": h.nodes, "then": list(h.then), "then_nodes": h.then_nodes}
            for h in hops]
