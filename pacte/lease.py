"""A bounded-staleness lease on a read of shared state: fresh enough for the next request,
without a round trip per request.

Beside Neo4j, other servers change state every request must see (an API key's
revocation, an erasure, a key rotation: G5). Reading it on every request (pacte.coalesce)
costs a round trip each, `{ __typename }` included. A lease makes the same promise for
less, by splitting the work between the readers and the rare writer:

- a reader uses a value only while the read that produced it *began* less than `lease`
  seconds ago, by its own steady clock (pacte.clock.elapsed); older, the request reads
  again itself, as before. A thread refreshes the value every `refresh` seconds (less
  than `lease`) while requests come, so at steady state no request waits for a read;
- a writer commits its change, then waits `lease` (plus 1% and a millisecond for clocks
  that run at slightly different rates) before it returns (`wait_out`).

So a request that arrives after the change returned, on any process of any machine, uses
a read that began after the change committed: the read that began before the commit
stopped being usable while the writer waited. What is compared is durations, each on
one machine's clock; no two clocks need to agree on the time, only, nearly, on the
length of a second. A read that begins after a commit sees it: true of one Neo4j server
(and of a cluster read with the writer's bookmarks, as pacte's are not shared: run the
servers against the leader, or set the lease to 0).

The thread starts with the first request of a process (so after a fork, in the process
that serves), stops after `idle` seconds without a request (an idle server sends no
queries), and at `close`. When its read fails, the value it had ages out as any other:
after `lease`, requests read themselves and meet the error. `lease=0` turns the lease
off: one read per request (coalesced), no thread, and writers do not wait.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pacte.clock import Elapsed, elapsed
from pacte.coalesce import FreshRead
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
    """How long a read may serve (`lease`), how often it is renewed (`refresh`), and after
    how long without a request the renewing stops (`idle`); seconds."""

    lease: float = 0.2
    refresh: float = 0.05
    idle: float = 2.0  # a request every 2 s keeps the value renewed

    def __post_init__(self) -> None:
        if self.lease < 0 or self.refresh <= 0 or self.idle <= 0:
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
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of milliseconds") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value / 1000


class Lease(Generic[T]):
    """`get()`: the value of a read that began less than `times.lease` ago, renewed in
    the background; `wait_out()`: what a writer does after its commit."""

    def __init__(self, read: Callable[[], T], *, times: LeaseTimes,
                 clock: Elapsed = elapsed, sleep: Callable[[float], None] = time.sleep,
                 background: bool = True, name: str = "pacte-lease") -> None:
        self.times = times
        self._read = read
        self._clock = clock
        self._sleep = sleep
        self._background = background
        self._name = name
        # Requests that find the value too old share one read begun after they asked.
        self._fresh = FreshRead(self._timed)
        self._lock = threading.Lock()
        self._began: float | None = None  # when the read that gave `_value` began
        self._value: T | None = None
        self._last_use = float("-inf")
        self._thread: threading.Thread | None = None
        self._pid = 0  # the process the thread runs in
        self._stop = threading.Event()
        self._closed = False

    def get(self) -> T:
        """A value read less than a lease ago, or read now (its error raised here)."""
        if not self.times.lease:
            return self._fresh()[1]
        now = self._clock()
        with self._lock:
            self._last_use = now
            if self._background and not self._closed and (
                    self._thread is None or self._pid != os.getpid()):
                self._start()
            if self._began is not None and now - self._began < self.times.lease:
                return self._value  # type: ignore[return-value]
        return self._keep(*self._fresh())

    def refresh(self) -> T:
        """Read now (shared with the requests waiting); the newest value known after."""
        return self._keep(*self._fresh())

    def wait_out(self, *, lease: float = 0.0) -> None:
        """After a commit: wait until no process may use a read that began before it
        (`lease`: a longer one some other process uses, to wait out as well)."""
        wait = waiting(max(self.times.lease, lease))
        if wait:
            self._sleep(wait)

    def close(self) -> None:
        """Stop the renewing thread (reads on request still work)."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None and thread is not threading.current_thread() \
                and self._pid == os.getpid():
            thread.join()

    # -- inside ---------------------------------------------------------------------------

    def _timed(self) -> tuple[float, T]:
        began = self._clock()  # before the query leaves: it sees what committed before
        return began, self._read()

    def _keep(self, began: float, value: T) -> T:
        with self._lock:
            if self._began is None or began > self._began:
                self._began, self._value = began, value
            return self._value  # type: ignore[return-value]

    def _start(self) -> None:
        # Under the lock. After a fork the thread object is the parent's: not running here.
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._renew, name=self._name, daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        me = threading.current_thread()
        # First wait: the request that started the thread is reading already.
        while not self._stop.wait(self.times.refresh):
            with self._lock:
                if self._thread is not me:
                    return
                if self._clock() - self._last_use > self.times.idle:
                    self._thread = None  # the next request starts another
                    return
            try:
                self.refresh()
            except Exception as exc:  # ages out like any value: requests read themselves
                log.debug("lease renewal failed: %s", type(exc).__name__)
