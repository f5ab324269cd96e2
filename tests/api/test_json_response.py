"""Responses are written by orjson, byte for byte as the standard encoder wrote them."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import JSONResponse

from pacte.api.json_response import FastJSONResponse


@pytest.mark.parametrize("body", [
    {"data": {"customer": {"id": "c_1", "name": "Zoë Ångström 李", "price": 19.5, "n": 3,
                           "ok": True, "none": None, "list": [1, 2.25, "x"]}}},
    {"errors": [{"message": "the request needs a `query` string",
                 "extensions": {"code": "BAD_REQUEST"}}]},
    # What orjson refuses goes to the standard encoder.
    {"data": {"big": 2**70}},
    {"data": {1: "a key that is not a string"}},
])
def test_same_bytes_as_the_standard_encoder(body: dict[Any, Any]) -> None:
    assert FastJSONResponse(body).body == JSONResponse(body).body


def test_what_neither_encodes_still_fails() -> None:
    with pytest.raises(UnicodeEncodeError):
        FastJSONResponse({"data": "\ud800"})
