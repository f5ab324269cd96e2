"""A Neo4j read scope turns the server's answer into nodes and edges (`Scope.add`): each
props text must land on its own item whatever order the server lists the hops in, and a
text that is not one JSON object is refused."""

from __future__ import annotations

import pytest

from pacte.graph.neo4j_scope import Scope
from pacte.graph.store import Edge, Hop, Node, encode_props

HOPS = (Hop("CONSENTED"), Hop("HAD", limit=2, nodes=True, then=("ABOUT",), then_nodes=True))


def _answer(*, hops_order: tuple[int, ...]) -> list[object]:
    consented = [["k1", 5, encode_props({"status": "granted"}), "marketing", None, []]]
    had = [["h2", 9, "{}", "i2",
            ["Interaction", "c1", encode_props({"summary": b"\x00secret"})],
            [["a2", "ABOUT", "p1", 9, encode_props({"w": 1}),
              ["Product", None, encode_props({"name": "Lamp"})]]]],
           ["h1", 8, encode_props({"n": 2}), "i1", ["Interaction", "c1", "{}"], []]]
    by_hop = {0: consented, 1: had}
    return ["c1", "Customer", "c1", encode_props({"email": b"\x01\x02"}),
            [[i, by_hop[i]] for i in hops_order], [], 3]


def test_each_props_text_lands_on_its_item_whatever_the_order_of_the_hops() -> None:
    scopes = []
    for order in ((0, 1), (1, 0)):
        scope = Scope()
        scope.add("c1", HOPS, _answer(hops_order=order))
        scopes.append(scope)
        assert scope.nodes == {
            "c1": Node("Customer", "c1", {"email": b"\x01\x02"}, "c1"),
            "i2": Node("Interaction", "i2", {"summary": b"\x00secret"}, "c1"),
            "i1": Node("Interaction", "i1", {}, "c1"),
            "p1": Node("Product", "p1", {"name": "Lamp"}),
        }
        assert scope.edges("c1", "CONSENTED", "out", None, None) == [
            Edge("CONSENTED", "k1", "c1", "marketing", 5, {"status": "granted"})]
        assert scope.edges("c1", "HAD", "out", 2, None) == [
            Edge("HAD", "h2", "c1", "i2", 9, {}), Edge("HAD", "h1", "c1", "i1", 8, {"n": 2})]
        assert scope.edges("i2", "ABOUT", "out", None, None) == [
            Edge("ABOUT", "a2", "i2", "p1", 9, {"w": 1})]
    assert scopes[0].nodes == scopes[1].nodes and scopes[0].lists == scopes[1].lists


@pytest.mark.parametrize("text", ['["a"]', '"a"', "1", 'null'])
def test_a_props_text_that_is_not_one_object_is_refused(text: str) -> None:
    answer = _answer(hops_order=(0, 1))
    answer[3] = text
    with pytest.raises(ValueError):
        Scope().add("c1", HOPS, answer)
