"""`reach`: a node's edges with the nodes they lead to and where those lead next.

One statement on SQLite (`JoinedReads`); on a store without the capability (Neo4j) the
same answer from `edges`, `get_nodes` and `edges_many`. Both must give what those three
give, which is how the features read before.
"""

from __future__ import annotations

import itertools

from pacte.graph.sqlite_store import SQLiteStore
from pacte.graph.store import Cursor, Edge, JoinedReads, Node, Reached, Store, WriteBatch, reach


def _world(store: Store) -> None:
    nodes = [Node("Customer", "c1", {"segment": "gold"}, owner="c1"),
             Node("Customer", "c2", {}, owner="c2"),
             Node("Product", "p1", {"name": "Lamp", "price": 19.5}),
             Node("Product", "p2", {"name": "Desk", "price": 2**70})]
    edges = [Edge("BOUGHT", "b1", "c1", "p1", 10, {"amount": 19.5}),
             Edge("BOUGHT", "b2", "c1", "p2", 20),
             Edge("BOUGHT", "b3", "c1", "p1", 30, {"amount": 1.0})]
    for n in range(6):
        iid = f"i{n}"
        nodes.append(Node("Interaction", iid, {"channel": "chat", "n": n}, owner="c1"))
        # Two edges share a time: (at, id) orders them.
        edges.append(Edge("HAD", f"h{n}", "c1", iid, 100 + 10 * (n // 2), {"k": n}))
        if n % 3:  # some interactions are about a product, one about two
            edges.append(Edge("ABOUT", f"a{n}", iid, "p1", 5))
        if n == 4:
            edges.append(Edge("ABOUT", "a4b", iid, "p2", 6))
    store.write(WriteBatch(nodes=nodes, edges=edges))


def _expected(store: Store, node_id: str, type: str, *, limit: int | None,
              before: Cursor | None, since: int | None, then: str | None) -> list[Reached]:
    """The answer written out from the three plain reads."""
    edges = [e for e in store.edges(node_id, type, limit=limit, before=before)
             if since is None or e.at >= since]
    nodes = store.get_nodes([e.dst for e in edges]) if edges else {}
    further = store.edges_many([e.dst for e in edges], then) if then and edges else {}
    return [(e, nodes.get(e.dst), further[e.dst][0].dst if further.get(e.dst) else None)
            for e in edges]


def test_reach_answers_as_the_plain_reads_do(store: Store) -> None:
    _world(store)
    befores = [None, Cursor(120, "h5"), Cursor(110, "h3"), Cursor(110, "h2"), Cursor(0, "")]
    cases = itertools.product([("HAD", "ABOUT"), ("HAD", None), ("BOUGHT", None)],
                              [None, 1, 2, 5, 100], befores, [None, 105, 110, 200])
    for (type, then), limit, before, since in cases:
        got = reach(store, "c1", type, limit=limit, before=before, since=since, then=then)
        assert got == _expected(store, "c1", type, limit=limit, before=before, since=since,
                                then=then), (type, then, limit, before, since)
    assert reach(store, "c2", "HAD", then="ABOUT") == []
    assert reach(store, "nobody", "HAD", then="ABOUT") == []


def test_reach_gives_props_exactly(store: Store) -> None:
    _world(store)
    got = reach(store, "c1", "BOUGHT")
    assert [(e.id, dict(e.props)) for e, _, _ in got] == [
        ("b3", {"amount": 1.0}), ("b2", {}), ("b1", {"amount": 19.5})]
    desk = got[1][1]
    assert desk is not None and desk.props["price"] == 2**70
    assert type(desk.props["price"]) is int


def test_sqlite_joins_in_one_statement(sqlite_store: SQLiteStore) -> None:
    assert isinstance(sqlite_store, JoinedReads)
    _world(sqlite_store)
    statements: list[str] = []
    sqlite_store._db.set_trace_callback(statements.append)
    try:
        got = reach(sqlite_store, "c1", "HAD", limit=3, before=Cursor(120, "h5"), since=0,
                    then="ABOUT")
    finally:
        sqlite_store._db.set_trace_callback(None)
    assert [(e.id, n.id if n else None, p) for e, n, p in got] == [
        ("h4", "i4", "p2"), ("h3", "i3", None), ("h2", "i2", "p1")]
    # Not counting the read cache's check of the file's version, which reads no row.
    assert len([s for s in statements if s != "PRAGMA data_version"]) == 1


def test_sqlite_reach_shows_an_absent_node_as_none(sqlite_store: SQLiteStore) -> None:
    # SQLite does not refuse a dangling edge (Neo4j cannot hold one): it reads as absent.
    sqlite_store.write(WriteBatch(nodes=[Node("Customer", "c1", {})],
                                  edges=[Edge("HAD", "h1", "c1", "gone", 1)]))
    assert reach(sqlite_store, "c1", "HAD", then="ABOUT") == [
        (Edge("HAD", "h1", "c1", "gone", 1), None, None)]
