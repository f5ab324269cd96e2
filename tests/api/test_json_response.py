"""Responses are written by orjson, byte for byte as starlette's `JSONResponse` wrote them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.responses import JSONResponse

from pacte.api.json_response import JSONAnswer

_BODIES = [
    {"data": {"customer": {"id": "c_1", "name": "Zoë Ångström 李", "price": 19.5, "n": 3,
                           "ok": True, "none": None, "list": [1, 2.25, "x"]}}},
    {"errors": [{"message": "the request needs a `query` string",
                 "extensions": {"code": "BAD_REQUEST"}}]},
    # What orjson refuses goes to the standard encoder.
    {"data": {"big": 2**70}},
    {"data": {1: "a key that is not a string"}},
]


def _sent(app: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    asyncio.run(app({"type": "http"}, receive, send))
    return messages


@pytest.mark.parametrize("body", _BODIES)
def test_same_bytes_as_the_standard_encoder(body: dict[Any, Any]) -> None:
    assert JSONAnswer(body, status_code=200, headers=()).body == JSONResponse(body).body


@pytest.mark.parametrize("status", [200, 400, 401, 405, 500, 503])
@pytest.mark.parametrize("body", _BODIES[:2])
def test_same_messages_as_starlette(body: dict[str, Any], status: int) -> None:
    """The same header lines in the same order, the same status and body."""
    headers = {"Cache-Control": "no-store", "X-Request-Id": "r-1", "WWW-Authenticate": "Bearer"}
    answer = JSONAnswer(body, status_code=status, headers=[
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()])
    response = JSONResponse(body, status_code=status, headers=headers)
    assert answer.raw_headers == response.raw_headers
    assert _sent(answer) == _sent(response)


def test_what_neither_encodes_still_fails() -> None:
    with pytest.raises(UnicodeEncodeError):
        JSONAnswer({"data": "\ud800"}, status_code=200, headers=())
