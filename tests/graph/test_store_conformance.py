"""One conformance suite for every Store backend (the `store` fixture is parametrised)."""

from __future__ import annotations

import pytest

from pacte.errors import StorageError
from pacte.graph.store import Cursor, Edge, Hop, IndexEntry, Node, ScopedReads, Store, WriteBatch


def _customer(cid: str, **props: object) -> Node:
    return Node("Customer", cid, {"segment": "gold", **props}, owner=cid)  # type: ignore[arg-type]


def _had(cid: str, iid: str, at: int) -> Edge:
    return Edge("HAD", f"h_{iid}", cid, iid, at)


def test_implements_protocol(store: Store) -> None:
    assert isinstance(store, Store)


def test_a_read_scope_answers_as_the_store_does_and_sees_its_own_writes(store: Store) -> None:
    if not isinstance(store, ScopedReads):
        # An optional capability: SQLite, whose reads are local, does not offer it.
        assert type(store).__name__ == "SQLiteStore"
        return
    store.write(WriteBatch(nodes=[_customer("c1"), Node("Interaction", "i1", {}, owner="c1"),
                                  Node("Interaction", "i2", {}, owner="c1")],
                           edges=[_had("c1", "i1", 10), _had("c1", "i2", 20)]))
    hops = [Hop("HAD", limit=1, nodes=True)]
    outside = (store.get_nodes(["c1", "i2", "nobody"]), store.edges("c1", "HAD", limit=1),
               store.edges("c1", "HAD"))
    assert store.prefetch("c1", hops) is False  # outside a scope: nothing is read
    with store.read_scope(around="c1", hops=hops):
        inside = (store.get_nodes(["c1", "i2", "nobody"]), store.edges("c1", "HAD", limit=1),
                  store.edges("c1", "HAD"))
        assert inside == outside
        store.write(WriteBatch(nodes=[_customer("c1", segment="silver")]))
        assert store.get_nodes(["c1"])["c1"].props["segment"] == "silver"


def test_node_round_trip_keeps_every_value_type(store: Store) -> None:
    every_byte = bytes(range(256))
    props = {"s": "é漢字\u0000x", "i": -(2**53), "f": 1.5, "t": True, "n": None,
             "b": every_byte, "empty": b"", "l": ["a", "b"]}
    store.write(WriteBatch(nodes=[Node("Customer", "c1", props, owner="c1")]))
    got = store.get_nodes(["c1", "missing"])
    assert set(got) == {"c1"}
    node = got["c1"]
    assert node.kind == "Customer" and node.owner == "c1"
    assert dict(node.props) == props
    assert isinstance(node.props["b"], bytes)


def test_put_is_an_upsert(store: Store) -> None:
    store.write(WriteBatch(nodes=[_customer("c1", x=1)]))
    store.write(WriteBatch(nodes=[_customer("c1", x=2)]))
    assert store.get_nodes(["c1"])["c1"].props["x"] == 2
    assert store.count_nodes() == {"Customer": 1}


def test_batch_is_all_or_nothing(store: Store) -> None:
    store.write(WriteBatch(nodes=[_customer("c0")]))
    bad = WriteBatch(
        nodes=[_customer("c1"), _customer("c2")],
        # A value no backend can store makes the batch fail part-way through.
        edges=[Edge("HAD", "e1", "c1", "c2", 1, {"bad": object()})],  # type: ignore[dict-item]
    )
    with pytest.raises((StorageError, TypeError, ValueError)):
        store.write(bad)
    assert set(store.get_nodes(["c0", "c1", "c2"])) == {"c0"}
    assert store.count_edges() == {}


def test_edges_newest_first_with_stable_cursor_pages(store: Store) -> None:
    nodes = [_customer("c1")] + [Node("Interaction", f"i{n:02}", {}, owner="c1")
                                 for n in range(25)]
    # Equal times on purpose: ties are broken by edge id, so pages never skip or repeat.
    edges = [_had("c1", f"i{n:02}", 1000 + n // 3) for n in range(25)]
    store.write(WriteBatch(nodes=nodes, edges=edges))
    seen: list[str] = []
    before: Cursor | None = None
    while True:
        page = store.edges("c1", "HAD", limit=7, before=before)
        seen.extend(e.id for e in page)
        if len(page) < 7:
            break
        before = Cursor(page[-1].at, page[-1].id)
    expected = [e.id for e in sorted(edges, key=lambda e: (e.at, e.id), reverse=True)]
    assert seen == expected
    incoming = store.edges("i05", "HAD", direction="in")
    assert [e.src for e in incoming] == ["c1"]
    assert store.edges("c1", "OWNS") == []


def test_edges_many_and_find_edges(store: Store) -> None:
    store.write(WriteBatch(
        nodes=[_customer("c1"), _customer("c2"), Node("Purpose", "marketing", {})],
        edges=[
            Edge("CONSENTED", "k1", "c1", "marketing", 10, {"status": "granted"}),
            Edge("CONSENTED", "k2", "c1", "marketing", 20, {"status": "withdrawn"}),
            Edge("CONSENTED", "k3", "c2", "marketing", 15, {"status": "granted"}),
        ],
    ))
    many = store.edges_many(["c1", "c2", "c3"], "CONSENTED")
    assert [e.id for e in many["c1"]] == ["k2", "k1"]
    assert [e.id for e in many["c2"]] == ["k3"]
    assert many["c3"] == []
    into = store.edges_many(["marketing"], "CONSENTED", direction="in")
    assert [e.id for e in into["marketing"]] == ["k2", "k3", "k1"]
    assert [e.props["status"] for e in store.find_edges("CONSENTED", "c1", "marketing")] == [
        "withdrawn", "granted"]


def test_edge_sources_list_each_source_once_in_id_order(store: Store) -> None:
    ids = ["c07", "c03", "c11", "c01", "c05"]
    store.write(WriteBatch(
        nodes=[*(_customer(c) for c in [*ids, "c02", "c09"]), Node("Purpose", "p1", {}),
               Node("Purpose", "p2", {})],
        edges=[*(Edge("CONSENTED", f"k_{c}", c, "p1", 10) for c in ids),
               Edge("CONSENTED", "k_again", "c05", "p1", 20),  # a second edge, one source
               Edge("CONSENTED", "k_other", "c02", "p2", 10),  # another purpose
               Edge("HAD", "h_x", "c09", "p1", 10)]))  # another type
    assert store.edge_sources("p1", "CONSENTED") == ["c01", "c03", "c05", "c07", "c11"]
    assert store.edge_sources("p1", "CONSENTED", after="c03", limit=2) == ["c05", "c07"]
    assert store.edge_sources("p1", "CONSENTED", after="c11") == []
    assert store.edge_sources("p2", "CONSENTED") == ["c02"]
    assert store.edge_sources("nowhere", "CONSENTED") == []


def test_blind_index_lookup(store: Store) -> None:
    store.write(WriteBatch(
        nodes=[_customer("c1"), _customer("c2")],
        index=[IndexEntry("Customer.email", b"\x01" * 8, "c1"),
               IndexEntry("Customer.email", b"\x01" * 8, "c2"),
               IndexEntry("Customer.phone", b"\x01" * 8, "c1")],
    ))
    assert sorted(store.lookup("Customer.email", b"\x01" * 8)) == ["c1", "c2"]
    assert store.lookup("Customer.email", b"\x02" * 8) == []
    store.write(WriteBatch(unindex=["c2"], index=[IndexEntry("Customer.email", b"\x03" * 8,
                                                              "c2")]))
    assert store.lookup("Customer.email", b"\x01" * 8) == ["c1"]
    assert store.lookup("Customer.email", b"\x03" * 8) == ["c2"]


def test_lookup_many_answers_as_lookup_does_for_each_token(store: Store) -> None:
    tokens = [n.to_bytes(16, "big") for n in range(1, 602)]  # several chunks
    store.write(WriteBatch(
        nodes=[_customer("c1"), _customer("c2")],
        index=[*(IndexEntry("Identity.email", t, "c1") for t in tokens[::2]),
               IndexEntry("Identity.email", tokens[4], "c2"),
               IndexEntry("Identity.phone", tokens[1], "c2"),
               IndexEntry("Identity.email", b"", "c2")]))
    asked = [*tokens, tokens[4], b""]  # a repeat and an empty token
    found = store.lookup_many("Identity.email", asked)
    assert found == {t: store.lookup("Identity.email", t) for t in tokens
                     if store.lookup("Identity.email", t)}
    assert found[tokens[4]] == ["c1", "c2"] and tokens[1] not in found
    assert len(found) == 301
    assert store.lookup_many("Identity.email", []) == {}
    assert store.lookup_many("Identity.nothing", tokens) == {}


def test_delete_node_removes_its_edges_and_index_entries(store: Store) -> None:
    store.write(WriteBatch(
        nodes=[_customer("c1"), _customer("c2"), Node("Interaction", "i1", {}, owner="c1")],
        edges=[_had("c1", "i1", 5), Edge("REFERRED", "r1", "c2", "c1", 6)],
        index=[IndexEntry("Customer.email", b"t", "c1")],
    ))
    assert sorted(store.owned_by("c1")) == ["c1", "i1"]
    store.write(WriteBatch(delete_nodes=store.owned_by("c1")))
    assert set(store.get_nodes(["c1", "c2", "i1"])) == {"c2"}
    assert store.edges("c2", "REFERRED") == []
    assert store.lookup("Customer.email", b"t") == []
    assert store.owned_by("c1") == []
    assert store.count_edges() == {}


def test_scan_nodes_pages_by_id(store: Store) -> None:
    store.write(WriteBatch(nodes=[_customer(f"c{n:03}") for n in range(30)]
                           + [Node("Product", "p1", {"name": "lamp"})]))
    ids: list[str] = []
    after: str | None = None
    while page := store.scan_nodes("Customer", after=after, limit=8):
        ids.extend(n.id for n in page)
        after = page[-1].id
    assert ids == [f"c{n:03}" for n in range(30)]
    assert [n.id for n in store.scan_nodes("Product")] == ["p1"]


def test_counts_and_iteration_cover_everything(store: Store) -> None:
    nodes = [_customer(f"c{n}") for n in range(5)] + [Node("Product", "p1", {})]
    edges = [Edge("BOUGHT", f"b{n}", f"c{n}", "p1", n, {"amount": 9.5}) for n in range(5)]
    index = [IndexEntry("Customer.email", bytes([n]) * 4, f"c{n}") for n in range(5)]
    store.write(WriteBatch(nodes=nodes, edges=edges, index=index))
    assert store.count_nodes() == {"Customer": 5, "Product": 1}
    assert store.count_edges() == {"BOUGHT": 5}
    got_nodes = [n for batch in store.iter_nodes(batch=2) for n in batch]
    got_edges = [e for batch in store.iter_edges(batch=2) for e in batch]
    got_index = [i for batch in store.iter_index(batch=2) for i in batch]
    assert sorted(n.id for n in got_nodes) == sorted(n.id for n in nodes)
    assert sorted(e.id for e in got_edges) == sorted(e.id for e in edges)
    assert sorted((i.name, i.token, i.node_id) for i in got_index) == sorted(
        (i.name, i.token, i.node_id) for i in index)


def test_meta(store: Store) -> None:
    assert store.get_meta("nothing") is None
    store.set_meta("migration", "step-3")
    store.set_meta("migration", "done")
    assert store.get_meta("migration") == "done"


def test_later_put_of_the_same_id_in_one_batch_wins(store: Store) -> None:
    store.write(WriteBatch(nodes=[_customer("c1", v="zzz-first"), _customer("c1", v="aaa-last")],
                           edges=[Edge("HAD", "e1", "c1", "c1", 1, {"v": "zzz"}),
                                  Edge("HAD", "e1", "c1", "c1", 1, {"v": "aaa"})]))
    assert store.get_nodes(["c1"])["c1"].props["v"] == "aaa-last"
    assert store.edges("c1", "HAD")[0].props["v"] == "aaa"


def test_strings_that_look_like_tagged_bytes_stay_strings(store: Store) -> None:
    tricky = {"a": "\x00b64:AAAA", "b": "\x00s:x", "c": "\x00", "d": b"\x00b64:"}
    store.write(WriteBatch(nodes=[Node("Product", "p1", tricky)]))
    assert dict(store.get_nodes(["p1"])["p1"].props) == tricky


def test_an_event_id_names_one_node(store: Store) -> None:
    """The event index is unique per token: a second node for it is refused whole."""
    from pacte.errors import Conflict
    from pacte.graph.store import EVENT_INDEX

    store.write(WriteBatch(nodes=[_customer("c1"), Node("Interaction", "i1", {}, owner="c1")],
                           edges=[_had("c1", "i1", 10)],
                           index=[IndexEntry(EVENT_INDEX, b"ev-token", "i1")]))
    # The same entry again is an idempotent put, not a conflict.
    store.write(WriteBatch(index=[IndexEntry(EVENT_INDEX, b"ev-token", "i1")]))
    with pytest.raises(Conflict):
        store.write(WriteBatch(nodes=[Node("Interaction", "i2", {}, owner="c1")],
                               edges=[_had("c1", "i2", 11)],
                               index=[IndexEntry(EVENT_INDEX, b"ev-token", "i2")]))
    assert store.get_nodes(["i2"]) == {}
    assert [e.dst for e in store.edges("c1", "HAD")] == ["i1"]
    assert store.lookup(EVENT_INDEX, b"ev-token") == ["i1"]
    # Other indexes may hold one token for several nodes (blind-index collisions).
    store.write(WriteBatch(nodes=[_customer("c2"), _customer("c3")],
                           index=[IndexEntry("Customer.email", b"tok", "c2"),
                                  IndexEntry("Customer.email", b"tok", "c3")]))
    assert store.lookup("Customer.email", b"tok") == ["c2", "c3"]
