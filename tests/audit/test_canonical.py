"""Canonical bytes: the fast path is byte-for-byte rfc8785; non-JSON values are refused."""

from __future__ import annotations

import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from pacte.audit.canonical import canonical_bytes
from pacte.errors import IntegrityError

_scalars = (st.none() | st.booleans() | st.text()
            | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1))
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
_floats = st.floats(allow_nan=False, allow_infinity=False)


@given(st.dictionaries(st.text(), _values, max_size=8))
def test_fast_path_equals_rfc8785(doc: dict[str, Any]) -> None:
    try:
        expected = rfc8785.dumps(doc)
    except rfc8785.CanonicalizationError:
        with pytest.raises(IntegrityError):
            canonical_bytes(doc)
        return
    assert canonical_bytes(doc) == expected


@given(st.dictionaries(st.text(max_size=3), _floats | _values, max_size=6))
def test_floats_and_everything_else_go_through_rfc8785(doc: dict[str, Any]) -> None:
    assert canonical_bytes(doc) == rfc8785.dumps(doc)


def test_known_answer() -> None:
    doc: dict[str, Any] = {"b": [1, "\u00e9", None], "a": True, "\u20ac": "\n\u2028", "c": 1.5e21}
    assert canonical_bytes(doc) == rfc8785.dumps(doc)
    assert canonical_bytes({"z": 1, "a": "x"}) == b'{"a":"x","z":1}'


@pytest.mark.parametrize("bad", [
    {"fields": b"ciphertext"},
    {"nested": {"deep": [bytearray(b"x")]}},
    {"v": memoryview(b"x")},
    {"n": math.nan},
    {"n": math.inf},
    {"n": 2**60},
    {1: "non-string key"},
    {"s": {1, 2}},
    {"o": object()},
])
def test_non_json_values_are_refused(bad: dict[object, object]) -> None:
    with pytest.raises(IntegrityError):
        canonical_bytes(bad)  # type: ignore[arg-type]


def test_tuples_and_mapping_subclasses_are_accepted() -> None:
    from collections import OrderedDict

    doc = OrderedDict([("b", (1, 2)), ("a", OrderedDict(z=1))])
    assert canonical_bytes(doc) == b'{"a":{"z":1},"b":[1,2]}'
