"""What the graph holds around a customer, over GraphQL as in Python (issue 22):
devices with their telemetry summaries, reviews and referrals, each under the data
category the policy requires, and through the same Session methods.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import Api, make_world
from tests.conftest import MODES, backend_uri
from tests.helpers import STATES, VISIBLE_UNDER, World


@pytest.fixture(scope="module", params=MODES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    w = make_world(tmp_path_factory.mktemp("api-relations"), store_uri=backend_uri(request))
    yield w
    w.rt.close()


DEVICES = """query($id: ID!) { customer(id: $id) { devices { id deviceType model location
  telemetry { usageMinutesPerDay timesOfUse energyKwh30d } withheld { field reason } } } }"""
REVIEWS = """query($id: ID!) { customer(id: $id) { reviews { rating at product { id } } } }"""


def _last_record(world: World) -> dict[str, Any]:
    trail = world.rt._backend.audit
    record: dict[str, Any] = trail.entries(after_seq=trail.size() - 2)[-1].record
    return record


def _operations(record: dict[str, Any]) -> list[dict[str, Any]]:
    return record.get("operations") or [record]


def _with(world: World, what: str, purpose: str) -> str:
    """A customer with `what` ("devices" or "reviews") under `purpose`, in Python."""
    session = world.rt.operator_session(purpose)
    after = None
    while True:
        page = session.customers(first=100, after=after, fields=())
        for c in page.items:
            if getattr(session, what)(c.id):
                return c.id
        assert page.has_next, f"no customer with {what} under {purpose}"
        after = page.end_cursor


def test_devices_with_their_telemetry_under_service(api: Api, world: World) -> None:
    cid = _with(world, "devices", "service")
    devices = api.data(DEVICES, key=world.keys["app"], purpose="service",
                       variables={"id": cid})["customer"]["devices"]
    expected = world.rt.operator_session("service").devices(cid)
    assert [d["id"] for d in devices] == [v.id for v in expected] and devices
    for got, view in zip(devices, expected, strict=True):
        telemetry = json.loads(str(view.fields["telemetry"]))
        assert got["deviceType"] == view.fields["device_type"]
        assert got["location"] == view.fields["location"] and got["withheld"] == []
        assert got["telemetry"] == {"usageMinutesPerDay": telemetry["usage_minutes_per_day"],
                                    "timesOfUse": telemetry["times_of_use"],
                                    "energyKwh30d": telemetry["energy_kwh_30d"]}


def test_personalization_sees_the_telemetry_but_not_the_location(api: Api,
                                                                 world: World) -> None:
    cid = _with(world, "devices", "personalization")
    devices = api.data(DEVICES, key=world.keys["app"], purpose="personalization",
                       variables={"id": cid})["customer"]["devices"]
    assert devices
    for d in devices:
        assert d["telemetry"] is not None and d["deviceType"]
        assert d["location"] is None
        assert {w["field"]: w["reason"] for w in d["withheld"]} == {
            "location": "purpose personalization may not use user.location"}


def test_no_devices_where_device_data_is_not_granted(api: Api, world: World) -> None:
    cid = world.customers["granted"]
    data = api.data(DEVICES, key=world.keys["app"], purpose="marketing.email",
                    variables={"id": cid})["customer"]
    assert data == {"devices": []}
    ops = [op for op in _operations(_last_record(world)) if op["action"] == "device.list"]
    assert [op.get("outcome") for op in ops] == ["withheld"]


def test_reviews_under_a_purpose_that_may_use_content(api: Api, world: World) -> None:
    cid = _with(world, "reviews", "service")
    reviews = api.data(REVIEWS, key=world.keys["app"], purpose="service",
                       variables={"id": cid})["customer"]["reviews"]
    expected = world.rt.operator_session("service").reviews(cid)
    assert reviews and [(r["product"]["id"], r["rating"]) for r in reviews] == [
        (v.product_id, v.rating) for v in expected]
    assert all(1 <= r["rating"] <= 5 for r in reviews)
    # marketing may not use what customers write (user.content): none, and on record.
    hidden = api.data(REVIEWS, key=world.keys["app"], purpose="marketing.email",
                      variables={"id": world.customers["granted"]})["customer"]
    assert hidden == {"reviews": []}
    ops = [op for op in _operations(_last_record(world)) if op["action"] == "review.list"]
    assert [op.get("outcome") for op in ops] == ["withheld"]


def test_referrals_are_only_the_visible_customers(api: Api, world: World) -> None:
    referrer = world.customers["granted"]
    query = "query($id: ID!) { customer(id: $id) { referrals { id name } } }"
    for purpose in ("marketing.email", "marketing.sms", "service"):
        if purpose not in VISIBLE_UNDER["granted"] and purpose != "service":
            data = api.data(query, key=world.keys["app"], purpose=purpose,
                            variables={"id": referrer})
            assert data == {"customer": None}  # the referrer is hidden itself
            continue
        got = api.data(query, key=world.keys["app"], purpose=purpose,
                       variables={"id": referrer})["customer"]["referrals"]
        expected = {world.customers[s] for s in STATES if s != "granted"
                    and (purpose == "service" or purpose in VISIBLE_UNDER[s])}
        assert {r["id"] for r in got} == expected
        assert all(r["name"] == world.plaintext[r["id"]]["name"] for r in got)
        ops = [op for op in _operations(_last_record(world))
               if op["action"] == "customer.referrals"]
        assert [op.get("fields", _last_record(world).get("fields")) for op in ops] == [["name"]]
