"""Relay conventions (issue 22): pageInfo both ways, `node(id:)`, `totalCount`.

`node(id:)` goes through the same Session methods as `customer(id:)` and
`product(id:)`, so consent and purpose apply alike: a customer the purpose may not
see is null, and on record exactly as `customer(id:)` records it. `totalCount`
counts only the customers the purpose sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import Api, make_world
from tests.conftest import MODES, backend_uri
from tests.helpers import STATES, VISIBLE_UNDER, World, record_decrypts


@pytest.fixture(scope="module", params=MODES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    w = make_world(tmp_path_factory.mktemp("api-relay"), store_uri=backend_uri(request))
    yield w
    w.rt.close()


NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Customer { name email } ... on Product { sku title: name } } }"""
CUSTOMER = "query($id: ID!) { customer(id: $id) { id name email } }"
PAGE = """query($first: Int, $after: String) { customers(first: $first, after: $after) {
  edges { cursor node { id } }
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""


def _last_record(world: World) -> dict[str, Any]:
    trail = world.rt._backend.audit
    record: dict[str, Any] = trail.entries(after_seq=trail.size() - 2)[-1].record
    return record


def _actions(record: dict[str, Any]) -> set[str]:
    """The actions of a request's entry, one-step or merged."""
    return {op["action"] for op in record.get("operations", [])} or {record["action"]}


def _without_request(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "request_id"}


def test_node_refetches_a_customer_and_a_product(api: Api, world: World) -> None:
    cid = world.customers["granted"]
    found = api.data(NODE, key=world.keys["app"], purpose="service",
                     variables={"id": cid})["node"]
    assert found == {"__typename": "Customer", "id": cid, "name": world.plaintext[cid]["name"],
                     "email": world.plaintext[cid]["email"]}
    product = api.data(NODE, key=world.keys["app"], purpose="service",
                       variables={"id": world.product})["node"]
    assert product == {"__typename": "Product", "id": world.product, "sku": "LMP-1",
                       "title": "Lamp"}
    assert api.data(NODE, key=world.keys["app"], purpose="service",
                    variables={"id": "p_nothing"})["node"] is None


@pytest.mark.parametrize("state", STATES)
def test_node_of_a_hidden_customer_is_null_and_audited_like_customer(
        api: Api, world: World, state: str) -> None:
    cid = world.customers[state]
    visible = "marketing.email" in VISIBLE_UNDER[state]
    answers, records = [], []
    for query, field in ((CUSTOMER, "customer"), (NODE, "node")):
        data = api.data(query, key=world.keys["app"], purpose="marketing.email",
                        variables={"id": cid})[field]
        answers.append(data["id"] if data else None)
        records.append(_without_request(_last_record(world)))
    assert answers == [cid if visible else None] * 2
    assert records[0] == records[1]
    assert _actions(records[1]) == {"customer.read"}
    assert records[1]["outcome"] == ("ok" if visible else "not_found")


def test_node_opens_only_the_fields_of_the_type_it_is(api: Api, world: World,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A fragment on Product selects nothing of a customer (and is not decrypted)."""
    opened = record_decrypts(world, monkeypatch)
    query = ("query($id: ID!) { node(id: $id) { ... on Product { title: name } "
             "... on Customer { email } } }")
    cid = world.customers["granted"]
    data = api.data(query, key=world.keys["app"], purpose="service", variables={"id": cid})
    assert data == {"node": {"email": world.plaintext[cid]["email"]}}
    assert opened == ["email"]
    assert _last_record(world)["fields"] == ["email"]


def _all_ids(api: Api, world: World, purpose: str) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        page = api.data(PAGE, key=world.keys["app"], purpose=purpose,
                        variables={"first": 7, "after": after})["customers"]
        ids += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]


@pytest.mark.parametrize("purpose", ["service", "marketing.email", "marketing.sms",
                                     "marketing", "personalization"])
def test_total_count_counts_the_customers_the_purpose_sees(api: Api, world: World,
                                                           purpose: str) -> None:
    query = "{ customers(first: 1) { totalCount } }"
    total = api.data(query, key=world.keys["app"], purpose=purpose)["customers"]["totalCount"]
    visible = _all_ids(api, world, purpose)
    assert total == len(visible) == len(set(visible))
    world_visible = {world.customers[s] for s in STATES if purpose in VISIBLE_UNDER[s]}
    if purpose == "service":
        assert total == world.rt._backend.store.count_nodes()["Customer"]
    else:
        assert world_visible <= set(visible)
        # None of the world's hidden customers is counted.
        assert not (set(world.customers.values()) - world_visible) & set(visible)
    record = _last_record(world)
    assert record["purpose"] == purpose


def test_total_count_is_on_record(api: Api, world: World) -> None:
    total = api.data("{ customers(first: 0) { totalCount } }", key=world.keys["app"],
                     purpose="marketing.email")["customers"]["totalCount"]
    assert "customer.count" in _actions(_last_record(world)) and total > 0


def test_page_info_starts_and_ends_each_page(api: Api, world: World) -> None:
    first = api.data(PAGE, key=world.keys["app"], purpose="service",
                     variables={"first": 3})["customers"]
    info, edges = first["pageInfo"], first["edges"]
    assert info == {"hasNextPage": True, "hasPreviousPage": False,
                    "startCursor": edges[0]["cursor"], "endCursor": edges[-1]["cursor"]}
    second = api.data(PAGE, key=world.keys["app"], purpose="service",
                      variables={"first": 3, "after": info["endCursor"]})["customers"]
    assert second["pageInfo"]["hasPreviousPage"] is True
    assert second["pageInfo"]["startCursor"] == second["edges"][0]["cursor"]
    assert second["edges"][0]["node"]["id"] > edges[-1]["node"]["id"]
    empty = api.data(PAGE, key=world.keys["app"], purpose="service",
                     variables={"first": 0})["customers"]["pageInfo"]
    assert empty["startCursor"] is None and empty["endCursor"] is None


def test_interactions_and_audit_pages_have_the_same_page_info(api: Api, world: World) -> None:
    cid = world.customers["granted"]
    query = """query($id: ID!) { customer(id: $id) { interactions(first: 1) {
      edges { cursor } pageInfo { hasPreviousPage startCursor endCursor } } } }"""
    page = api.data(query, key=world.keys["app"], purpose="service",
                    variables={"id": cid})["customer"]["interactions"]
    assert page["pageInfo"]["hasPreviousPage"] is False
    assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
    trail = api.data("{ auditTrail(first: 2) { edges { cursor } pageInfo { hasPreviousPage "
                     "startCursor endCursor } } }", key=world.keys["auditor"],
                     purpose="legal")["auditTrail"]
    assert trail["pageInfo"]["startCursor"] == trail["edges"][0]["cursor"]
    assert trail["pageInfo"]["endCursor"] == trail["edges"][1]["cursor"]


def test_the_catalogue_is_paged_in_id_order(api: Api, world: World) -> None:
    query = """query($after: String) { products(first: 100, after: $after) {
      edges { node { id sku name category price } } pageInfo { hasNextPage endCursor } } }"""
    ids: list[str] = []
    after = None
    while True:
        page = api.data(query, key=world.keys["app"], purpose="marketing.email",
                        variables={"after": after})["products"]
        ids += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert ids == sorted(set(ids)) and world.product in ids
    assert len(ids) == world.rt._backend.store.count_nodes()["Product"]
    assert _actions(_last_record(world)) == {"product.catalogue"}
