"""Loaders: sibling lookups share round trips, and nothing survives the request."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.helpers import VISIBLE_UNDER, World


@pytest.fixture
def calls(world: World, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Store calls made while the test runs, by method name."""
    counter: Counter[str] = Counter()
    store = world.rt._backend.store
    for name in ("get_nodes", "edges", "edges_many", "scan_nodes", "lookup"):
        original: Callable[..., Any] = getattr(store, name)

        def counted(*args: Any, _name: str = name, _f: Callable[..., Any] = original,
                    **kwargs: Any) -> Any:
            counter[_name] += 1
            return _f(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    return counter


def _aliased(n: int) -> str:
    return "query(" + ", ".join(f"$c{i}: ID!" for i in range(n)) + ") { " + " ".join(
        f"c{i}: customer(id: $c{i}) {{ id name }}" for i in range(n)) + " }"


def test_aliased_customers_are_one_batch(api: Api, world: World, calls: Counter[str]) -> None:
    ids = list(world.customers.values())
    api.data(_aliased(1), key=world.keys["app"], purpose="marketing.email",
             variables={"c0": ids[0]})
    one = Counter(calls)
    calls.clear()
    data = api.data(_aliased(len(ids)), key=world.keys["app"], purpose="marketing.email",
                    variables={f"c{i}": cid for i, cid in enumerate(ids)})
    visible = {v["id"] for v in data.values() if v is not None}
    assert visible == {cid for state, cid in world.customers.items()
                       if "marketing.email" in VISIBLE_UNDER[state]}
    assert calls == one  # as many round trips for all the world's customers as for one


def test_repeated_keys_are_loaded_once(api: Api, world: World, calls: Counter[str]) -> None:
    cid = world.customers["granted"]
    api.data("query($id: ID!) { a: customer(id: $id) { consents { status } } }",
             key=world.keys["app"], purpose="service", variables={"id": cid})
    once = sum(calls.values())
    calls.clear()
    api.data("query($id: ID!) { a: customer(id: $id) { consents { status } } "
             "b: customer(id: $id) { consents { purpose } } }",
             key=world.keys["app"], purpose="service", variables={"id": cid})
    assert sum(calls.values()) == once  # the second alias cost nothing more


def test_customer_page_cost_is_flat_in_page_size(api: Api, world: World,
                                                 calls: Counter[str]) -> None:
    q = "query($n: Int) { customers(first: $n) { edges { node { id name email } } } }"
    api.data(q, key=world.keys["app"], purpose="service", variables={"n": 5})
    small = sum(calls.values())
    calls.clear()
    api.data(q, key=world.keys["app"], purpose="service", variables={"n": 50})
    assert sum(calls.values()) == small


def test_memo_asks_once_per_key_and_keeps_refusals() -> None:
    from pacte.api.loaders import Memo
    from pacte.errors import NotFound

    asked: list[str] = []

    def fetch(key: str) -> str:
        asked.append(key)
        if key == "hidden":
            raise NotFound("no such customer")
        return key.upper()

    memo: Memo[str, str] = Memo(fetch)
    assert memo.load("a") == "A"
    assert memo.load("a") == "A"
    for _ in range(2):
        with pytest.raises(NotFound):
            memo.load("hidden")
    assert memo.load("b") == "B"  # a refusal for one key does not fail the others
    assert asked == ["a", "hidden", "b"]


def test_interaction_products_are_read_once_each(api: Api, world: World,
                                                 calls: Counter[str]) -> None:
    cid = world.customers["granted"]
    q = ("query($id: ID!) { customer(id: $id) { interactions(first: 50) { edges { node { "
         "product { id } } } } } }")
    data = api.data(q, key=world.keys["app"], purpose="service", variables={"id": cid})
    products = [e["node"]["product"] for e in data["customer"]["interactions"]["edges"]]
    distinct = {p["id"] for p in products if p is not None}
    calls.clear()
    api.data(q.replace("product { id }", "product { id } again: product { name }"),
             key=world.keys["app"], purpose="service", variables={"id": cid})
    twice = sum(calls.values())
    calls.clear()
    api.data(q, key=world.keys["app"], purpose="service", variables={"id": cid})
    assert twice == sum(calls.values())  # the aliased product field cost nothing more
    assert distinct  # the test needs interactions about products
