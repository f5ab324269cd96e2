"""Cursors a client made up: malformed or out of range, they are BAD_INPUT, never a 500."""

from __future__ import annotations

import base64

import pytest

from tests.api.conftest import Api
from tests.helpers import World


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


CURSORS = [
    _b64("99999999999999999999999:x"),    # the time overflows a 64-bit integer
    _b64("-99999999999999999999999:x"),
    _b64("seq:99999999999999999999999"),  # the sequence number does
    _b64(f"{2**63}:x"),
    _b64(f"seq:{2**63}"),
    "not base64 at all",
]


@pytest.mark.parametrize("cursor", CURSORS)
def test_out_of_range_cursors_are_bad_input(api: Api, world: World, cursor: str) -> None:
    cid = world.customers["granted"]
    for query, role, purpose in (
        ("query($c: ID!, $a: String) { customer(id: $c) { interactions(after: $a) "
         "{ edges { cursor } } } }", "app", "service"),
        ("query($a: String) { customers(after: $a) { edges { cursor } } }", "app", "service"),
        ("query($a: String) { auditTrail(after: $a) { edges { cursor } } }", "auditor",
         "legal"),
        ("query($c: ID!, $a: String) { myDataUses(customerId: $c, after: $a) "
         "{ edges { cursor } } }", "app", "self_service"),
    ):
        variables = {"a": cursor} if "$c" not in query else {"a": cursor, "c": cid}
        r = api.post(query, key=world.keys[role], purpose=purpose, variables=variables)
        assert r.status_code == 400, (query, cursor, r.text)  # BAD_INPUT, nothing answered
        codes = [e["extensions"]["code"] for e in r.json().get("errors", [])]
        assert codes == ["BAD_INPUT"], (query, cursor, r.text)
