"""A request's record: its sealed parts serialise to exactly the bytes of the plain record,
and a sealed part holds only what the JSON check lets through."""

from __future__ import annotations

import hashlib
import hmac
import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from pacte.audit.canonical import Sealed, canonical_bytes
from pacte.audit.request_entry import _merged, _single, record
from pacte.crypto._keys import _SUBJECT_INFO, VaultSecret, hkdf_sha256
from pacte.errors import IntegrityError
from pacte.graph.steps import Step

_HEAD: dict[str, object] = {
    "principal": "pr_1", "principal_name": "Ana \u00e9", "role": "app", "purpose": "service",
    "legal_basis": "contract", "policy_version": "v1", "request_id": "r1",
}


def _ref(customer_id: str) -> str:
    return "s_" + hashlib.sha256(customer_id.encode()).hexdigest()[:16]


def _plain(steps: list[Step]) -> dict[str, object]:
    """The record as the plain path writes it: nothing sealed, nothing cached."""
    body = _single(steps[0], _ref) if len(steps) == 1 else _merged(steps, _ref)
    return {**_HEAD, **body}


_names = st.sampled_from(["name", "email", "phone", "BOUGHT", "amount", "\u00e9t\u00e9", "a"])
_steps = st.builds(
    Step,
    action=st.sampled_from(["customer.read", "interaction.list", "product.list", "x.\u00fc"]),
    outcome=st.sampled_from(["ok", "ok", "denied", "not_found"]),
    subjects=st.sampled_from([(), ("c1",), ("c1", "c2"), ("c2",)]),
    fields=st.lists(_names, max_size=5).map(tuple),
    reason=st.none() | st.sampled_from(["CONSENT_REQUIRED", "e"]),
    extra=st.none() | st.dictionaries(st.sampled_from(["n", "page"]), st.integers(0, 9),
                                      max_size=2),
)


@given(st.lists(_steps, min_size=1, max_size=5))
def test_a_record_is_the_plain_record_byte_for_byte(steps: list[Step]) -> None:
    expected = rfc8785.dumps(_plain(steps))
    # Twice: the first builds the shape's sealed parts, the second takes them from the cache.
    assert canonical_bytes(record(_HEAD, steps, _ref)) == expected
    assert canonical_bytes(record(_HEAD, steps, _ref)) == expected


def test_requests_of_one_shape_keep_their_own_subjects_and_heads() -> None:
    shape = [("customer.read", ("name", "email")), ("consent.read", ())]
    for cid, principal in (("c1", "pr_a"), ("c2", "pr_b"), ("c1", "pr_b")):
        steps = [Step(a, "ok", (cid,), f, None, None) for a, f in shape]
        head = {**_HEAD, "principal": principal}
        got = canonical_bytes(record(head, steps, _ref))
        assert got == rfc8785.dumps({**head, **_merged(steps, _ref)})
        assert f'"subjects":["{_ref(cid)}"]'.encode() in got
        assert f'"principal":"{principal}"'.encode() in got


def test_a_step_with_fields_of_its_own_is_written_per_request() -> None:
    """A customer-360's shape: the product read names no subject and lists the products
    it read (`extra`); the other operations are sealed once per shape, that one never."""
    for cid, products in (("c1", ["p1", "p2"]), ("c2", ["p3"]), ("c1", [])):
        steps = [Step("customer.read", "ok", (cid,), ("name",), None, None),
                 Step("product.read", "ok", (), (), None, {"products": products}),
                 Step("product.list", "ok", (cid,), ("BOUGHT",), None, None)]
        got = record(_HEAD, steps, _ref)
        assert canonical_bytes(got) == rfc8785.dumps(_plain(steps))
        assert isinstance(got["operations"], list)
        assert [type(op) for op in got["operations"]] == [Sealed, dict, Sealed]


def test_a_sealed_part_in_a_record_that_takes_the_general_path() -> None:
    # A float elsewhere sends the record through rfc8785: the sealed part still
    # serialises as its value.
    doc: dict[str, Any] = {"f": 1.5e21, "fields": Sealed(["b", "a"]), "ops": [Sealed({"x": 1})]}
    assert canonical_bytes(doc) == rfc8785.dumps(
        {"f": 1.5e21, "fields": ["b", "a"], "ops": [{"x": 1}]})
    assert canonical_bytes({"s": Sealed("\u20ac"), "k": Sealed(None)}) == rfc8785.dumps(
        {"s": "\u20ac", "k": None})


@pytest.mark.parametrize("bad", [
    b"ciphertext", [bytearray(b"x")], {"n": math.nan}, {"n": 2**60}, {1: "key"}, object(),
])
def test_a_sealed_part_is_checked_when_made(bad: object) -> None:
    with pytest.raises(IntegrityError):
        Sealed(bad)


def test_a_sealed_part_cannot_be_changed() -> None:
    part = Sealed(["a"])
    with pytest.raises(AttributeError):
        part._fragment = b'"forged"'  # type: ignore[misc]
    with pytest.raises(AttributeError):
        part.value = b"key"


def test_subject_references_are_hmac_sha256_under_the_subject_key() -> None:
    material = bytes(range(32))
    key = hkdf_sha256(material, info=_SUBJECT_INFO)
    secret = VaultSecret(material)
    for cid in ("c_0123456789ab", "", "\u00e9" * 100):
        assert secret.subject_mac(cid) == hmac.digest(key, cid.encode(), "sha256")
