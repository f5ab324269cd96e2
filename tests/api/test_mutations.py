"""Writes, consent changes, exports, erasure and the audit trail, through HTTP."""

from __future__ import annotations

import itertools
import json
from typing import Any

from tests.api.conftest import Api
from tests.helpers import World

CUSTOMER = "query($id: ID!) { customer(id: $id) { id name email } }"
GRANT = """mutation($id: ID!, $p: String!) { grantConsent(customerId: $id, purpose: $p,
  source: "web form") { purpose status source at until } }"""
WITHDRAW = """mutation($id: ID!, $p: String!) { withdrawConsent(customerId: $id, purpose: $p)
  { purpose status } }"""
WITHDRAW_ALL = """mutation($id: ID!, $p: String!) { withdrawConsent(customerId: $id, purpose: $p)
  { purpose status effective { purpose status at decidedBy } } }"""


def _errors(api: Api, query: str, *, key: str, purpose: str,
            variables: dict[str, Any] | None = None) -> list[str]:
    body = api.post(query, key=key, purpose=purpose, variables=variables).json()
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def test_upsert_and_read_back(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    key = world.keys["app"]
    made = api.data('mutation { upsertCustomer(input: {name: "Ada Byron", '
                    'email: "ada@example.org", phone: "+15550100"}) { id name email phone '
                    "withheld { field } } }", key=key, purpose="service")["upsertCustomer"]
    assert made["name"] == "Ada Byron" and made["phone"] == "+15550100"
    cid = made["id"]
    again = api.data(CUSTOMER, key=key, purpose="service", variables={"id": cid})
    assert again["customer"] == {"id": cid, "name": "Ada Byron", "email": "ada@example.org"}
    changed = api.data('mutation($id: ID!) { upsertCustomer(input: {id: $id, '
                       'phone: "+15550199"}) { phone name } }', key=key, purpose="service",
                       variables={"id": cid})["upsertCustomer"]
    assert changed == {"phone": "+15550199", "name": "Ada Byron"}
    # Consent purposes may not create customers; bad emails are bad input.
    assert _errors(api, 'mutation { upsertCustomer(input: {name: "B", email: "b@x.org"}) '
                   "{ id } }", key=key, purpose="marketing") == ["PURPOSE_NOT_GRANTED"]
    assert _errors(api, 'mutation { upsertCustomer(input: {name: "B", email: "nope"}) '
                   "{ id } }", key=key, purpose="service") == ["BAD_INPUT"]


def test_record_interaction_is_idempotent(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    q = """mutation($id: ID!, $p: ID) { recordInteraction(input: {customerId: $id,
      channel: chat, kind: purchase, eventId: "evt-77", summary: "bought a lamp",
      productId: $p, amount: 19.5}) { id channel kind summary amount product { id } } }"""
    v = {"id": world.customers["none"], "p": world.product}
    first = api.data(q, key=world.keys["app"], purpose="service", variables=v)
    second = api.data(q, key=world.keys["app"], purpose="service", variables=v)
    assert first == second
    assert first["recordInteraction"]["product"] == {"id": world.product}
    # An unknown channel is no value of the enum: the document does not validate.
    assert _errors(api, q.replace("chat,", "fax,"), key=world.keys["app"], purpose="service",
                   variables=v) == ["GRAPHQL_VALIDATION_FAILED"]


def test_consent_changes_hold_from_the_next_request(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    key, cid = world.keys["app"], world.customers["none"]
    assert api.data(CUSTOMER, key=key, purpose="marketing.email",
                    variables={"id": cid})["customer"] is None
    granted = api.data(GRANT, key=key, purpose="self_service",
                       variables={"id": cid, "p": "marketing.email"})["grantConsent"]
    assert granted["status"] == "granted" and granted["source"] == "web form"
    world.clock.advance(seconds=1)  # the world's clock stands still unless moved
    assert api.data(CUSTOMER, key=key, purpose="marketing.email",
                    variables={"id": cid})["customer"]["id"] == cid
    withdrawn = api.data(WITHDRAW, key=key, purpose="self_service",
                         variables={"id": cid, "p": "marketing.email"})["withdrawConsent"]
    assert withdrawn == {"purpose": "marketing.email", "status": "withdrawn"}
    world.clock.advance(seconds=1)
    assert api.data(CUSTOMER, key=key, purpose="marketing.email",
                    variables={"id": cid})["customer"] is None
    # A change answers with the consent now in force for every purpose it touched: a
    # withdrawal of `marketing` overrides the grant of `marketing.email` made before it.
    regrant = api.data(GRANT, key=key, purpose="self_service",
                       variables={"id": cid, "p": "marketing.email"})["grantConsent"]
    assert regrant["status"] == "granted"
    world.clock.advance(seconds=1)
    parent = api.data(WITHDRAW_ALL, key=key, purpose="self_service",
                      variables={"id": cid, "p": "marketing"})["withdrawConsent"]
    assert parent["status"] == "withdrawn"
    assert {(c["purpose"], c["status"], c["decidedBy"]) for c in parent["effective"]} == {
        (p, "withdrawn", "marketing") for p in ("marketing", "marketing.email",
                                                "marketing.sms")}
    world.clock.advance(seconds=1)
    assert api.data(CUSTOMER, key=key, purpose="marketing.email",
                    variables={"id": cid})["customer"] is None
    consents = api.data("query($id: ID!) { customer(id: $id) { consents { purpose status "
                        "decidedBy } } }", key=key, purpose="self_service",
                        variables={"id": cid})["customer"]["consents"]
    assert {c["purpose"]: (c["status"], c["decidedBy"]) for c in consents} == {
        p: ("withdrawn", "marketing") for p in ("marketing", "marketing.email",
                                                "marketing.sms")}
    # Consent changes are the customer's own requests.
    assert _errors(api, GRANT, key=key, purpose="service",
                   variables={"id": cid, "p": "marketing"}) == ["PURPOSE_NOT_GRANTED"]
    assert _errors(api, GRANT, key=key, purpose="self_service",
                   variables={"id": cid, "p": "astrology"}) == ["BAD_INPUT"]


def test_export_and_data_uses(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    key, cid = world.keys["app"], world.customers["granted"]
    api.data(CUSTOMER, key=key, purpose="marketing.email", variables={"id": cid})
    export = api.data("mutation($id: ID!) { exportCustomer(customerId: $id) }", key=key,
                      purpose="self_service", variables={"id": cid})["exportCustomer"]
    assert export["customer"]["email"] == world.plaintext[cid]["email"]
    assert export["interactions"] and export["consents"]
    uses = api.data("""query($id: ID!) { myDataUses(customerId: $id, first: 100) { edges {
        node { at action purpose principalName fields outcome subjects } } } }""",
                    key=key, purpose="self_service", variables={"id": cid})["myDataUses"]
    seen = {(n["node"]["action"], n["node"]["purpose"]) for n in uses["edges"]}
    assert ("customer.read", "marketing.email") in seen
    assert ("customer.export", "self_service") in seen
    assert all(e["node"]["principalName"] for e in uses["edges"])
    assert _errors(api, "query($id: ID!) { myDataUses(customerId: $id) { edges { cursor } } }",
                   key=key, purpose="service", variables={"id": cid}) == ["PURPOSE_NOT_GRANTED"]


def test_erasure(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    key, cid = world.keys["app"], world.customers["granted"]
    receipt = api.data("""mutation($id: ID!) { eraseCustomer(customerId: $id) {
        subject destroyed requestedBy auditSeq time keyId signature receipt } }""",
                       key=key, purpose="self_service", variables={"id": cid})["eraseCustomer"]
    assert receipt["requestedBy"] == "app-1" and receipt["signature"]
    assert receipt["destroyed"]["Customer"] == 1
    assert cid not in str(receipt) and world.plaintext[cid]["email"] not in str(receipt)
    assert api.data(CUSTOMER, key=key, purpose="service", variables={"id": cid}) == {
        "customer": None}
    assert _errors(api, "mutation($id: ID!) { eraseCustomer(customerId: $id) { subject } }",
                   key=key, purpose="self_service", variables={"id": cid}) == ["NOT_FOUND"]


def test_audit_trail_for_auditors(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    cid = world.customers["granted"]
    api.data(CUSTOMER, key=world.keys["app"], purpose="service", variables={"id": cid})
    q = """query($id: ID, $after: String) { auditTrail(customerId: $id, first: 2, after: $after)
      { edges { cursor node { seq action purpose principalName subjects record } }
        pageInfo { hasNextPage endCursor } } }"""
    seqs: list[int] = []
    after = None
    while True:
        page = api.data(q, key=world.keys["auditor"], purpose="legal",
                        variables={"id": cid, "after": after})["auditTrail"]
        seqs += [e["node"]["seq"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seqs) > 2 and seqs == sorted(set(seqs))
    # Each entry carries the hash it chains from, so a client can check the links.
    chain = api.data("{ auditTrail(first: 50) { edges { node { seq entryHash previousHash } } } }",
                     key=world.keys["auditor"], purpose="legal")["auditTrail"]["edges"]
    nodes = [e["node"] for e in chain]
    assert len(nodes) > 3
    for before, entry in itertools.pairwise(nodes):
        assert entry["seq"] == before["seq"] + 1
        assert entry["previousHash"] == before["entryHash"] != entry["entryHash"]
    ver = api.data("{ auditVerification { ok size entriesChecked firstBad lines } }",
                   key=world.keys["auditor"], purpose="legal")["auditVerification"]
    assert ver["ok"] is True and ver["firstBad"] is None and ver["entriesChecked"] > 0


def test_data_uses_show_the_customer_only_what_concerns_them(fresh: tuple[World, Api]
                                                             ) -> None:
    world, api = fresh
    key, cid = world.keys["app"], world.customers["granted"]
    # A list page names many customers in one entry; a request with several
    # operations names, per operation, the customers each one concerns.
    api.data("{ customers(first: 100) { edges { node { id name } } } }", key=key,
             purpose="service")
    api.data("query($a: ID!, $b: ID!) { a: customer(id: $a) { name } "
             "b: customer(id: $b) { name interactions { edges { cursor } } } }", key=key,
             purpose="service", variables={"a": cid, "b": world.customers["none"]})
    own = world.rt._backend.subject_ref(cid)
    others = {world.rt._backend.subject_ref(c) for c in world.customers.values() if c != cid}
    uses = api.data("""query($id: ID!) { myDataUses(customerId: $id, first: 100) { edges {
        node { action subjects record } } } }""", key=key, purpose="self_service",
                    variables={"id": cid})["myDataUses"]["edges"]
    assert {"customer.list", "request"} <= {u["node"]["action"] for u in uses}
    for use in uses:
        assert use["node"]["subjects"] == [own]
        text = json.dumps(use["node"]["record"])
        assert not [o for o in others if o in text], text


def test_analysts_get_no_single_customer_data_uses(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    rt = world.rt
    _principal, key = rt.create_principal(name="nosy", role="analyst",
                                          purposes=["analytics", "self_service"])
    before = rt._backend.audit.size()
    assert _errors(api, "query($id: ID!) { myDataUses(customerId: $id) { edges { cursor } } }",
                   key=key, purpose="self_service",
                   variables={"id": world.customers["granted"]}) == ["FORBIDDEN"]
    refused = rt._backend.audit.entries(after_seq=before - 1, limit=10)
    assert [e.record["reason"] for e in refused if e.record.get("outcome") == "denied"] \
        == ["FORBIDDEN"]
