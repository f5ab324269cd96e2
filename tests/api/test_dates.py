"""Every date is checked on input against one range (issue 14, item 3).

A time that normalises to UTC outside [1900, 2200) was stored and then broke every
read of its customer (`year 10000 is out of range`). It is now BAD_INPUT, with nothing
stored, on every path that takes a date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pacte.clock import EARLIEST, LATEST, to_micros
from pacte.errors import InputError
from pacte.graph.store import Edge, Node, WriteBatch
from tests.api.conftest import QUERY_360, Api
from tests.helpers import World

RECORD = """
mutation($c: ID!, $at: DateTime!, $ev: String!) {
  recordInteraction(input: {customerId: $c, channel: web, kind: visit,
                            eventId: $ev, occurredAt: $at}) { id occurredAt }
}
"""
EXTREMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
            "2200-01-01T00:00:00+00:00", "1899-12-31T23:59:59+00:00",
            "2199-12-31T23:00:00-01:00"]


def _counts(world: World) -> tuple[dict[str, int], dict[str, int]]:
    return world.rt._backend.store.count_nodes(), world.rt._backend.store.count_edges()


@pytest.mark.parametrize("at", EXTREMES)
def test_an_extreme_occurred_at_is_bad_input_and_stores_nothing(
        fresh: tuple[World, Api], at: str) -> None:
    world, api = fresh
    cid = world.customers["granted"]
    before = _counts(world)
    r = api.post(RECORD, key=world.keys["app"], purpose="service",
                 variables={"c": cid, "at": at, "ev": f"ev-{at}"})
    body = r.json()
    assert r.status_code == 400, body  # nothing answered: the status of BAD_INPUT
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_INPUT"]
    assert _counts(world) == before
    # The customer's reads still work: their 360 view and their export.
    api.data(QUERY_360, key=world.keys["app"], purpose="service", variables={"id": cid})
    assert world.rt.operator_session("self_service").export(cid)["interactions"]


@pytest.mark.parametrize("at", ["1900-01-01T00:00:00+00:00", "2199-12-31T23:59:59+00:00",
                                "1900-01-01T10:00:00+09:00"])
def test_the_edges_of_the_range_are_accepted(fresh: tuple[World, Api], at: str) -> None:
    world, api = fresh
    cid = world.customers["granted"]
    data = api.data(RECORD, key=world.keys["app"], purpose="service",
                    variables={"c": cid, "at": at, "ev": f"ok-{at}"})
    assert datetime.fromisoformat(data["recordInteraction"]["occurredAt"]) \
        == datetime.fromisoformat(at)
    assert world.rt.operator_session("self_service").export(cid)["interactions"]


def test_every_date_taking_input_checks_the_range(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    cid = world.customers["none"]
    far = LATEST + timedelta(days=1)
    early = EARLIEST - timedelta(days=1)
    ss = world.rt.operator_session("self_service")
    admin = world.rt.operator_session("service")
    good = to_micros(datetime(2026, 1, 1, tzinfo=UTC))
    calls: list[tuple[str, Any]] = [
        ("consent until", lambda: ss.grant_consent(cid, "marketing", source="web", until=far)),
        ("consents at", lambda: ss.consents(cid, at=early)),
        ("occurred_at", lambda: admin.record_interaction(
            customer_id=cid, channel="web", kind="visit", event_id="x", occurred_at=early)),
        ("birth date", lambda: admin.upsert_customer(id=cid, birth_date="0001-01-01")),
        ("birth date", lambda: admin.upsert_customer(id=cid, birth_date="9999-12-31")),
        ("ingest edge", lambda: admin.ingest(WriteBatch(edges=[
            Edge("REFERRED", "r-far", cid, cid, to_micros(far))]))),
        ("ingest created_at", lambda: admin.ingest(WriteBatch(nodes=[
            Node("Customer", "c_far", {"name": "N", "email": "n@example.org",
                                       "created_at": to_micros(early)}, "c_far")]))),
        ("ingest birth date", lambda: admin.ingest(WriteBatch(nodes=[
            Node("Customer", "c_old", {"name": "N", "email": "o@example.org",
                                       "birth_date": "1000-01-01", "created_at": good},
                 "c_old")]))),
        ("ingest until", lambda: admin.ingest(WriteBatch(edges=[
            Edge("CONSENTED", "k-far", cid, "marketing", good,
                 {"status": "granted", "until": 2**62})]))),
    ]
    for name, call in calls:
        before = _counts(world)
        with pytest.raises(InputError):
            call()
        assert _counts(world) == before, name
    # Through GraphQL too: a consent's `until`.
    r = api.post('mutation($c: ID!) { grantConsent(customerId: $c, purpose: "marketing", '
                 'source: "web", until: "9999-12-31T23:59:59-14:00") { status } }',
                 key=world.keys["app"], purpose="self_service", variables={"c": cid})
    assert [e["extensions"]["code"] for e in r.json()["errors"]] == ["BAD_INPUT"]
