"""GraphQL responses rendered to JSON by orjson (already a dependency, for the audit trail).

A customer-360 response is a few hundred values: the standard library's encoder took
about as long to write it as graphql-core took to assemble it. orjson writes the same
compact UTF-8 JSON several times faster. What orjson refuses (an integer beyond 64
bits, a key that is not a string, a lone surrogate) goes to the standard encoder, so
every body renders, or fails, exactly as before.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

__all__ = ["FastJSONResponse"]


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return super().render(content)
