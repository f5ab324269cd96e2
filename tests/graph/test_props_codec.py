"""Stored props decode to exactly the values written (pacte.graph.store.decode_props).

Props are parsed with orjson where it gives the json module's values, and with the json
module where it may not: integers beyond 64 bits (orjson reads them as floats), NaN and
the infinities (which orjson refuses), lone surrogates. The stored text is the same.
Decoding many at once (`decode_props_many`, Neo4j's read scopes) answers as decoding each.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pacte.graph.store import decode_props, decode_props_many, encode_props


def _reference(text: str) -> dict[str, Any]:
    """What the json module reads, tags resolved: the decoding props always had."""
    raw: dict[str, Any] = json.loads(text)
    for k, v in raw.items():
        if isinstance(v, str) and v.startswith("\x00b64:"):
            raw[k] = base64.b64decode(v[5:])
        elif isinstance(v, str) and v.startswith("\x00s:"):
            raw[k] = v[3:]
    return raw


def _same(a: object, b: object) -> bool:
    """Equal, of the same type, and for floats the same bits (-0.0, NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


def test_integers_beyond_64_bits_stay_exact_integers() -> None:
    props: dict[str, Any] = {
        "big": 2**80, "above_u64": 2**64, "u64": 2**64 - 1, "i64": 2**63, "min": -(2**63),
        "below": -(2**63) - 1, "huge": -(10**40), "in_list": [2**70, 1], "nested": {"x": 2**65},
    }
    got = decode_props(encode_props(props))
    assert _same(got, props), got


def test_floats_keep_their_value_and_sign() -> None:
    props: dict[str, Any] = {
        "third": 0.1 + 0.2, "neg_zero": -0.0, "tiny": 5e-324, "max": 1.7976931348623157e308,
        "integral_big": 1e22, "two_63": 2.0**63, "nan": math.nan, "inf": math.inf,
        "ninf": -math.inf, "list": [1.5, -0.0],
    }
    assert _same(decode_props(encode_props(props)), props)


def test_text_bytes_and_tags_round_trip() -> None:
    props: dict[str, Any] = {
        "text": "é漢字\u0000x\U0001f600\ufffd", "surrogate": "\ud800x", "\u00e9\u0000key": 1,
        "bytes": bytes(range(256)), "empty_bytes": b"", "looks_tagged": "\x00b64:AAAA",
        "str_tag": "\x00s:x", "nul": "\x00", "none": None, "t": True, "f": False, "l": ["a", ""],
    }
    text = encode_props(props)
    assert _same(decode_props(text), props)
    # Given as bytes, as the json module reads them.
    assert _same(decode_props(text.encode("utf-8", "surrogatepass")), props)
    assert decode_props("{}") == {} and decode_props(b"{}") == {}


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(props=st.dictionaries(st.text(max_size=6), _values | st.binary(max_size=20),
                             max_size=6))
def test_decoding_reads_what_the_json_module_reads(props: dict[str, Any]) -> None:
    text = encode_props(props)
    assert _same(decode_props(text), _reference(text))


EVERY_BYTE = bytes(range(256))


def test_decoding_many_props_at_once_is_decoding_each() -> None:
    texts = [
        "{}",
        encode_props({"blob": EVERY_BYTE, "name": "Ada", "n": 3, "x": 1.5, "ok": True,
                      "none": None, "tags": ["a", "b"]}),
        # A string that starts with NUL, or looks like a tag, stays a string.
        encode_props({"s": "\x00b64:AAAA", "t": "\x00", "u": "b64:AAAA"}),
        # A backslash before "u0000" is no tag, and no NUL.
        encode_props({"path": "C:\\u0000", "empty": b""}),
        encode_props({"plain": "no tag here", "more": "\u00e9t\u00e9"}),
    ]
    many = decode_props_many(texts)
    assert many == [decode_props(t) for t in texts]
    assert many[1]["blob"] == EVERY_BYTE and many[2]["s"] == "\x00b64:AAAA"
    assert many[3] == {"path": "C:\\u0000", "empty": b""}
    assert decode_props_many([]) == []


@pytest.mark.parametrize("texts", [["[1]"], ['{"a":1},{"b":2}'], ["{"], ['"x"']])
def test_decoding_many_refuses_what_is_not_one_object_per_text(texts: list[str]) -> None:
    with pytest.raises(ValueError):
        decode_props_many(texts)
