"""Neo4j read scopes: a node's neighbourhood read in one round trip, and the reads of a
request answered from it (see `Neo4jStore.read_scope`); with the decoding of the store's
rows, which both use.

What is left per read is the round trip itself, about a millisecond on one machine. So
`read_scope(around=..., hops=...)` reads a node and its neighbourhood (a customer's
newest interactions with the products they are about, purchases, consents) in one round
trip and answers the matching store calls of the block from it, where a customer-360
read would otherwise take a round trip per store call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pacte.graph.store import Cursor, Edge, Hop, Node, Value, decode_props

__all__ = ["AROUND", "LOOKUP_AROUND", "PAGE_AROUND", "PAGE_AROUND_FIRST", "Scope", "edge_row",
           "node_row"]

# A node and, per hop, its newest `limit` edges of one type and direction, with the
# nodes at their other ends and those nodes' outgoing edges of the `then` types (and the
# nodes these lead to, with `then_nodes`): one round trip for a customer-360 view. Hops
# are parameters (a list of maps), so the text stays constant. The node's edges are
# expanded once per direction that some hop reads, each edge's type read once, and the
# edges dealt to the hops that want them (an expansion per hop read every edge of the
# node once per hop: 509 db hits per customer-360 against 372). The per-hop limit is a
# list slice (LIMIT takes no variable); the sort before it is over the node's edges of
# that type, as in `edges`. A hop without `then` types expands nothing further (the
# guard on `h.then` is planned before the expansion: the products a purchase leads to
# have many edges). The last aggregation has no grouping key, so the node comes back
# even when no hop finds an edge.
_HOPS = """
CALL (n) {
  CALL (n) {
    MATCH (n)-[r:PACTE_EDGE]->(m:PacteNode) WHERE any(h IN $hops WHERE h.out)
    RETURN r, m, true AS out
    UNION ALL
    MATCH (n)<-[r:PACTE_EDGE]-(m:PacteNode) WHERE any(h IN $hops WHERE NOT h.out)
    RETURN r, m, false AS out
  }
  WITH r, m, out, r.type AS type
  UNWIND range(0, size($hops) - 1) AS i
  WITH i, $hops[i] AS h, r, m, out, type
  WHERE h.out = out AND h.type = type
  WITH i, h, r, m ORDER BY r.at DESC, r.id DESC
  WITH i, h, collect([r, m])[..h.limit] AS picked
  UNWIND picked AS p
  WITH i, h, p[0] AS r, p[1] AS m
  WITH i, collect([r.id, r.at, r.props, m.id,
      CASE WHEN h.nodes THEN [m.kind, m.owner, m.props] END,
      [(m)-[t:PACTE_EDGE]->(q:PacteNode) WHERE h.then <> [] AND t.type IN h.then
       | [t.id, t.type, q.id, t.at, t.props,
          CASE WHEN h.then_nodes THEN [q.kind, q.owner, q.props] END]]]) AS rows
  RETURN collect([i, rows]) AS hops
}
"""
# The wrapped data keys the key vault keeps for a node (pacte.crypto.neo4j_vault), read
# with it: a customer-360 whose key this process has not cached then needs no second
# round trip for it. They are read after the vault's destruction counter (`seq`, the
# first clause; the subquery uses it, so it cannot run before), so that keys read
# with a counter this process has already seen cannot be keys destroyed since (see
# `Neo4jStore.prefetched_keys`). Wrapped keys only: the KEK never leaves the servers.
_SEQ = "OPTIONAL MATCH (v:PacteVault {key: 'vault'}) WITH v.destroy_seq AS seq "
_KEYS = (
    "COLLECT { MATCH (k:PacteDek {customer_id: n.id}) WHERE seq IS NOT NULL"
    " RETURN [k.customer_id, k.version, k.kek_version, k.wrapped] }"
)
AROUND = (
    _SEQ + "MATCH (n:PacteNode {id: $id}) USING INDEX SEEK n:PacteNode(id)"
    + _HOPS + "RETURN n.id, n.kind, n.owner, n.props, hops, " + _KEYS + ", seq"
)
# A page of nodes of `$kind` in id order (after `$after`, or from the first, as the
# store's scan reads it), each with its hops as in AROUND: a page of customers and
# the 360 of each in one round trip.
PAGE_AROUND = (
    _SEQ + "MATCH (n:PacteNode) USING INDEX SEEK n:PacteNode(kind, id) "
    "WHERE n.kind = $kind AND n.id > $after "
    "WITH seq, n ORDER BY n.kind, n.id LIMIT $limit" + _HOPS
    # max(seq): one value (every row holds the same), and a row even for an empty page.
    + "RETURN collect([n.id, n.kind, n.owner, n.props, hops, " + _KEYS + "]), max(seq)"
)
PAGE_AROUND_FIRST = PAGE_AROUND.replace("n.id > $after", "n.id IS NOT NULL")
# The nodes an index entry points at, each with its hops as in AROUND, in one round
# trip: a lookup by email and the customer-360 of what it finds. When the entry points
# at nothing, the first node of `$kind` after `$after` (or the first of all) is read in
# their place, as the session's decoy read of a miss picks it (G3, timing): a miss then
# makes the same round trips as a hidden match.
LOOKUP_AROUND = (
    _SEQ + "CALL () {"
    " MATCH (i:PacteIndex {name: $name, token: $token})"
    " USING INDEX SEEK i:PacteIndex(name, token)"
    " WITH i.node_id AS node_id ORDER BY node_id RETURN collect(node_id) AS owners"
    " } "
    "CALL (owners) {"
    " WITH owners WHERE size(owners) = 0"
    " CALL () {"
    "  MATCH (d:PacteNode) USING INDEX SEEK d:PacteNode(kind, id)"
    "  WHERE d.kind = $kind AND d.id > $after"
    "  WITH d ORDER BY d.kind, d.id LIMIT 1 RETURN d.id AS did"
    "  UNION ALL"
    "  MATCH (d:PacteNode) USING INDEX SEEK d:PacteNode(kind, id)"
    "  WHERE d.kind = $kind AND d.id IS NOT NULL"
    "  WITH d ORDER BY d.kind, d.id LIMIT 1 RETURN d.id AS did"
    " }"
    # The next one when there is one (it sorts after the first), else the first.
    " RETURN max(did) AS decoy"
    " } "
    "WITH seq, owners, owners + CASE WHEN decoy IS NULL THEN [] ELSE [decoy] END AS ids "
    "CALL (ids, seq) {"
    " UNWIND ids AS nid MATCH (n:PacteNode {id: nid}) USING INDEX SEEK n:PacteNode(id)"
    + _HOPS + " RETURN collect([n.id, n.kind, n.owner, n.props, hops, " + _KEYS + "]) AS around"
    " } "
    "RETURN owners, around, seq"
)


def _props(text: str) -> dict[str, Value]:
    # Most edges carry no properties: no JSON parser for those. A text that is not one
    # JSON object is refused: no store writes one.
    if text == "{}":
        return {}
    if text[:1] != "{":
        raise ValueError("props are not JSON objects")
    return decode_props(text)


def node_row(row: Sequence[Any]) -> Node:
    return Node(row[1], row[0], _props(row[3]), row[2])


def edge_row(row: Sequence[Any]) -> Edge:
    return Edge(row[1], row[0], row[2], row[3], row[4], _props(row[5]))


# -- read scopes ---------------------------------------------------------------------------


def _newest_first(edges: list[Edge]) -> list[Edge]:
    if len(edges) > 1:  # mostly one: an interaction is about one product
        edges.sort(key=lambda e: (e.at, e.id), reverse=True)
    return edges


class Scope:
    """What the read scopes of one thread (or task) have read: nodes, and edge lists.

    An edge list is newest first, and either complete or the newest `limit` edges.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.absent: set[str] = set()
        # (node id, type, direction) -> (newest-first edges, whether that is all of them)
        self.lists: dict[tuple[str, str, str], tuple[list[Edge], bool]] = {}
        # (index name, token as hex) -> the node ids the entry points at, sorted
        self.lookups: dict[tuple[str, str], list[str]] = {}
        # (kind, after, limit) -> the ids of that page of a scan, in id order
        self.pages: dict[tuple[str, str | None, int], list[str]] = {}
        # node id -> (the vault's destruction counter read before them, its wrapped
        # data keys as the vault's rows: [customer id, version, KEK version, wrapped])
        self.keys: dict[str, tuple[int, list[Any]]] = {}

    def clear(self) -> None:
        self.nodes, self.absent, self.lists = {}, set(), {}
        self.lookups, self.pages, self.keys = {}, {}, {}

    def add_page(self, kind: str, after: str | None, limit: int, hops: Sequence[Hop],
                 value: Sequence[Any]) -> None:
        """Remember the answer of PAGE_AROUND."""
        rows, seq = value
        for row in rows:
            self.add(row[0], hops, row, seq=seq)
        self.pages[(kind, after, limit)] = sorted(str(row[0]) for row in rows)

    def add_lookup(self, name: str, token: str, hops: Sequence[Hop],
                   value: Sequence[Any] | None) -> None:
        """Remember the answer of LOOKUP_AROUND."""
        if value is None:
            return
        owners, around, seq = value
        self.lookups[(name, token)] = [str(o) for o in owners]
        for row in around:
            self.add(row[0], hops, row, seq=seq)

    def add(self, node_id: str, hops: Sequence[Hop], value: Sequence[Any] | None, *,
            seq: int | None = None) -> None:
        """Remember the answer of AROUND (None: there is no such node), or a row of
        PAGE_AROUND or LOOKUP_AROUND with the `seq` that came with it."""
        if value is None:
            self.absent.add(node_id)
            for h in hops:
                self.lists[(node_id, h.type, h.direction)] = ([], True)
            return
        if seq is None and len(value) > 6:
            seq = value[6]
        if seq is not None and value[5]:
            self.keys[node_id] = (int(seq), list(value[5]))
        found: dict[int, list[Any]] = {int(i): rows for i, rows in value[4]}
        nodes, absent = self.nodes, self.absent
        nodes[node_id] = Node(value[1], value[0], _props(value[3]), value[2])
        absent.discard(node_id)
        for i, h in enumerate(hops):
            type_, out, then_types = h.type, h.direction == "out", h.then
            listed: list[Edge] = []
            for edge_id, at, text, other, node, then in found.get(i, ()):
                listed.append(Edge(type_, edge_id, node_id, other, at, _props(text)) if out
                              else Edge(type_, edge_id, other, node_id, at, _props(text)))
                if node is not None:
                    nodes[other] = Node(node[0], other, _props(node[2]), node[1])
                    absent.discard(other)
                if then_types:
                    self._add_then(other, then_types, then)
            complete = h.limit is None or len(listed) < h.limit
            self.lists[(node_id, type_, h.direction)] = (listed, complete)

    def _add_then(self, node_id: str, types: Sequence[str], rows: Sequence[Any]) -> None:
        """The edges out of `node_id` of the `types` a hop follows next, with their far
        nodes (rows of `_HOPS`: [id, type, far node's id, at, props, far node or null])."""
        nodes, absent = self.nodes, self.absent
        by_type: dict[str, list[Edge]] = {t: [] for t in types}
        for edge_id, type_, far_id, at, text, far in rows:
            by_type[type_].append(Edge(type_, edge_id, node_id, far_id, at, _props(text)))
            if far is not None:
                nodes[far_id] = Node(far[0], far_id, _props(far[2]), far[1])
                absent.discard(far_id)
        for t, next_edges in by_type.items():
            self.lists[(node_id, t, "out")] = (_newest_first(next_edges), True)

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

