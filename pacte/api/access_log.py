"""The access log: method, route and status of each request, and nothing the caller sent.

uvicorn's own access log writes the full request line, query string included, and a
GraphQL GET carries its query and variables there (`customerByEmail(email: "...")`):
personal values would reach the log (G1). `pacte serve` turns it off and logs through
this middleware instead. The path is logged only when it is one of the app's routes,
so a personal value put in a made-up path is not logged either.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AccessLog", "StatusOf"]

log = logging.getLogger("pacte.access")


class StatusOf:
    """Wraps an ASGI `send` to note the response's status as it goes out (None until
    then), for middleware that reports on the response after the app ran."""

    __slots__ = ("_send", "code")

    def __init__(self, send: Send) -> None:
        self.code: int | None = None
        self._send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.code = message["status"]
        await self._send(message)


class AccessLog:
    """ASGI middleware logging `METHOD route status` for every HTTP request."""

    def __init__(self, app: ASGIApp, *, routes: Collection[str]) -> None:
        self._app = app
        self._routes = frozenset(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = StatusOf(send)
        try:
            await self._app(scope, receive, status)
        finally:
            path = scope.get("path", "")
            method = scope.get("method", "")
            fields = {"method": method if method.isalpha() and len(method) <= 10 else "-",
                      "route": path if path in self._routes else "-",
                      "status": status.code or "-"}
            log.info("%(method)s %(route)s %(status)s", fields, extra=fields)
