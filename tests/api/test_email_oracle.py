"""Email uniqueness is no existence oracle (G3; issue 14, item 4).

Under `marketing.email`, `upsertCustomer(id: <visible>, email: X)` told whether X was
the email of a customer the purpose may not see. The answer now depends on the
purpose alone: a consent-based purpose changes no email, whichever it is.
"""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api
from tests.helpers import World

UPSERT = """
mutation($id: ID!, $email: String!) {
  upsertCustomer(input: {id: $id, email: $email}) { id }
}
"""
HIDDEN = ("none", "withdrawn", "expired", "other_child")


def _answer(api: Api, world: World, purpose: str, cid: str, email: str) -> tuple[Any, ...]:
    r = api.post(UPSERT, key=world.keys["app"], purpose=purpose,
                 variables={"id": cid, "email": email})
    body = r.json()
    errors = body.get("errors", [])
    return (r.status_code, repr(body.get("data")),
            tuple((e["message"], e["extensions"]["code"]) for e in errors))


def test_hidden_and_unused_emails_get_the_same_answer(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    visible = world.customers["granted"]
    before = world.rt.operator_session("service").customer(visible)
    hidden = [world.plaintext[world.customers[s]]["email"] for s in HIDDEN]
    unused = [f"nobody{n}@example.com" for n in range(len(hidden))]
    answers = {_answer(api, world, "marketing.email", visible, e) for e in hidden + unused}
    assert len(answers) == 1, answers
    (_, _, errors), = answers
    assert [code for _, code in errors] == ["PURPOSE_NOT_GRANTED"]
    # The refusal is on record, and nothing changed.
    last = world.rt._backend.audit.entries(after_seq=world.rt._backend.audit.size() - 2)[-1].record
    assert last["outcome"] == "denied"
    after = world.rt.operator_session("service").customer(visible)
    assert after is not None and before is not None and after.fields == before.fields


def test_its_own_email_is_no_change(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    visible = world.customers["granted"]
    own = world.plaintext[visible]["email"].upper()
    _, data, errors = _answer(api, world, "marketing.email", visible, own)
    assert errors == () and data == repr({"upsertCustomer": {"id": visible}})


def test_a_purpose_seeing_everyone_is_told_an_email_is_taken(fresh: tuple[World, Api]) -> None:
    """Under `service` every customer is visible: the refusal reveals nobody hidden."""
    world, api = fresh
    visible = world.customers["granted"]
    taken = world.plaintext[world.customers["none"]]["email"]
    _, _, errors = _answer(api, world, "service", visible, taken)
    assert errors == (("this email already belongs to another customer", "BAD_INPUT"),)
    _, data, errors = _answer(api, world, "service", visible, "brand.new@example.com")
    assert errors == () and data == repr({"upsertCustomer": {"id": visible}})
