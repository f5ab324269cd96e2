"""G2-G4 through HTTP: purpose, opt-in and need to know, as a client sees them.

Customers of the world are in every consent state for `marketing.email`: none,
granted, withdrawn, expired, granted to the parent purpose (`marketing`, which
covers it), granted to a sibling (`marketing.sms`, which does not), and sequences of
choices on the parent and the child, where the latest choice decides (tests.helpers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import QUERY_360, Api, make_world, personal_values
from tests.conftest import MODES, backend_uri
from tests.helpers import STATES, VISIBLE_UNDER, World


@pytest.fixture(scope="module", params=MODES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    """The API's privacy guarantees hold whichever store keeps the graph."""
    uri = backend_uri(request)
    w = make_world(tmp_path_factory.mktemp("api-privacy"), store_uri=uri)
    yield w
    w.rt.close()

VISIBLE_FOR_EMAIL = {state for state in STATES if "marketing.email" in VISIBLE_UNDER[state]}
LIST = """query($after: String) { customers(first: 100, after: $after) {
  edges { cursor node { id name email phone withheld { field reason } } }
  pageInfo { hasNextPage endCursor } } }"""


def _all_customers(api: Api, key: str, purpose: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = api.data(LIST, key=key, purpose=purpose, variables={"after": after})["customers"]
        out.extend(e["node"] for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]


@pytest.mark.parametrize("state", STATES)
def test_customer_visible_only_with_consent(api: Api, world: World, state: str) -> None:
    cid = world.customers[state]
    data = api.data(QUERY_360, key=world.keys["app"], purpose="marketing.email",
                    variables={"id": cid})
    if state in VISIBLE_FOR_EMAIL:
        c = data["customer"]
        assert c["id"] == cid
        assert c["name"] == world.plaintext[cid]["name"]
        assert c["email"] == world.plaintext[cid]["email"]
    else:
        assert data["customer"] is None


@pytest.mark.parametrize("state", STATES)
def test_customer_under_contract_purpose(api: Api, world: World, state: str) -> None:
    cid = world.customers[state]
    c = api.data(QUERY_360, key=world.keys["app"], purpose="service",
                 variables={"id": cid})["customer"]
    assert c["phone"] == world.plaintext[cid]["phone"]
    assert c["withheld"] == []
    assert c["interactions"]["edges"][0]["node"]["summary"].startswith("Quorn")


def test_lists_hold_only_consenting_customers(api: Api, world: World) -> None:
    listed = {c["id"] for c in _all_customers(api, world.keys["app"], "marketing.email")}
    for state, cid in world.customers.items():
        assert (cid in listed) == (state in VISIBLE_FOR_EMAIL), state
    everyone = {c["id"] for c in _all_customers(api, world.keys["app"], "service")}
    assert listed < everyone
    assert len(everyone) == len(STATES) + 50


def test_withheld_fields_are_null_and_explained(api: Api, world: World) -> None:
    cid = world.customers["granted"]
    c = api.data(QUERY_360, key=world.keys["app"], purpose="marketing.email",
                 variables={"id": cid})["customer"]
    assert c["phone"] is None
    reasons = {w["field"]: w["reason"] for w in c["withheld"]}
    assert {"phone", "address", "birthDate"} <= reasons.keys()
    assert "name" not in reasons and "email" not in reasons
    assert "marketing.email" in reasons["phone"]
    # Free text is content, which marketing may not use.
    node = c["interactions"]["edges"][0]["node"]
    assert node["summary"] is None
    assert node["channel"] == "chat" and node["product"]["id"] == world.product


def test_auditors_see_no_personal_field(api: Api, world: World) -> None:
    cid = world.customers["granted"]
    c = api.data("query($id: ID!) { customer(id: $id) { id name email phone "
                 "withheld { field reason } consents { purpose status } } }",
                 key=world.keys["auditor"], purpose="legal", variables={"id": cid})["customer"]
    assert c["name"] is None and c["email"] is None and c["phone"] is None
    assert {w["field"] for w in c["withheld"]} >= {"name", "email", "phone"}
    assert all("auditor" in w["reason"] for w in c["withheld"])
    assert {x["purpose"]: x["status"] for x in c["consents"]} == {"marketing.email": "granted"}


def test_customer_by_email_respects_consent(api: Api, world: World) -> None:
    q = "query($e: String!) { customerByEmail(email: $e) { id } }"
    for state, cid in world.customers.items():
        found = api.data(q, key=world.keys["app"], purpose="marketing.email",
                         variables={"e": world.plaintext[cid]["email"]})["customerByEmail"]
        assert (found == {"id": cid}) == (state in VISIBLE_FOR_EMAIL)
    # marketing.sms may not use email, so may not look customers up by it.
    r = api.post(q, key=world.keys["app"], purpose="marketing.sms",
                 variables={"e": world.plaintext[world.customers["other_child"]]["email"]})
    body = r.json()
    assert body["errors"][0]["extensions"]["code"] == "PURPOSE_NOT_GRANTED"
    assert body["data"] == {"customerByEmail": None}


@pytest.mark.parametrize(("role", "purpose", "query"), [
    ("analyst", "analytics", '{ customer(id: "c_x") { id } }'),
    ("analyst", "analytics", "{ customers { edges { node { id } } } }"),
    ("app", "service", "{ auditTrail { edges { node { seq } } } }"),
    ("app", "service", "{ auditVerification { ok } }"),
    ("auditor", "legal", 'mutation { upsertCustomer(input: {name: "A", email: "a@b.co"}) '
                         "{ id } }"),
])
def test_role_forbidden(api: Api, world: World, role: str, purpose: str, query: str) -> None:
    before = world.rt._backend.audit.size()
    r = api.post(query, key=world.keys[role], purpose=purpose)
    assert r.status_code == 403  # nothing answered: the status of FORBIDDEN
    body = r.json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert not any((body["data"] or {}).values())
    outcomes = [e.record["outcome"] for e in world.rt._backend.audit.entries(after_seq=before - 1)]
    assert "denied" in outcomes


def test_hidden_and_absent_customers_fail_alike(api: Api, world: World) -> None:
    q = """mutation($id: ID!) { recordInteraction(input: {customerId: $id, channel: web,
           kind: visit, eventId: "probe"}) { id } }"""
    hidden = world.customers["withdrawn"]
    absent = "c_" + "0" * 12
    errors = []
    for cid in (hidden, absent):
        body = api.post(q, key=world.keys["app"], purpose="marketing.email",
                        variables={"id": cid}).json()
        errors.append(body["errors"][0])
    assert errors[0]["extensions"] == errors[1]["extensions"] == {"code": "NOT_FOUND"}
    assert errors[0]["message"].replace(hidden, "ID") == errors[1]["message"].replace(
        absent, "ID")


def test_no_personal_value_in_any_error(api: Api, world: World) -> None:
    values = personal_values(world)
    probes: list[tuple[str, str, str, dict[str, Any]]] = []
    for cid in world.customers.values():
        for purpose in ("marketing.email", "marketing.sms", "personalization", "legal"):
            probes += [
                ("app", purpose, QUERY_360, {"id": cid}),
                ("app", purpose, "query($id: ID!) { customer(id: $id) { recommendations "
                                 "{ id } interactions(channel: sms) { edges { cursor } } "
                                 "} }", {"id": cid}),
                ("app", purpose, "mutation($id: ID!) { exportCustomer(customerId: $id) }",
                 {"id": cid}),
                ("app", purpose, 'mutation($id: ID!) { grantConsent(customerId: $id, '
                                 'purpose: "marketing", source: "web") { status } }',
                 {"id": cid}),
            ]
    probes.append(("analyst", "analytics", QUERY_360, {"id": world.customers["granted"]}))
    seen = 0
    for role, purpose, query, variables in probes:
        r = api.post(query, key=world.keys[role], purpose=purpose, variables=variables)
        assert r.status_code < 500
        errors = r.json().get("errors", [])
        seen += len(errors)
        text = json.dumps(errors)
        assert not [v for v in values if v in text]
    assert seen > 20  # the probes do fail, and their messages were checked
