"""GraphQL responses rendered to JSON by orjson (already a dependency, for the audit trail).

A customer-360 response is a few hundred values: the standard library's encoder took
about as long to write it as graphql-core took to assemble it. orjson writes the same
compact UTF-8 JSON several times faster. What orjson refuses (an integer beyond 64
bits, a key that is not a string, a lone surrogate) goes to the standard encoder, so
every body renders, or fails, exactly as before.

`JSONAnswer` is what the GraphQL endpoint answers with: the bytes starlette's
`JSONResponse` sends (the same header lines in the same order, then the body), made
without its generic machinery, which cost about as much as rendering a customer-360:
header names lowercased and encoded one by one, a content type decided per response.
The endpoint's constant header lines are encoded once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

__all__ = ["JSONAnswer", "render"]

_CONTENT_TYPE = (b"content-type", b"application/json")


def render(content: Any) -> bytes:
    """The JSON bytes `JSONResponse` would send for `content`."""
    try:
        return orjson.dumps(content)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        # starlette's `JSONResponse.render`, which decides as before (tests compare them).
        return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":")).encode("utf-8")


class JSONAnswer:
    """A JSON response: `status_code`, `body` and `raw_headers` as `JSONResponse` has
    them, sent by calling it as an ASGI app (starlette's routes call it so).

    `headers` are the leading header lines, names in lower case (as `JSONResponse`
    writes them); the content length and type follow, as they do there.
    """

    __slots__ = ("body", "raw_headers", "status_code")

    def __init__(self, content: Any, *, status_code: int,
                 headers: Sequence[tuple[bytes, bytes]]) -> None:
        self.status_code = status_code
        self.body = body = render(content)
        self.raw_headers = [*headers, (b"content-length", b"%d" % len(body)), _CONTENT_TYPE]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})
