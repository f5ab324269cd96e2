"""`customerByPhone`: the phone's blind index, with no more to tell than `customerByEmail`.

A phone is indexed in E.164, so any spelling of the number finds its customer. Under
a consent purpose, a customer who did not opt in gets the answer nobody gets: null,
after the same reads, with the same audit entry (G3). A purpose that may not use
phone numbers may not look customers up by one, whichever number it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pacte.errors import Forbidden, InputError, PurposeNotGranted
from tests.api.conftest import Api, make_world
from tests.conftest import MODES, backend_uri
from tests.helpers import STATES, VISIBLE_UNDER, World

LOOKUP = "query($p: String!) { customerByPhone(phone: $p) { id phone } }"


@pytest.fixture(scope="module", params=MODES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    w = make_world(tmp_path_factory.mktemp("api-phone"), store_uri=backend_uri(request))
    yield w
    w.rt.close()


def _spelled(phone: str) -> str:
    """'+15550100003' as a person writes it: '+1 (555) 010-0003'."""
    return f" +1 ({phone[2:5]}) {phone[5:8]}-{phone[8:]} "


def _answer(api: Api, world: World, purpose: str, phone: str) -> tuple[Any, ...]:
    size = world.rt._backend.audit.size()
    r = api.post(LOOKUP, key=world.keys["app"], purpose=purpose, variables={"p": phone})
    body = r.json()
    (entry,) = world.rt._backend.audit.entries(after_seq=size - 1)
    record = {k: v for k, v in entry.record.items() if k != "request_id"}
    errors = tuple((e["message"], e["extensions"]["code"]) for e in body.get("errors", []))
    return r.status_code, repr(body.get("data")), errors, repr(record)


def test_any_spelling_finds_the_customer(api: Api, world: World) -> None:
    for state in STATES:
        cid = world.customers[state]
        phone = world.plaintext[cid]["phone"]
        found = api.data(LOOKUP, key=world.keys["app"], purpose="marketing.sms",
                         variables={"p": _spelled(phone)})["customerByPhone"]
        visible = "marketing.sms" in VISIBLE_UNDER[state]
        assert found == ({"id": cid, "phone": phone} if visible else None), state
        everyone = api.data(LOOKUP, key=world.keys["app"], purpose="service",
                            variables={"p": phone})["customerByPhone"]
        assert everyone == {"id": cid, "phone": phone}


def test_hidden_and_unused_numbers_get_the_same_answer(api: Api, world: World) -> None:
    hidden = [world.plaintext[world.customers[s]]["phone"] for s in STATES
              if "marketing.sms" not in VISIBLE_UNDER[s]]
    unused = [f"+1555099{n:04}" for n in range(len(hidden))]
    answers = {_answer(api, world, "marketing.sms", p) for p in hidden + unused}
    assert len(answers) == 1, answers
    (status, data, errors, record), = answers
    assert (status, data, errors) == (200, repr({"customerByPhone": None}), ())
    assert "'outcome': 'not_found'" in record and "'subjects': []" in record
    assert "'fields': ['phone']" in record  # the candidates' phones were opened to confirm


def test_a_purpose_that_may_not_use_phones_cannot_look_up_by_one(api: Api,
                                                                  world: World) -> None:
    numbers = [world.plaintext[world.customers[s]]["phone"] for s in ("granted", "none")]
    answers = {_answer(api, world, "marketing.email", p) for p in [*numbers, "+15550999999"]}
    assert len(answers) == 1, answers
    (status, data, errors, record), = answers
    assert status == 403 and data == repr({"customerByPhone": None})
    assert [code for _, code in errors] == ["PURPOSE_NOT_GRANTED"]
    assert "user.contact.phone_number" in errors[0][0]
    assert "'outcome': 'denied'" in record


def test_a_garbled_number_is_bad_input_on_record(api: Api, world: World) -> None:
    status, _, errors, record = _answer(api, world, "service", "call me maybe")
    assert status == 400 and [code for _, code in errors] == ["BAD_INPUT"]
    assert "call me" not in repr(errors) and "'outcome': 'bad_input'" in record


def test_the_session_refuses_alike(world: World) -> None:
    granted = world.customers["other_child"]
    phone = world.plaintext[granted]["phone"]
    app = world.principals["app"]
    view = world.rt.session(app, "marketing.sms").customer_by_phone(phone[2:])  # national
    assert view is not None and view.id == granted
    with pytest.raises(PurposeNotGranted):
        world.rt.session(app, "marketing.email").customer_by_phone(phone)
    with pytest.raises(Forbidden):
        world.rt.session(world.principals["analyst"], "analytics").customer_by_phone(phone)
    with pytest.raises(InputError):
        world.rt.session(app, "service").customer_by_phone("12")


def test_a_shared_number_gives_the_first_visible_customer(fresh: tuple[World, Any]) -> None:
    """Households share phones: the first customer, in id order, the purpose sees."""
    world, api = fresh
    phone = world.plaintext[world.customers["none"]]["phone"]
    op = world.rt.operator_session("service")
    others = [op.upsert_customer(name=f"Housemate {n}", email=f"house{n}@example.com",
                                 phone=phone).id for n in range(3)]
    sharing = sorted([world.customers["none"], *others])
    found = api.data(LOOKUP, key=world.keys["app"], purpose="service",
                     variables={"p": phone})["customerByPhone"]
    assert found["id"] == sharing[0]
    # Under marketing.sms only the one who opted in is seen.
    ss = world.rt.operator_session("self_service")
    ss.grant_consent(sharing[-1], "marketing.sms", source="web")
    world.clock.advance(seconds=1)
    found = api.data(LOOKUP, key=world.keys["app"], purpose="marketing.sms",
                     variables={"p": phone})["customerByPhone"]
    assert found["id"] == sharing[-1]
