"""On Neo4j, a customer-360 (the customer, its newest interactions with their products,
its purchases, its consents, and its data key when this process has not cached it)
costs one store round trip more than `{ __typename }`, counted by /metrics; so do a
lookup by email and a page of customers with the same fields below them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pacte.api import create_app
from pacte.runtime import Pacte
from tests.api.conftest import QUERY_360, Api, make_world

pytestmark = pytest.mark.neo4j


def _round_trips(api: Api) -> int:
    text = api.request("GET", "/metrics").text
    m = re.search(r"^pacte_store_round_trips_total (\d+)$", text, flags=re.M)
    assert m is not None
    return int(m.group(1))


def test_a_customer_360_on_neo4j_is_one_round_trip_more_than_typename(
        tmp_path: Path, neo4j_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.neo4j_fixture import clean_database

    clean_database(neo4j_uri)
    world = make_world(tmp_path, store_uri=neo4j_uri)
    # No lease (pacte.lease): the shared state is read on every request, so that which
    # request happens to renew it does not enter the counts.
    monkeypatch.setenv("PACTE_LEASE_MS", "0")
    key = world.keys["app"]
    # Another process: nothing of these customers is cached in it (keys included).
    with Pacte.open(world.rt.data_dir, now=world.clock) as rt:
        api = Api(create_app(rt))
        try:
            api.post("{ __typename }", key=key, purpose="service")  # the key, authenticated
            for cid in (world.customers["granted"], world.customers["none"]):
                t0 = _round_trips(api)
                assert api.post("{ __typename }", key=key, purpose="service"
                                ).status_code == 200
                t1 = _round_trips(api)
                r = api.post(QUERY_360, key=key, purpose="service", variables={"id": cid})
                t2 = _round_trips(api)
                customer = r.json()["data"]["customer"]
                assert r.status_code == 200 and customer["name"]
                assert customer["interactions"]["edges"]
                assert t2 - t1 == (t1 - t0) + 1
            # The same below a lookup by email, and for a page of customers.
            email = world.plaintext[world.customers["withdrawn"]]["email"]
            by_email = QUERY_360.replace("Customer360($id: ID!)", "ByEmail($e: String!)"
                                         ).replace("customer(id: $id)",
                                                   "customerByEmail(email: $e)")
            page = ("{ customers(first: 3) { edges { node { id name consents { purpose } "
                    "interactions(first: 5) { edges { node { id product { name } } } } "
                    "products { id } } } } }")
            for query, variables, field in ((by_email, {"e": email}, "customerByEmail"),
                                            (page, None, "customers")):
                t0 = _round_trips(api)
                assert api.post("{ __typename }", key=key, purpose="service"
                                ).status_code == 200
                t1 = _round_trips(api)
                r = api.post(query, key=key, purpose="service", variables=variables)
                t2 = _round_trips(api)
                assert r.status_code == 200 and r.json()["data"][field], r.text
                assert t2 - t1 == (t1 - t0) + 1, field
        finally:
            api.close()
    world.rt.close()
