"""`GET /metrics`: the server's figures in the Prometheus text format (0.0.4).

- `pacte_requests_total{purpose, outcome}`: GraphQL requests by the purpose they
  declared and their HTTP status. A purpose is a label only when the policy names it
  (else "other", or "none" without one): label values come from the policy, never
  from what a client wrote, so a client can neither flood the label space nor put
  text in it.
- `pacte_request_duration_seconds`: a histogram of GraphQL request latencies.
- `pacte_audit_append_duration_seconds`: a histogram of audit appends (the runtime
  times every append, whatever the caller).
- `pacte_audit_verify_ok` and `pacte_audit_verify_timestamp_seconds`: the result of
  the last verification of the trail this process ran, and when.

Figures are per process: with `--workers N`, each worker keeps its own, and a scrape
reaches one of them (docs/scale-out.md).
"""

from __future__ import annotations

import time
from collections.abc import Collection

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pacte.api.access_log import StatusOf
from pacte.metrics import CONTENT_TYPE, Metrics

__all__ = ["MetricsMiddleware"]


def _label(declared: bytes, purposes: frozenset[str]) -> str:
    name = declared.decode("latin-1")
    return name if name in purposes else "other"


class MetricsMiddleware:
    """Counts and times the requests to `/graphql`; answers `GET /metrics`."""

    def __init__(self, app: ASGIApp, metrics: Metrics, *, purposes: Collection[str],
                 graphql: ASGIApp | None = None) -> None:
        self._app = app
        # What serves `/graphql` (default: `app`, which routes it).
        self._graphql = graphql or app
        self._metrics = metrics
        self._purposes = frozenset(purposes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/metrics":
            response = Response(self._metrics.text(), media_type=CONTENT_TYPE,
                                headers={"Cache-Control": "no-store"})
            await response(scope, receive, send)
            return
        if path != "/graphql":
            await self._app(scope, receive, send)
            return
        # The first X-Purpose, as starlette's `Headers.get` reads it, without building
        # its request and header objects on every request.
        declared = next((v for k, v in scope["headers"] if k == b"x-purpose"), None)
        purpose = ("none" if not declared else _label(declared, self._purposes))
        status = StatusOf(send)
        start = time.perf_counter()
        try:
            await self._graphql(scope, receive, status)
        finally:
            # No response started: the app failed, which the client saw as a 500.
            self._metrics.request(purpose=purpose, outcome=str(status.code or 500),
                                  seconds=time.perf_counter() - start)
