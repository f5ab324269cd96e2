"""Which HTTP parser and event loop uvicorn serves pacte with.

httptools (the C HTTP parser of Node, `llhttp`) and uvloop (libuv) are pacte
dependencies: with them one server process answered about 1.3x the `{ __typename }`
requests per second of uvicorn's pure-Python h11 parser on asyncio's loop, and about
5% more customer-360 requests (issue #19). They are named explicitly rather than left
to uvicorn's "auto" so that a missing wheel is visible in the log, and `serve` still
runs without them (a platform without wheels): h11 and asyncio's loop, as before.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import NamedTuple

__all__ = ["Stack", "server_stack"]

log = logging.getLogger("pacte.serve")


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class Stack(NamedTuple):
    http: str  # uvicorn's `http`
    loop: str  # uvicorn's `loop`


def server_stack() -> Stack:
    """uvicorn's `http` and `loop` settings: the fast ones where importable."""
    http = "httptools" if _has("httptools") else "h11"
    loop = "uvloop" if _has("uvloop") else "asyncio"
    if (http, loop) != ("httptools", "uvloop"):
        log.warning("serving with the %s HTTP parser and the %s event loop: install "
                    "httptools and uvloop for the faster ones", http, loop)
    return Stack(http, loop)
