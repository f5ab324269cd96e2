"""`recordInteractions`: many events in one request, idempotent by event id, one result
per item, under the caller's purpose."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api
from tests.helpers import World

BATCH = """mutation($items: [InteractionInput!]!) { recordInteractions(input: $items) {
  index eventId error { code message } interaction { id channel kind summary } } }"""


def _item(cid: str, event_id: str, **extra: Any) -> dict[str, Any]:
    return {"customerId": cid, "channel": "app", "kind": "visit", "eventId": event_id,
            "summary": "opened the app", **extra}


def test_each_item_gets_its_own_result(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    cid = world.customers["none"]
    items = [_item(cid, "b-1"), _item(cid, "b-2", summary="x" * 10_001), _item(cid, "b-1"),
             _item("c_nobody", "b-3"), _item(cid, "b-4")]
    out = api.data(BATCH, key=world.keys["app"], purpose="service",
                   variables={"items": items})["recordInteractions"]
    assert [r["index"] for r in out] == [0, 1, 2, 3, 4]
    assert [r["error"]["code"] if r["error"] else None for r in out] == [
        None, "BAD_INPUT", None, "NOT_FOUND", None]
    # The replay of b-1 answers with the interaction first recorded.
    assert out[2]["interaction"] == out[0]["interaction"]
    again = api.data(BATCH, key=world.keys["app"], purpose="service",
                     variables={"items": items})["recordInteractions"]
    assert [r["interaction"] for r in again] == [r["interaction"] for r in out]
    events = [e for e in world.rt._backend.store.edges(cid, "HAD")]
    assert len(events) == 1 + 2  # the world's own, b-1 and b-4, each once


def test_under_a_consent_purpose_unconsented_customers_do_not_exist(
        fresh: tuple[World, Api]) -> None:
    world, api = fresh
    granted, none = world.customers["granted"], world.customers["none"]
    out = api.data(BATCH, key=world.keys["app"], purpose="marketing.email",
                   variables={"items": [_item(granted, "m-1"), _item(none, "m-2")]}
                   )["recordInteractions"]
    codes = [r["error"]["code"] if r["error"] else None for r in out]
    assert codes[1] == "NOT_FOUND"
    # The refusal says no more about the hidden customer than about one that never was.
    missing = api.data(BATCH, key=world.keys["app"], purpose="marketing.email",
                       variables={"items": [_item("c_000000000000", "m-3")]}
                       )["recordInteractions"]
    assert missing[0]["error"]["message"].replace("c_000000000000", none) == \
        out[1]["error"]["message"]


def test_the_batch_is_bounded(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    items = [_item(world.customers["none"], f"x-{i}") for i in range(501)]
    body = api.post(BATCH, key=world.keys["app"], purpose="service",
                    variables={"items": items}).json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_INPUT"]


def test_a_refused_item_does_not_echo_its_values(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    email = "zelda.quorn0@example.com"
    items = [_item(world.customers["none"], "e-1", channel=email),
             _item(world.customers["none"], "e-2", kind=email)]
    out = api.post(BATCH, key=world.keys["app"], purpose="service",
                   variables={"items": items}).text
    assert '"BAD_INPUT"' in out and email not in out
