"""Neo4jStore against a real Neo4j 5.26 server (started once per session by the fixture).

Every test name contains `neo4j`, so `-k neo4j` selects them and `-k "not neo4j"` skips them.
"""
from __future__ import annotations

import socket
import threading
from typing import Any

import neo4j
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacte.errors import ConfigError, StorageError
from pacte.graph.neo4j_store import Hop, Neo4jStore, _mapped
from pacte.graph.store import Cursor, Edge, IndexEntry, Node, Store, Value, WriteBatch
from pacte.graph.stores import open_store
from tests.neo4j_fixture import Neo4jServer, server_reads

pytestmark = pytest.mark.neo4j

EVERY_BYTE = bytes(range(256))


def _customer(cid: str, **props: Value) -> Node:
    return Node("Customer", cid, {"segment": "gold", **props}, owner=cid)


def _had(cid: str, iid: str, at: int, **props: Value) -> Edge:
    return Edge("HAD", f"h_{iid}", cid, iid, at, props)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- round trips ------------------------------------------------------------------------


def test_neo4j_store_implements_the_protocol(neo4j_store: Neo4jStore) -> None:
    assert isinstance(neo4j_store, Store)
    assert neo4j_store.uri.startswith("neo4j://127.0.0.1:")


def test_neo4j_node_round_trip_keeps_every_value_exactly(neo4j_store: Neo4jStore) -> None:
    props: dict[str, Value] = {
        "bytes": EVERY_BYTE, "empty_bytes": b"", "nul_bytes": b"\x00" * 3,
        "text": "é漢字\u0000x\U0001f600\ud7ff\ufffd", "empty": "",
        "int": -(2**63), "big": 2**80, "float": 0.1 + 0.2, "neg_zero": -0.0,
        "true": True, "false": False, "none": None, "list": ["a", "", "ü"],
        "\u00e9\u0000key": 1,
    }
    neo4j_store.write(WriteBatch(nodes=[Node("Customer", "c1", props, owner="c1")]))
    got = neo4j_store.get_nodes(["c1", "missing", "c1"])
    assert set(got) == {"c1"}
    node = got["c1"]
    assert (node.kind, node.id, node.owner) == ("Customer", "c1", "c1")
    assert dict(node.props) == props
    for key, value in props.items():
        assert type(node.props[key]) is type(value), key
    assert node.props["bytes"] == EVERY_BYTE


def test_neo4j_string_that_looks_like_tagged_bytes_round_trips(neo4j_store: Neo4jStore
                                                               ) -> None:
    props: dict[str, Value] = {"s": "\x00b64:AAAA"}
    neo4j_store.write(WriteBatch(nodes=[Node("Customer", "c1", props)]))
    assert dict(neo4j_store.get_nodes(["c1"])["c1"].props) == props


def test_neo4j_ids_and_kinds_are_plain_unicode(neo4j_store: Neo4jStore) -> None:
    odd = "ïd with spaces/and'quotes\"and`backticks`})--"
    neo4j_store.write(WriteBatch(
        nodes=[Node("Kind `x`", odd, {}), Node("Kind `x`", "b", {})],
        edges=[Edge("TYPE `y`", "e'1", odd, "b", 1)],
        index=[IndexEntry("Name 'n'", EVERY_BYTE, odd)],
    ))
    assert neo4j_store.get_nodes([odd])[odd].kind == "Kind `x`"
    assert [e.id for e in neo4j_store.edges(odd, "TYPE `y`")] == ["e'1"]
    assert neo4j_store.lookup("Name 'n'", EVERY_BYTE) == [odd]
    assert neo4j_store.count_nodes() == {"Kind `x`": 2}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(props=st.dictionaries(
    st.text(max_size=8),
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
              st.floats(allow_nan=False), st.text(max_size=20), st.binary(max_size=40),
              st.lists(st.text(max_size=5), max_size=3)),
    max_size=6,
))
def test_neo4j_props_round_trip_property(neo4j_store: Neo4jStore, props: dict[str, Value]
                                         ) -> None:
    neo4j_store.write(WriteBatch(nodes=[Node("P", "p", props)],
                                 edges=[Edge("SELF", "s", "p", "p", 7, props)]))
    assert dict(neo4j_store.get_nodes(["p"])["p"].props) == props
    assert dict(neo4j_store.find_edges("SELF", "p", "p")[0].props) == props


def test_neo4j_put_is_an_upsert(neo4j_store: Neo4jStore) -> None:
    neo4j_store.write(WriteBatch(nodes=[_customer("c1", x=1)]))
    neo4j_store.write(WriteBatch(nodes=[Node("Customer", "c1", {"x": 2}, owner=None)]))
    node = neo4j_store.get_nodes(["c1"])["c1"]
    assert dict(node.props) == {"x": 2} and node.owner is None
    assert neo4j_store.owned_by("c1") == []
    assert neo4j_store.count_nodes() == {"Customer": 1}


def test_neo4j_repeated_ids_in_one_batch_last_put_wins(neo4j_store: Neo4jStore) -> None:
    neo4j_store.write(WriteBatch(
        nodes=[_customer("c1", v=1), _customer("c2"), _customer("c1", v=2)],
        edges=[Edge("R", "e", "c1", "c2", 1, {"v": 1}), Edge("R", "e", "c2", "c1", 2, {"v": 2})],
        index=[IndexEntry("n", b"t", "c1"), IndexEntry("n", b"t", "c1")],
    ))
    assert neo4j_store.get_nodes(["c1"])["c1"].props["v"] == 2
    assert [(e.src, e.dst, e.at) for e in neo4j_store.find_edges("R", "c2", "c1")] == [
        ("c2", "c1", 2)]
    assert neo4j_store.count_edges() == {"R": 1}
    assert neo4j_store.lookup("n", b"t") == ["c1"]


def test_neo4j_edge_upsert_can_move_an_edge(neo4j_store: Neo4jStore) -> None:
    neo4j_store.write(WriteBatch(nodes=[_customer("a"), _customer("b"), _customer("c")],
                                 edges=[Edge("REFERRED", "r1", "a", "b", 5, {"n": 1})]))
    neo4j_store.write(WriteBatch(edges=[Edge("REFERRED", "r1", "a", "c", 6, {"n": 2})]))
    assert neo4j_store.edges("a", "REFERRED") == [Edge("REFERRED", "r1", "a", "c", 6, {"n": 2})]
    assert neo4j_store.edges("b", "REFERRED", direction="in") == []


# -- batches are all or nothing -----------------------------------------------------------


def test_neo4j_batch_failing_midway_leaves_nothing(neo4j_store: Neo4jStore) -> None:
    neo4j_store.write(WriteBatch(
        nodes=[_customer("c0"), _customer("c9")],
        edges=[Edge("REFERRED", "r0", "c0", "c9", 1)],
        index=[IndexEntry("Customer.email", b"old", "c0")],
    ))
    # Deletions and node puts run first, on the server; the edge to a missing node fails
    # afterwards, inside the same transaction.
    bad = WriteBatch(
        nodes=[_customer("c1"), _customer("c2")],
        edges=[Edge("HAD", "e1", "c1", "c2", 1), Edge("HAD", "e2", "c1", "nowhere", 2)],
        index=[IndexEntry("Customer.email", b"new", "c1")],
        delete_nodes=["c9"], delete_edges=["r0"], unindex=["c0"],
    )
    with pytest.raises(StorageError) as info:
        neo4j_store.write(bad)
    assert not info.value.retryable
    assert "nowhere" not in str(info.value)
    assert set(neo4j_store.get_nodes(["c0", "c1", "c2", "c9"])) == {"c0", "c9"}
    assert neo4j_store.count_edges() == {"REFERRED": 1}
    assert neo4j_store.lookup("Customer.email", b"old") == ["c0"]
    assert neo4j_store.lookup("Customer.email", b"new") == []


def test_neo4j_batch_with_an_unstorable_value_leaves_nothing(neo4j_store: Neo4jStore) -> None:
    bad = WriteBatch(nodes=[_customer("c1")],
                     edges=[Edge("HAD", "e1", "c1", "c1", 1, {"bad": object()})])  # type: ignore[dict-item]
    with pytest.raises((StorageError, TypeError, ValueError)):
        neo4j_store.write(bad)
    assert neo4j_store.get_nodes(["c1"]) == {}


def test_neo4j_large_batch_is_one_transaction(neo4j_store: Neo4jStore) -> None:
    n = 3000
    nodes = [_customer(f"c{i:05}", blob=EVERY_BYTE[: i % 256]) for i in range(n)]
    edges = [Edge("REFERRED", f"r{i:05}", f"c{i:05}", f"c{(i + 1) % n:05}", i) for i in range(n)]
    index = [IndexEntry("Customer.email", i.to_bytes(4, "big"), f"c{i:05}") for i in range(n)]
    neo4j_store.write(WriteBatch(nodes=nodes, edges=edges, index=index))
    assert neo4j_store.count_nodes() == {"Customer": n}
    assert neo4j_store.count_edges() == {"REFERRED": n}
    assert neo4j_store.lookup("Customer.email", (1234).to_bytes(4, "big")) == ["c01234"]


# -- edges ----------------------------------------------------------------------------------


def test_neo4j_edges_newest_first_with_stable_cursor_pages(neo4j_store: Neo4jStore) -> None:
    nodes = [_customer("c1")] + [Node("Interaction", f"i{n:02}", {}, owner="c1")
                                 for n in range(25)]
    # Equal times on purpose: ties are broken by edge id, so pages never skip or repeat.
    edges = [_had("c1", f"i{n:02}", 1000 + n // 3) for n in range(25)]
    neo4j_store.write(WriteBatch(nodes=nodes, edges=edges))
    expected = [e.id for e in sorted(edges, key=lambda e: (e.at, e.id), reverse=True)]
    for size in (1, 3, 7, 25, 100):
        seen: list[str] = []
        before: Cursor | None = None
        while page := neo4j_store.edges("c1", "HAD", limit=size, before=before):
            seen.extend(e.id for e in page)
            before = Cursor(page[-1].at, page[-1].id)
        assert seen == expected, size
    assert [e.id for e in neo4j_store.edges("c1", "HAD")] == expected
    # The cursor of an edge deleted since still continues at the right place.
    after_gone = neo4j_store.edges("c1", "HAD", before=Cursor(1004, "h_i125"))
    assert [e.id for e in after_gone] == expected[expected.index("h_i12"):]
    # New edges arriving between pages do not disturb the pages still to come.
    first = neo4j_store.edges("c1", "HAD", limit=5)
    neo4j_store.write(WriteBatch(nodes=[Node("Interaction", "new", {}, owner="c1")],
                                 edges=[_had("c1", "new", 9999)]))
    rest = neo4j_store.edges("c1", "HAD", before=Cursor(first[-1].at, first[-1].id))
    assert [e.id for e in first + rest] == expected
    incoming = neo4j_store.edges("i05", "HAD", direction="in")
    assert [(e.src, e.dst, e.type) for e in incoming] == [("c1", "i05", "HAD")]
    assert neo4j_store.edges("i05", "HAD") == []
    assert neo4j_store.edges("c1", "OWNS") == []
    assert neo4j_store.edges("missing", "HAD") == []


def test_neo4j_edges_keep_times_and_props(neo4j_store: Neo4jStore) -> None:
    at = 1_700_000_000_123_456  # microseconds: beyond 2**53, must stay exact
    neo4j_store.write(WriteBatch(nodes=[_customer("c1"), Node("Product", "p1", {})],
                                 edges=[Edge("BOUGHT", "b1", "c1", "p1", at,
                                             {"amount": 9.5, "note": EVERY_BYTE})]))
    [edge] = neo4j_store.edges("p1", "BOUGHT", direction="in")
    assert edge == Edge("BOUGHT", "b1", "c1", "p1", at, {"amount": 9.5, "note": EVERY_BYTE})


def test_neo4j_edges_many_and_find_edges(neo4j_store: Neo4jStore) -> None:
    neo4j_store.write(WriteBatch(
        nodes=[_customer("c1"), _customer("c2"), Node("Purpose", "marketing", {})],
        edges=[
            Edge("CONSENTED", "k1", "c1", "marketing", 10, {"status": "granted"}),
            Edge("CONSENTED", "k2", "c1", "marketing", 20, {"status": "withdrawn"}),
            Edge("CONSENTED", "k3", "c2", "marketing", 15, {"status": "granted"}),
            Edge("REFERRED", "x1", "c1", "c2", 30),
        ],
    ))
    many = neo4j_store.edges_many(["c1", "c2", "c3", "c1"], "CONSENTED")
    assert set(many) == {"c1", "c2", "c3"}
    assert [e.id for e in many["c1"]] == ["k2", "k1"]
    assert [e.id for e in many["c2"]] == ["k3"]
    assert many["c3"] == []
    into = neo4j_store.edges_many(["marketing"], "CONSENTED", direction="in")
    assert [e.id for e in into["marketing"]] == ["k2", "k3", "k1"]
    assert neo4j_store.edges_many([], "CONSENTED") == {}
    found = neo4j_store.find_edges("CONSENTED", "c1", "marketing")
    assert [e.props["status"] for e in found] == ["withdrawn", "granted"]
    assert neo4j_store.find_edges("CONSENTED", "marketing", "c1") == []
    assert neo4j_store.find_edges("REFERRED", "c1", "marketing") == []


# -- blind index, ownership, deletion ----------------------------------------------------


def test_neo4j_blind_index_lookup_and_unindex(neo4j_store: Neo4jStore) -> None:
    token = b"\x00\xff" * 16
    neo4j_store.write(WriteBatch(
        nodes=[_customer("c1"), _customer("c2")],
        index=[IndexEntry("Customer.email", token, "c2"),
               IndexEntry("Customer.email", token, "c1"),
               IndexEntry("Customer.phone", token, "c1")],
    ))
    assert neo4j_store.lookup("Customer.email", token) == ["c1", "c2"]
    assert neo4j_store.lookup("Customer.email", token[:-1]) == []
    assert neo4j_store.lookup("Customer.email", token + b"\x00") == []
    neo4j_store.write(WriteBatch(unindex=["c2"],
                                 index=[IndexEntry("Customer.email", b"\x03", "c2")]))
    assert neo4j_store.lookup("Customer.email", token) == ["c1"]
    assert neo4j_store.lookup("Customer.email", b"\x03") == ["c2"]
    assert neo4j_store.lookup("Customer.phone", token) == ["c1"]


def test_neo4j_delete_nodes_cascades_to_edges_and_index(neo4j_store: Neo4jStore) -> None:
    neo4j_store.write(WriteBatch(
        nodes=[_customer("c1"), _customer("c2"), Node("Interaction", "i1", {}, owner="c1")],
        edges=[_had("c1", "i1", 5), Edge("REFERRED", "r1", "c2", "c1", 6),
               Edge("REFERRED", "r2", "c2", "c2", 7)],
        index=[IndexEntry("Customer.email", b"t", "c1"), IndexEntry("Customer.email", b"u", "c2")],
    ))
    assert neo4j_store.owned_by("c1") == ["c1", "i1"]
    neo4j_store.write(WriteBatch(delete_nodes=neo4j_store.owned_by("c1")))
    assert set(neo4j_store.get_nodes(["c1", "c2", "i1"])) == {"c2"}
    assert [e.id for e in neo4j_store.edges("c2", "REFERRED")] == ["r2"]
    assert neo4j_store.lookup("Customer.email", b"t") == []
    assert neo4j_store.lookup("Customer.email", b"u") == ["c2"]
    assert neo4j_store.owned_by("c1") == []
    assert neo4j_store.count_edges() == {"REFERRED": 1}
    # Deleting what does not exist is not an error.
    neo4j_store.write(WriteBatch(delete_nodes=["c1", "ghost"], delete_edges=["ghost"],
                                 unindex=["ghost"]))


def test_neo4j_delete_then_put_in_one_batch_recreates(neo4j_store: Neo4jStore) -> None:
    neo4j_store.write(WriteBatch(nodes=[_customer("c1", v=1), _customer("c2")],
                                 edges=[Edge("REFERRED", "r1", "c1", "c2", 1)]))
    neo4j_store.write(WriteBatch(delete_nodes=["c1"], nodes=[_customer("c1", v=2)]))
    assert neo4j_store.get_nodes(["c1"])["c1"].props["v"] == 2
    assert neo4j_store.count_edges() == {}


# -- read scopes --------------------------------------------------------------------------

_C360 = (Hop("HAD", limit=3, nodes=True, then=("ABOUT",)), Hop("BOUGHT", nodes=True),
         Hop("CONSENTED"))


def _c360_graph(store: Neo4jStore) -> None:
    nodes = [_customer("c1"), _customer("c2"), Node("Product", "p1", {"sku": "A"}),
             Node("Product", "p2", {"sku": "B"}), Node("Purpose", "marketing", {})]
    nodes += [Node("Interaction", f"i{n}", {"channel": "chat", "blob": EVERY_BYTE}, owner="c1")
              for n in range(5)]
    edges = [_had("c1", f"i{n}", 100 + n // 2) for n in range(5)]
    edges += [Edge("ABOUT", "a1", "i1", "p1", 1), Edge("ABOUT", "a4", "i4", "p2", 4),
              Edge("ABOUT", "a4b", "i4", "p1", 5),
              Edge("BOUGHT", "b1", "c1", "p1", 7, {"amount": 9.5}),
              Edge("BOUGHT", "b2", "c1", "p1", 8), Edge("BOUGHT", "b3", "c2", "p2", 9),
              Edge("CONSENTED", "k1", "c1", "marketing", 10, {"status": "granted"}),
              Edge("REFERRED", "r1", "c2", "c1", 11)]
    store.write(WriteBatch(nodes=nodes, edges=edges))


def _c360_reads(store: Neo4jStore) -> list[object]:
    had = store.edges("c1", "HAD", limit=3)
    ids = [e.dst for e in had]
    return [store.get_nodes(["c1"]), had, store.edges("c1", "HAD", limit=2),
            store.get_nodes(ids), store.edges_many(ids, "ABOUT"),
            store.edges("c1", "BOUGHT"), store.get_nodes(["p1", "p1"]),
            store.edges("c1", "CONSENTED"), store.edges("c1", "CONSENTED", limit=5),
            store.edges("c1", "BOUGHT", before=Cursor(8, "b2"))]


def test_neo4j_read_scope_answers_a_customer_360_in_one_round_trip(
        neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _c360_graph(neo4j_store)
    expected = _c360_reads(neo4j_store)
    calls = server_reads(neo4j_store, monkeypatch)
    with neo4j_store.read_scope(around="c1", hops=_C360):
        assert calls == ["prefetch"]
        assert _c360_reads(neo4j_store) == expected
        assert calls == ["prefetch"]
        # Past what the scope read: the server answers, with the same results.
        assert neo4j_store.edges("c1", "HAD", limit=4) == neo4j_store.edges("c1", "HAD")[:4]
        assert [e.id for e in neo4j_store.edges("c1", "HAD", before=Cursor(101, "h_i2"))] \
            == ["h_i1", "h_i0"]
        assert neo4j_store.edges("c1", "REFERRED", direction="in")[0].id == "r1"
        assert set(neo4j_store.get_nodes(["i0", "c1", "nowhere"])) == {"i0", "c1"}
        assert neo4j_store.edges_many(["i0", "i4"], "ABOUT")["i4"][0].id == "a4b"
        assert calls.count("prefetch") == 1 and len(calls) == 7
    # The scope ends with its block.
    assert neo4j_store.edges("c1", "CONSENTED") == expected[7]
    assert len(calls) == 8


def test_neo4j_lookup_prefetch_answers_the_lookup_and_what_it_found_in_one_round_trip(
        neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _c360_graph(neo4j_store)
    neo4j_store.write(WriteBatch(index=[IndexEntry("Customer.email", b"t1", "c1"),
                                        IndexEntry("Customer.email", b"t2", "c2"),
                                        IndexEntry("Customer.email", b"t2", "c1")]))
    expected = _c360_reads(neo4j_store)
    both = neo4j_store.get_nodes(["c1", "c2"])
    calls = server_reads(neo4j_store, monkeypatch)
    with neo4j_store.read_scope():
        assert neo4j_store.prefetch_lookup("Customer.email", b"t1", _C360, kind="Customer",
                                           decoy_after="c_")
        assert neo4j_store.lookup("Customer.email", b"t1") == ["c1"]
        assert _c360_reads(neo4j_store) == expected
        assert calls == ["prefetch"]
    with neo4j_store.read_scope():
        neo4j_store.prefetch_lookup("Customer.email", b"t2", _C360, kind="Customer",
                                    decoy_after="c_")
        assert neo4j_store.lookup("Customer.email", b"t2") == ["c1", "c2"]
        assert neo4j_store.get_nodes(["c2", "c1"]) == both
        assert calls == ["prefetch"] * 2
    # A miss reads its decoy: the next customer after `decoy_after`, else the first.
    for after, decoy in (("c1\x00", "c2"), ("c2\x00", "c1")):
        with neo4j_store.read_scope():
            neo4j_store.prefetch_lookup("Customer.email", b"none", _C360, kind="Customer",
                                        decoy_after=after)
            assert neo4j_store.lookup("Customer.email", b"none") == []
            assert neo4j_store.get_nodes([decoy]) == {decoy: both[decoy]}
            assert neo4j_store.edges(decoy, "CONSENTED") is not None
    assert calls == ["prefetch"] * 4
    # Outside a scope it reads nothing.
    assert not neo4j_store.prefetch_lookup("Customer.email", b"t1", _C360, kind="Customer",
                                           decoy_after="c_")
    assert calls == ["prefetch"] * 4


def test_neo4j_read_scope_reads_the_products_interactions_are_about(
        neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """With `then_nodes`, a customer-360 whose interactions name a product the customer
    never bought (p2) still takes one round trip."""
    _c360_graph(neo4j_store)
    expected = neo4j_store.get_nodes(["p2", "p1"])
    calls = server_reads(neo4j_store, monkeypatch)
    hops = (Hop("HAD", limit=3, nodes=True, then=("ABOUT",), then_nodes=True),
            *_C360[1:])
    with neo4j_store.read_scope(around="c1", hops=hops):
        assert _c360_reads(neo4j_store)[1][0].dst == "i4"
        assert neo4j_store.get_nodes(["p2", "p1"]) == expected
        assert calls == ["prefetch"]
    with neo4j_store.read_scope(around="c1", hops=_C360):  # without: p2 is a read more
        neo4j_store.get_nodes(["p2"])
        assert calls == ["prefetch", "prefetch", "get_nodes"]


def test_neo4j_read_scope_edge_cases(neo4j_store: Neo4jStore,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _c360_graph(neo4j_store)
    incoming = neo4j_store.edges("p1", "BOUGHT", direction="in")
    calls = server_reads(neo4j_store, monkeypatch)
    with neo4j_store.read_scope(around="nowhere", hops=_C360):
        # An absent node is remembered as absent, with no edges.
        assert neo4j_store.get_nodes(["nowhere"]) == {}
        assert neo4j_store.edges("nowhere", "HAD", limit=3) == []
        assert neo4j_store.edges_many(["nowhere"], "BOUGHT") == {"nowhere": []}
        # A nested scope, and a hop against the edges' direction, add to the same scope.
        with neo4j_store.read_scope(around="p1", hops=[Hop("BOUGHT", direction="in")]):
            pass
        assert neo4j_store.edges("p1", "BOUGHT", direction="in") == incoming
        assert neo4j_store.edges("c2", "BOUGHT") == [Edge("BOUGHT", "b3", "c2", "p2", 9)]
        # A node with no edges of a hop's type: an empty, complete list.
        assert neo4j_store.prefetch("c2", [Hop("HAD", limit=5)])
        assert neo4j_store.edges("c2", "HAD", limit=5, before=Cursor(3, "x")) == []
    assert calls == ["prefetch", "prefetch", "edges", "prefetch"]
    assert not neo4j_store.prefetch("c1", _C360)  # outside a scope: nothing is read
    for bad in ([Hop("HAD", limit=-1)], [Hop("HAD", limit=2**31)],
                [Hop("HAD", direction="sideways")]):  # type: ignore[arg-type]
        with pytest.raises(ValueError), neo4j_store.read_scope(around="c1", hops=bad):
            pass


def test_neo4j_read_scope_deals_each_edge_to_every_hop_that_wants_it(
        neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node's edges are expanded once per direction and dealt to the hops: an edge
    to itself is both an outgoing and an incoming one, and two hops of one type and
    direction each get it, as the plain reads answer."""
    neo4j_store.write(WriteBatch(
        nodes=[_customer("c1"), _customer("c2")],
        edges=[Edge("REFERRED", "self", "c1", "c1", 5), Edge("REFERRED", "r2", "c1", "c2", 6),
               Edge("REFERRED", "r3", "c2", "c1", 7)]))
    plain = [neo4j_store.edges("c1", "REFERRED", direction=d, limit=n)
             for d in ("out", "in") for n in (None, 1)]
    calls = server_reads(neo4j_store, monkeypatch)
    hops = [Hop("REFERRED", direction="in"), Hop("REFERRED", nodes=True, limit=1),
            Hop("REFERRED")]
    with neo4j_store.read_scope(around="c1", hops=hops):
        assert [neo4j_store.edges("c1", "REFERRED", direction=d, limit=n)
                for d in ("out", "in") for n in (None, 1)] == plain
        assert calls == ["prefetch"]


def test_neo4j_read_scope_reads_its_own_writes(neo4j_store: Neo4jStore) -> None:
    _c360_graph(neo4j_store)
    with neo4j_store.read_scope(around="c1", hops=_C360):
        neo4j_store.write(WriteBatch(edges=[
            Edge("CONSENTED", "k2", "c1", "marketing", 20, {"status": "withdrawn"})]))
        assert [e.id for e in neo4j_store.edges("c1", "CONSENTED")] == ["k2", "k1"]
        neo4j_store.write(WriteBatch(delete_nodes=["i4"]))
        assert "i4" not in neo4j_store.get_nodes(["i4", "i3"])
        assert [e.dst for e in neo4j_store.edges("c1", "HAD", limit=3)] == ["i3", "i2", "i1"]


def test_neo4j_read_scope_belongs_to_its_thread(neo4j_store: Neo4jStore,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _c360_graph(neo4j_store)
    calls = server_reads(neo4j_store, monkeypatch)
    with neo4j_store.read_scope(around="c1", hops=_C360):
        other = threading.Thread(target=lambda: neo4j_store.edges("c1", "CONSENTED"))
        other.start()
        other.join()
    assert calls == ["prefetch", "edges"]


# -- scans, counts, iteration, meta -------------------------------------------------------


def test_neo4j_scan_nodes_pages_by_id(neo4j_store: Neo4jStore) -> None:
    neo4j_store.write(WriteBatch(nodes=[_customer(f"c{n:03}") for n in range(30)]
                                 + [Node("Product", "p1", {"name": "lamp"})]))
    ids: list[str] = []
    after: str | None = None
    while page := neo4j_store.scan_nodes("Customer", after=after, limit=8):
        assert len(page) <= 8
        ids.extend(n.id for n in page)
        after = page[-1].id
    assert ids == [f"c{n:03}" for n in range(30)]
    assert [n.id for n in neo4j_store.scan_nodes("Product")] == ["p1"]
    assert neo4j_store.scan_nodes("Nothing") == []


def test_neo4j_counts_and_iteration_cover_everything(neo4j_store: Neo4jStore) -> None:
    assert neo4j_store.count_nodes() == {} and neo4j_store.count_edges() == {}
    assert list(neo4j_store.iter_nodes()) == []
    nodes = [_customer(f"c{n}") for n in range(5)] + [Node("Product", "p1", {})]
    edges = [Edge("BOUGHT", f"b{n}", f"c{n}", "p1", n, {"amount": 9.5}) for n in range(5)]
    edges.append(Edge("REFERRED", "r1", "c0", "c1", 3))
    index = [IndexEntry("Customer.email", bytes([n]) * 4, f"c{n}") for n in range(5)]
    index.append(IndexEntry("Customer.phone", EVERY_BYTE, "c0"))
    neo4j_store.write(WriteBatch(nodes=nodes, edges=edges, index=index))
    neo4j_store.set_meta("k", "v")  # meta is not a node
    assert neo4j_store.count_nodes() == {"Customer": 5, "Product": 1}
    assert neo4j_store.count_edges() == {"BOUGHT": 5, "REFERRED": 1}
    node_batches = list(neo4j_store.iter_nodes(batch=4))
    assert [len(b) for b in node_batches] == [4, 2]
    assert {n.id: n for b in node_batches for n in b} == {n.id: n for n in nodes}
    edge_batches = list(neo4j_store.iter_edges(batch=4))
    assert [len(b) for b in edge_batches] == [4, 2]
    assert {e.id: e for b in edge_batches for e in b} == {e.id: e for e in edges}
    got_index = [i for b in neo4j_store.iter_index(batch=5) for i in b]
    assert sorted(got_index, key=repr) == sorted(index, key=repr)


def test_neo4j_meta(neo4j_store: Neo4jStore) -> None:
    assert neo4j_store.get_meta("nothing") is None
    neo4j_store.set_meta("migration", "step-3")
    neo4j_store.set_meta("migration", "done ✓")
    assert neo4j_store.get_meta("migration") == "done ✓"
    assert neo4j_store.get_meta("schema_version") == "1"


def test_neo4j_schema_is_created_on_first_use(neo4j_uri: str) -> None:
    with neo4j.GraphDatabase.driver(neo4j_uri, auth=None) as driver:
        driver.execute_query("DROP CONSTRAINT pacte_meta_key IF EXISTS")
        store = Neo4jStore(neo4j_uri)
        try:
            assert store.get_meta("x") is None
        finally:
            store.close()
        records, _, _ = driver.execute_query("SHOW CONSTRAINTS YIELD name RETURN name")
        names = {r["name"] for r in records}
        assert {"pacte_node_id", "pacte_edge_id", "pacte_index_key", "pacte_meta_key"} <= names
        records, _, _ = driver.execute_query(
            "SHOW INDEXES YIELD name, state WHERE name STARTS WITH 'pacte_' RETURN name, state")
        assert {r["state"] for r in records} == {"ONLINE"}
        assert {"pacte_node_kind", "pacte_node_owner", "pacte_index_token",
                "pacte_index_node"} <= {r["name"] for r in records}


# -- connecting -------------------------------------------------------------------------


def test_neo4j_bolt_and_routing_uris_both_work(neo4j_server: Neo4jServer,
                                               neo4j_store: Neo4jStore) -> None:
    neo4j_store.write(WriteBatch(nodes=[_customer("c1")]))
    for uri in (neo4j_server.bolt_uri, neo4j_server.uri):
        store = Neo4jStore(uri)
        try:
            assert set(store.get_nodes(["c1"])) == {"c1"}
        finally:
            store.close()


def test_neo4j_from_uri_parses_credentials_and_database(neo4j_server: Neo4jServer,
                                                        neo4j_store: Neo4jStore) -> None:
    neo4j_store.write(WriteBatch(nodes=[_customer("c1")]))
    # Auth is disabled on the test server, so any credentials are accepted.
    uri = f"neo4j://us%40er:p%3Ass%2Fw@127.0.0.1:{neo4j_server.port}/neo4j"
    store = Neo4jStore.from_uri(uri)
    try:
        assert store.uri == f"neo4j://127.0.0.1:{neo4j_server.port}/neo4j"
        assert "p:ss" not in store.uri and "ss%2Fw" not in store.uri
        assert set(store.get_nodes(["c1"])) == {"c1"}
    finally:
        store.close()
    opened = open_store(f"bolt://127.0.0.1:{neo4j_server.port}")
    try:
        assert isinstance(opened, Neo4jStore)
        assert set(opened.get_nodes(["c1"])) == {"c1"}
    finally:
        opened.close()


@pytest.mark.parametrize("uri", ["neo4j://", "neo4j:///db", "neo4j://h:7687/a/b",
                                 "http://host:7474"])
def test_neo4j_from_uri_rejects_bad_uris(uri: str) -> None:
    with pytest.raises(ConfigError):
        Neo4jStore.from_uri(uri).close()


def test_neo4j_constructor_refuses_credentials_in_the_uri() -> None:
    with pytest.raises(ConfigError):
        Neo4jStore("neo4j://user:secret@127.0.0.1:7687")


# -- errors -------------------------------------------------------------------------------


def test_neo4j_unreachable_server_is_a_retryable_storage_error() -> None:
    store = Neo4jStore(f"neo4j://127.0.0.1:{_closed_port()}", max_retry_time=0.2,
                       connection_timeout=2)
    try:
        with pytest.raises(StorageError) as info:  # (a hang is the test timeout's)
            store.get_nodes(["c1"])
        assert info.value.retryable
        with pytest.raises(StorageError) as info:
            store.write(WriteBatch(nodes=[_customer("c1", email_ct=b"secret")]))
        assert info.value.retryable
    finally:
        store.close()
        store.close()  # closing twice is harmless


def test_neo4j_read_failing_retryably_is_retried_as_a_managed_transaction(
        neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    neo4j_store.write(WriteBatch(nodes=[_customer("c1")]))
    assert set(neo4j_store.get_nodes(["c1"])) == {"c1"}  # leaves a pooled read session
    [session] = neo4j_store._readers
    managed: list[str] = []
    execute_query = neo4j_store._driver.execute_query

    def counted(*args: Any, **kwargs: Any) -> Any:
        managed.append(args[0])
        return execute_query(*args, **kwargs)

    def expired(*args: Any, **kwargs: Any) -> Any:
        raise neo4j.exceptions.SessionExpired("the leader moved")

    monkeypatch.setattr(neo4j_store._driver, "execute_query", counted)
    monkeypatch.setattr(session, "run", expired)
    assert set(neo4j_store.get_nodes(["c1"])) == {"c1"}
    assert len(managed) == 1
    assert session not in neo4j_store._readers  # a failed session is not reused
    [session] = neo4j_store._readers or [neo4j_store._reader()]
    neo4j_store._release(session)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise neo4j.exceptions.ClientError("a bad query")

    monkeypatch.setattr(session, "run", refused)
    with pytest.raises(StorageError) as info:
        neo4j_store.get_nodes(["c1"])
    assert not info.value.retryable
    assert len(managed) == 1  # not retried


def test_neo4j_unknown_database_is_not_retryable(neo4j_uri: str) -> None:
    store = Neo4jStore(neo4j_uri, database="nosuchdb", max_retry_time=0.5)
    try:
        with pytest.raises(StorageError) as info:
            store.get_meta("x")
        assert not info.value.retryable
        assert "Neo.ClientError" in str(info.value)
    finally:
        store.close()


def test_neo4j_error_messages_never_carry_values(neo4j_uri: str,
                                                 neo4j_store: Neo4jStore) -> None:
    neo4j_store.write(WriteBatch(nodes=[_customer("alice@example.com")]))
    # A constraint violation: Neo4j's own message quotes the duplicate value.
    with (neo4j.GraphDatabase.driver(neo4j_uri, auth=None) as driver,
          pytest.raises(StorageError) as info, _mapped("write")):
        driver.execute_query("CREATE (:PacteNode {id: $id})", id="alice@example.com")
    assert not info.value.retryable
    assert "alice" not in str(info.value)
    assert "Neo.ClientError.Schema.ConstraintValidationFailed" in str(info.value)
    cause: Any = info.value.__cause__
    assert "alice" in str(cause)  # the original stays available to debuggers, chained


def test_neo4j_transient_errors_are_retryable() -> None:
    # A transient error cannot be provoked on demand on one server; the mapping is checked
    # with the driver's own exception types.
    for exc in (neo4j.exceptions.ServiceUnavailable("gone"),
                neo4j.exceptions.SessionExpired("expired")):
        with pytest.raises(StorageError) as info, _mapped("read"):
            raise exc
        assert info.value.retryable
    with pytest.raises(StorageError) as info, _mapped("read"):
        raise neo4j.exceptions.ConfigurationError("bad option")
    assert not info.value.retryable
