"""Every read applies the purpose's retention (issue 14, item 5).

One customer has, for each dated relation, one record older than every retention
(800 days) and one fresh (10 days): purchases, reviews, devices, referrals,
interactions. Each read path is checked to return the fresh one and not the old one;
the export (the customer's own right of access) and consents are exempt, by design.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from pacte.clock import to_micros
from pacte.errors import InputError
from pacte.graph.store import Edge, Node, WriteBatch
from tests.conftest import MODES, backend_uri
from tests.helpers import World, build_world

OLD, FRESH = timedelta(days=800), timedelta(days=10)


@dataclass
class Aged:
    world: World
    cid: str  # the customer with one old and one fresh record of each kind


@pytest.fixture(scope="module", params=MODES)
def aged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Aged]:
    world = build_world(tmp_path_factory.mktemp("retention"), store_uri=backend_uri(request))
    rt, now = world.rt, world.clock.now
    service = rt.operator_session("service")
    cid = service.upsert_customer(name="Ada Old", email="ada.old@example.org").id
    parent, child = world.customers["parent"], world.customers["other_child"]
    ss = rt.operator_session("self_service")
    for who in (cid, parent, child):
        for purpose in ("marketing", "personalization", "analytics"):
            ss.grant_consent(who, purpose, source="web")
    # A customer's choices are stamped one microsecond apart: let the clock pass them.
    world.clock.advance(seconds=1)
    old_at, fresh_at = to_micros(now - OLD), to_micros(now - FRESH)
    service.ingest(WriteBatch(nodes=[
        Node("Product", "p_old", {"sku": "O-1", "name": "Old", "category": "x", "price": 1.0}),
        Node("Product", "p_fresh", {"sku": "F-1", "name": "Fresh", "category": "x",
                                    "price": 1.0}),
        Node("Device", "d_old", {"device_type": "bulb", "model": "B1"}, cid),
        Node("Device", "d_fresh", {"device_type": "plug", "model": "P1"}, cid),
    ], edges=[
        Edge("OWNS", "o_old", cid, "d_old", old_at),
        Edge("OWNS", "o_fresh", cid, "d_fresh", fresh_at),
        Edge("REVIEWED", "v_old", cid, "p_old", old_at, {"rating": 1}),
        Edge("REVIEWED", "v_fresh", cid, "p_fresh", fresh_at, {"rating": 5}),
        Edge("REFERRED", "r_old", cid, parent, old_at),
        Edge("REFERRED", "r_fresh", cid, child, fresh_at),
    ]))
    for product, ago in (("p_old", OLD), ("p_fresh", FRESH)):
        service.record_interaction(customer_id=cid, channel="store", kind="purchase",
                                   event_id=f"buy-{product}", product_id=product,
                                   amount=1.0, occurred_at=now - ago)
    yield Aged(world, cid)
    rt.close()


PURPOSES = ["service", "marketing.sms", "personalization"]


@pytest.mark.parametrize("purpose", PURPOSES)
def test_products_of_cuts_old_purchases(aged: Aged, purpose: str) -> None:
    s = aged.world.rt.operator_session(purpose)
    assert [p.id for p in s.products_of(aged.cid)] == ["p_fresh"]


@pytest.mark.parametrize("purpose", PURPOSES)
def test_interactions_cut_old_ones(aged: Aged, purpose: str) -> None:
    s = aged.world.rt.operator_session(purpose)
    assert [i.product_id for i in s.interactions(aged.cid).items] == ["p_fresh"]


@pytest.mark.parametrize("purpose", PURPOSES)
def test_buyers_cut_old_purchases(aged: Aged, purpose: str) -> None:
    s = aged.world.rt.operator_session(purpose)
    assert aged.cid not in {v.id for v in s.buyers("p_old")}
    assert aged.cid in {v.id for v in s.buyers("p_fresh")}


def test_devices_cut_old_registrations(aged: Aged) -> None:
    s = aged.world.rt.operator_session("personalization")
    assert [d.id for d in s.devices(aged.cid)] == ["d_fresh"]


@pytest.mark.parametrize("purpose", PURPOSES)
def test_referrals_cut_old_ones(aged: Aged, purpose: str) -> None:
    s = aged.world.rt.operator_session(purpose)
    assert [v.id for v in s.referrals(aged.cid)] == [aged.world.customers["other_child"]]


def test_projections_cut_every_old_relation(aged: Aged) -> None:
    world = aged.world
    s = world.rt.session(world.principals["analyst"], "analytics")
    row = next(p for batch in s.project() for p in batch if p.id == aged.cid)
    assert [p for p, _, _ in row.purchases] == ["p_fresh"]
    assert [p for p, _, _ in row.reviews] == ["p_fresh"]
    assert [p for _, _, _, p in row.interactions] == ["p_fresh"]
    assert row.devices == ["plug"]
    assert row.referred == [world.customers["other_child"]]


def test_export_and_consents_are_exempt(aged: Aged) -> None:
    """The right of access covers everything held; consents are the legal basis itself."""
    ss = aged.world.rt.operator_session("self_service")
    export = ss.export(aged.cid)
    assert sorted(export["products"]) == ["p_fresh", "p_old"]
    assert sorted(r["product"] for r in export["reviews"]) == ["p_fresh", "p_old"]
    assert sorted(d["id"] for d in export["devices"]) == ["d_fresh", "d_old"]
    s = aged.world.rt.operator_session("marketing.sms")
    assert {c.purpose for c in s.consents(aged.cid)} >= {"marketing", "personalization"}


def test_graphql_products_cut_old_purchases(aged: Aged) -> None:
    from pacte.api import create_app
    from tests.api.conftest import Api

    world = aged.world
    api = Api(create_app(world.rt))
    try:
        data = api.data("query($id: ID!) { customer(id: $id) { products { id } "
                        "interactions { edges { node { product { id } } } } } }",
                        key=world.keys["app"], purpose="marketing.sms",
                        variables={"id": aged.cid})
    finally:
        api.close()
    assert [p["id"] for p in data["customer"]["products"]] == ["p_fresh"]
    assert [e["node"]["product"]["id"] for e in data["customer"]["interactions"]["edges"]] \
        == ["p_fresh"]


@pytest.mark.parametrize("purpose", PURPOSES)
def test_replaying_an_old_event_id_returns_nothing_past_retention(aged: Aged,
                                                                  purpose: str) -> None:
    """A replay answers with the first record: not when the purpose may no longer read it.
    The refusal is the one another customer's event id gets (review of issue 14)."""
    s = aged.world.rt.operator_session(purpose)
    with pytest.raises(InputError, match=r"^event_id was already used$"):
        s.record_interaction(customer_id=aged.cid, channel="web", kind="visit",
                             event_id="buy-p_old")
    other = aged.world.customers["parent"]  # visible under every purpose here
    with pytest.raises(InputError, match=r"^event_id was already used$"):
        s.record_interaction(customer_id=other, channel="web", kind="visit",
                             event_id="buy-p_fresh")
    fresh = s.record_interaction(customer_id=aged.cid, channel="web", kind="visit",
                                 event_id="buy-p_fresh")
    assert fresh.product_id == "p_fresh"
