"""Request bodies are read (orjson where it agrees) exactly as the standard parser reads them."""

from __future__ import annotations

import json

import pytest

from pacte.api.app import _decode, _Refused

BODIES = [
    b'{"query": "{ me { id } }", "variables": {"n": 3, "x": -0, "f": 1.5e-7}}',
    b'{"a": 1, "a": 2}',
    b'{"n": 12345678901234567890123}',  # an integer beyond 64 bits: an int, not a float
    b'{"n": -9223372036854775809}',
    b'{"n": 18446744073709551615}',
    b'{"n": 1e400, "m": NaN, "i": -Infinity}',  # the standard parser's extensions
    b'{"s": "\\ud800"}',  # a lone surrogate, refused later as BAD_INPUT
    b'{"s": "\\ud83d\\ude00 \xc3\xa9"}',
    b'\xef\xbb\xbf{"bom": true}',
    '{"utf16": 1}'.encode("utf-16"),
    b'"\xff"',
    b'{"q": ' + b"[" * 500 + b"]" * 500 + b"}",  # deep: orjson is not asked
    b'{"q": ' + b"[" * 1010 + b"]" * 1010 + b"}",
    b'{"q": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b"",
    b"{} x",
    b'{"c": "a\tb"}',
]


def _standard(body: bytes) -> tuple[str, object]:
    try:
        return "ok", json.loads(body)
    except (ValueError, RecursionError):
        return "refused", None


def _ours(body: bytes) -> tuple[str, object]:
    try:
        return "ok", _decode(body, "the request body")[0]
    except _Refused:
        return "refused", None


@pytest.mark.parametrize("body", BODIES)
def test_as_the_standard_parser(body: bytes) -> None:
    ours, standard = _ours(body), _standard(body)
    # repr: 1 and 1.0, nan and nan, compare as the values they are
    assert repr(ours) == repr(standard)
