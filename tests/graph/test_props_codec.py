"""Props as the stores keep them (JSON text, bytes as tagged base64): decoding many at
once (`decode_props_many`, Neo4j's read scopes) answers as decoding each does."""

from __future__ import annotations

import pytest

from pacte.graph.store import decode_props, decode_props_many, encode_props

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
