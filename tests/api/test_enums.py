"""Enums for channel, interaction kind, consent status, role and outcome (issue 22).

Their values are named as the strings the API took before, so the JSON variables of
existing clients still go through; a value that is not one is BAD_INPUT before
anything runs, and its message does not repeat it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pacte
from pacte.api.enums import Channel, ConsentStatus, InteractionKind, Outcome, Role
from pacte.graph.model import CHANNELS, INTERACTION_KINDS
from pacte.graph.model import ConsentStatus as ModelConsentStatus
from pacte.graph.policy import ROLES
from tests.api.conftest import Api
from tests.helpers import World

RECORD = """mutation($input: InteractionInput!) { recordInteraction(input: $input) {
  id channel kind } }"""


def test_the_enums_are_the_model_s_values() -> None:
    assert [c.value for c in Channel] == [c.name for c in Channel] == list(CHANNELS)
    assert [k.value for k in InteractionKind] == list(INTERACTION_KINDS)
    assert {s.value for s in ConsentStatus} == {s.value for s in ModelConsentStatus}
    assert [r.value for r in Role] == list(ROLES)


def test_every_outcome_the_code_records_is_a_value_of_outcome() -> None:
    """An outcome missing from the enum would read as `other` in `auditTrail`."""
    written = re.compile(r'outcome(?:=|": |, reason = \()"([a-z_]+)"')
    found = {m for path in Path(pacte.__file__).parent.rglob("*.py")
             for m in written.findall(path.read_text(encoding="utf-8"))}
    assert found >= {"ok", "not_found", "denied", "failed", "withheld"}
    assert found <= {o.value for o in Outcome} - {"other"}, found


def test_old_string_values_go_through_variables(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    cid = world.customers["none"]
    # A client written before the enums sends the whole input as JSON, strings and all.
    out = api.data(RECORD, key=world.keys["app"], purpose="service", variables={"input": {
        "customerId": cid, "channel": "sms", "kind": "campaign", "eventId": "old-1"}})
    assert out["recordInteraction"]["channel"] == "sms"
    assert out["recordInteraction"]["kind"] == "campaign"
    # A variable of the enum type takes the same string.
    query = """query($id: ID!, $ch: Channel) { customer(id: $id) {
      interactions(channel: $ch) { edges { node { channel } } } } }"""
    edges = api.data(query, key=world.keys["app"], purpose="service",
                     variables={"id": cid, "ch": "sms"})["customer"]["interactions"]["edges"]
    assert [e["node"]["channel"] for e in edges] == ["sms"]
    batch = """mutation($items: [InteractionInput!]!) { recordInteractions(input: $items) {
      error { code } interaction { channel kind } } }"""
    results = api.data(batch, key=world.keys["app"], purpose="service", variables={"items": [
        {"customerId": cid, "channel": c, "kind": "visit", "eventId": f"old-{c}"}
        for c in CHANNELS]})["recordInteractions"]
    assert [r["interaction"]["channel"] for r in results] == list(CHANNELS)


def test_outputs_are_the_old_strings(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    cid = world.customers["granted"]
    data = api.data("""query($id: ID!) { me { role } customer(id: $id) {
      consents { status } interactions { edges { node { channel kind } } } } }""",
                    key=world.keys["app"], purpose="service", variables={"id": cid})
    assert data["me"] == {"role": "app"}
    assert data["customer"]["consents"] == [{"status": "granted"}]
    assert data["customer"]["interactions"]["edges"] == [
        {"node": {"channel": "chat", "kind": "purchase"}}]
    trail = api.data("{ auditTrail(first: 100) { edges { node { outcome role } } } }",
                     key=world.keys["auditor"], purpose="legal")["auditTrail"]["edges"]
    assert {e["node"]["outcome"] for e in trail} >= {"ok"}
    assert {e["node"]["role"] for e in trail} >= {"admin", "app"}


def test_an_unknown_value_is_bad_input_and_not_repeated(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    secret = "zelda.quorn1@example.com"
    before = world.rt._backend.store.count_edges()
    for field, enum in (("channel", "Channel"), ("kind", "InteractionKind")):
        item = {"customerId": world.customers["none"], "channel": "web", "kind": "visit",
                "eventId": "bad-1", field: secret}
        r = api.post(RECORD, key=world.keys["app"], purpose="service",
                     variables={"input": item})
        (error,) = r.json()["errors"]
        assert r.status_code == 400 and error["extensions"]["code"] == "BAD_INPUT"
        assert secret not in r.text and f"not a value of the enum {enum}" in error["message"]
    # A number where a name is expected is refused alike.
    r = api.post(RECORD, key=world.keys["app"], purpose="service", variables={"input": {
        "customerId": world.customers["none"], "channel": 15550100001, "kind": "visit",
        "eventId": "bad-2"}})
    assert r.status_code == 400 and "15550100001" not in r.text
    assert world.rt._backend.store.count_edges() == before
    # Written inline, an enum value takes no quotes: a quoted one fails validation.
    r = api.post('{ customers { edges { node { interactions(channel: "web") { edges { '
                 'cursor } } } } } }', key=world.keys["app"], purpose="service")
    assert r.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_views_become_members_as_the_enum_call_makes_them() -> None:
    # Interaction and Consent look their enums up in a table built from the enum: any
    # value gets the member the Enum call gives (None where it raises, for interactions;
    # the call's error for consents).
    from datetime import UTC, datetime

    import pytest

    from pacte.api.enums import enum_value
    from pacte.api.loaders import Memo
    from pacte.api.types import Consent, Interaction
    from pacte.graph.views import ConsentView, InteractionView

    class Text(str):
        pass

    at = datetime(2026, 1, 1, tzinfo=UTC)
    for value in [*CHANNELS, "EMAIL", "bogus", "", None, b"email", 3, ["email"],
                  Text("web")]:
        view = InteractionView("i1", "c1", at, {"channel": value, "kind": value})
        got = Interaction.from_view(view, products=Memo(lambda _: None))
        assert got.channel is enum_value(Channel, value)
        assert got.kind is enum_value(InteractionKind, value)
    for status in ConsentStatus:
        consent = Consent.from_view(ConsentView("p", status.value, at, None, None))
        assert consent.status is status
    with pytest.raises(ValueError, match="bogus"):
        Consent.from_view(ConsentView("p", "bogus", at, None, None))
