"""A bounded-staleness lease on a read of shared state: fresh enough for the next request,
without a round trip per request.

Beside Neo4j, other servers change state every request must see (an API key's
revocation, an erasure, a key rotation: G5). Reading it on every request (pacte.coalesce)
costs a round trip each, `{ __typename }` included. A lease makes the same promise for
less, by splitting the work between the readers and the rare writer:

- a reader uses a value only while the read that produced it *began* less than `lease`
  seconds ago, by its own steady clock (pacte.clock.elapsed); older, the request reads
  again itself, as before. The first request that finds the value older than `refresh`
  (less than `lease`) renews it, while the others go on with the value: under load, one
  request in many pays a round trip, and none waits for another's;
- a writer commits its change, then waits `lease` (plus 1% and a millisecond for clocks
  that run at slightly different rates) before it returns (`wait_out`).

So a request that arrives after the change returned, on any process of any machine, uses
a read that began after the change committed: the read that began before the commit
stopped being usable while the writer waited. What is compared is durations, each on
one machine's clock; no two clocks need to agree on the time, only, nearly, on the
length of a second. A read that begins after a commit sees it: true of one Neo4j server
(and of a cluster read with the writer's bookmarks, as pacte's are not shared: run the
servers against the leader, or set the lease to 0).

No thread: nothing runs between requests (an idle server sends no queries, a fork or a
close leaves nothing behind), and what a request reads is decided by the clock alone.
When a renewal fails, the value it would have replaced still serves until its lease runs
out (the renewing request checks its age again once the failure returns: a read can hang
for longer than a lease); after that, requests read themselves and meet the error.
`lease=0` turns the lease off: one read per request (coalesced), and writers do not wait
(beyond the leases of other processes, which the caller passes to `wait_out`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pacte.clock import Elapsed, elapsed
from pacte.coalesce import FreshRead
from pacte.env import whole_number
from pacte.errors import ConfigError

__all__ = ["LEASE_ENV", "REFRESH_ENV", "Lease", "LeaseTimes", "waiting"]

T = TypeVar("T")

LEASE_ENV = "PACTE_LEASE_MS"
REFRESH_ENV = "PACTE_LEASE_REFRESH_MS"
# Clocks of two machines disciplined by NTP differ in rate by at most 0.05%.
_RATE_MARGIN = 0.01
_MARGIN = 0.001

log = logging.getLogger("pacte.lease")


@dataclass(frozen=True, slots=True)
class LeaseTimes:
    """How long a read may serve (`lease`) and from what age a request renews it
    (`refresh`); seconds."""

    lease: float = 0.2
    refresh: float = 0.05

    def __post_init__(self) -> None:
        if self.lease < 0 or self.refresh <= 0:
            raise ConfigError("lease times must be positive (the lease may be 0: off)")
        if self.lease and self.refresh >= self.lease:
            raise ConfigError("the lease must be renewed more often than it lasts: "
                              f"set {REFRESH_ENV} below {LEASE_ENV}")

    @property
    def wait(self) -> float:
        """How long a writer waits after its commit."""
        return waiting(self.lease)

    @classmethod
    def from_env(cls) -> LeaseTimes:
        """PACTE_LEASE_MS (default 200; 0: a read per request) and PACTE_LEASE_REFRESH_MS
        (default 50)."""
        default = cls()
        lease = _millis(LEASE_ENV, default.lease)
        refresh = _millis(REFRESH_ENV, min(default.refresh, lease / 2) if lease
                          else default.refresh)
        return cls(lease=lease, refresh=refresh)


def waiting(lease: float) -> float:
    """How long a writer waits after its commit for readers holding `lease`."""
    return lease * (1 + _RATE_MARGIN) + _MARGIN if lease > 0 else 0.0


def _millis(name: str, default: float) -> float:
    value = whole_number(name, unit="milliseconds")
    return default if value is None else value / 1000


class Lease(Generic[T]):
    """`get()`: the value of a read that began less than `times.lease` ago, renewed by
    the first request that finds it older than `times.refresh`; `wait_out()`: what a
    writer does after its commit."""

    def __init__(self, read: Callable[[], T], *, times: LeaseTimes,
                 clock: Elapsed = elapsed, sleep: Callable[[float], None] = time.sleep) -> None:
        self.times = times
        self._read = read
        self._clock = clock
        self._sleep = sleep
        # Requests that find the value too old share one read begun after they asked.
        self._fresh = FreshRead(self._timed)
        self._lock = threading.Lock()
        self._began: float | None = None  # when the read that gave `_value` began
        self._value: T | None = None
        self._renewing = False

    def get(self) -> T:
        """A value read less than a lease ago, or read now (its error raised here)."""
        if not self.times.lease:
            return self._fresh()[1]
        now = self._clock()
        with self._lock:
            if self._began is None or now - self._began >= self.times.lease:
                usable = False
            elif now - self._began < self.times.refresh or self._renewing:
                return self._value  # type: ignore[return-value]
            else:
                usable, self._renewing = True, True  # this request renews it
        if not usable:
            return self._keep(*self._fresh())
        try:
            return self._keep(*self._fresh())
        except Exception as exc:
            # The failed read may have taken long: the value held is served only if it is
            # still within its lease now, else the error is this request's.
            now = self._clock()
            with self._lock:
                if self._began is None or now - self._began >= self.times.lease:
                    raise
                log.debug("renewing a leased value failed (%s); it serves until its lease "
                          "runs out", type(exc).__name__)
                return self._value  # type: ignore[return-value]
        finally:
            with self._lock:
                self._renewing = False

    def refresh(self) -> T:
        """Read now (shared with the requests waiting); the newest value known after."""
        return self._keep(*self._fresh())

    def wait_out(self, *, lease: float = 0.0) -> None:
        """After a commit: wait until no process may use a read that began before it
        (`lease`: a longer one some other process uses, to wait out as well)."""
        wait = waiting(max(self.times.lease, lease))
        if wait:
            self._sleep(wait)

    # -- inside ---------------------------------------------------------------------------

    def _timed(self) -> tuple[float, T]:
        began = self._clock()  # before the query leaves: it sees what committed before
        return began, self._read()

    def _keep(self, began: float, value: T) -> T:
        with self._lock:
            if self._began is None or began > self._began:
                self._began, self._value = began, value
            return self._value  # type: ignore[return-value]
