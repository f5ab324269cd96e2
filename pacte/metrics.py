"""A process's figures, for `GET /metrics` (pacte.api.metrics) in the Prometheus text
format: requests by purpose and outcome, request and audit-append latency histograms,
the last verification of the trail, and (beside Neo4j) the store round trips. Kept by
the runtime, which times every audit append whatever the caller."""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable

__all__ = ["BUCKETS", "CONTENT_TYPE", "Histogram", "Metrics"]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """Cumulative buckets, a sum and a count, as Prometheus wants them."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self._bounds = buckets
        self._counts = [0] * (len(buckets) + 1)
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        self._counts[bisect.bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds

    def lines(self, name: str) -> list[str]:
        out, running = [], 0
        for bound, count in zip(self._bounds, self._counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{le="{bound}"}} {running}')
        running += self._counts[-1]
        out += [f'{name}_bucket{{le="+Inf"}} {running}', f"{name}_sum {self._sum:.6f}",
                f"{name}_count {running}"]
        return out


class Metrics:
    """One process's figures; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._latency = Histogram()
        self._append = Histogram()
        self._verify: tuple[bool, float] | None = None
        self._round_trips: Callable[[], int | None] = lambda: None

    def count_round_trips(self, source: Callable[[], int | None]) -> None:
        """Where the store's round trips are counted (None: a store in this process)."""
        self._round_trips = source

    def request(self, *, purpose: str, outcome: str, seconds: float) -> None:
        with self._lock:
            key = (purpose, outcome)
            self._requests[key] = self._requests.get(key, 0) + 1
            self._latency.observe(seconds)

    def audit_append(self, seconds: float) -> None:
        with self._lock:
            self._append.observe(seconds)

    def verified(self, ok: bool) -> None:
        with self._lock:
            self._verify = (ok, time.time())

    def text(self) -> str:
        with self._lock:
            lines = ["# HELP pacte_requests_total GraphQL requests by purpose and HTTP status.",
                     "# TYPE pacte_requests_total counter"]
            for (purpose, outcome), n in sorted(self._requests.items()):
                lines.append(f'pacte_requests_total{{purpose="{purpose}",outcome="{outcome}"}}'
                             f" {n}")
            lines += ["# HELP pacte_request_duration_seconds GraphQL request latency.",
                      "# TYPE pacte_request_duration_seconds histogram",
                      *self._latency.lines("pacte_request_duration_seconds"),
                      "# HELP pacte_audit_append_duration_seconds Audit append latency.",
                      "# TYPE pacte_audit_append_duration_seconds histogram",
                      *self._append.lines("pacte_audit_append_duration_seconds")]
            if self._verify is not None:
                ok, at = self._verify
                lines += ["# HELP pacte_audit_verify_ok 1 if the last verification passed.",
                          "# TYPE pacte_audit_verify_ok gauge", f"pacte_audit_verify_ok {int(ok)}",
                          "# HELP pacte_audit_verify_timestamp_seconds When it ran.",
                          "# TYPE pacte_audit_verify_timestamp_seconds gauge",
                          f"pacte_audit_verify_timestamp_seconds {at:.3f}"]
            trips = self._round_trips()
            if trips is not None:
                lines += ["# HELP pacte_store_round_trips_total Queries and transactions "
                          "sent to the store's server.",
                          "# TYPE pacte_store_round_trips_total counter",
                          f"pacte_store_round_trips_total {trips}"]
            return "\n".join(lines) + "\n"
