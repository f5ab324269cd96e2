"""The lease on shared state (pacte.lease): a value is used only while the read that gave it
began less than a lease ago, and a writer waits the lease out after its commit, so that a
change holds from the next request on every process (G5). Time is a fake clock here, and
the writer's wait goes to a recorder: nothing sleeps."""

from __future__ import annotations

import random
import threading

import pytest

from pacte.errors import ConfigError
from pacte.lease import Lease, LeaseTimes, waiting

# Durations exact in binary, so that "exactly a lease old" is exactly that.
TIMES = LeaseTimes(lease=0.25, refresh=0.0625)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Shared:
    """State another server changes; each read returns (when it began, the value then)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.value = 0
        self.reads = 0
        self.takes = 0.0  # how long a read takes (the clock moves while it runs)
        self.fail: Exception | None = None

    def read(self) -> tuple[float, int]:
        self.reads += 1
        began = self.clock.t
        self.clock.t += self.takes
        if self.fail is not None:
            raise self.fail
        return began, self.value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def shared(clock: Clock) -> Shared:
    return Shared(clock)


def _lease(shared: Shared, clock: Clock, times: LeaseTimes = TIMES,
           slept: list[float] | None = None) -> Lease[tuple[float, int]]:
    return Lease(shared.read, times=times, clock=clock,
                 sleep=(slept if slept is not None else []).append)


def test_a_value_is_used_only_while_its_read_began_less_than_a_lease_ago(
        shared: Shared, clock: Clock) -> None:
    # Renewed late (past the moves below), to see the lease alone.
    lease = _lease(shared, clock, LeaseTimes(lease=0.25, refresh=0.21875))
    assert lease.get() == (1000.0, 0)
    shared.value = 1  # a change elsewhere
    clock.t += 0.1875
    assert lease.get() == (1000.0, 0)  # still within the lease: no read
    assert shared.reads == 1
    clock.t += 0.0625
    assert lease.get() == (1000.25, 1)  # exactly a lease old: read again
    assert shared.reads == 2


def test_the_age_counts_from_when_the_read_began_not_when_it_ended(
        shared: Shared, clock: Clock) -> None:
    lease = _lease(shared, clock)
    shared.takes = 0.1875  # a slow read: the value is that old when it arrives
    lease.get()
    shared.takes = 0.0
    clock.t += 0.0625
    lease.get()
    assert shared.reads == 2


def test_no_value_older_than_the_lease_is_ever_used(shared: Shared, clock: Clock) -> None:
    """Random renewals, slow reads and pauses: every value a request gets comes from a
    read that began less than a lease before the request asked."""
    rng = random.Random(19)
    lease = _lease(shared, clock)
    for step in range(5000):
        shared.value = step
        shared.takes = rng.choice([0.0, 0.0, 0.01, 0.1, 0.3])
        if rng.random() < 0.3:
            lease.refresh()  # a writer's read after its commit
        clock.t += rng.choice([0.0, 0.001, 0.03, 0.19, 0.2, 0.25, 0.5])
        asked = clock.t
        began, _ = lease.get()
        assert asked - began < TIMES.lease


def test_a_writer_waits_the_lease_out_after_its_commit(shared: Shared, clock: Clock) -> None:
    slept: list[float] = []
    lease = _lease(shared, clock, slept=slept)
    lease.wait_out()
    assert slept == [waiting(0.25)]
    assert 0.25 < waiting(0.25) < 0.26  # the lease, and a margin for clock rates
    lease.wait_out(lease=1.0)  # another server holds a longer lease: that one
    assert slept[-1] == waiting(1.0) > 1.0


def test_a_lease_of_zero_reads_per_request_and_writers_do_not_wait(
        shared: Shared, clock: Clock) -> None:
    slept: list[float] = []
    lease = _lease(shared, clock, LeaseTimes(lease=0), slept=slept)
    for _ in range(3):
        lease.get()
    assert shared.reads == 3
    lease.wait_out()
    assert slept == []
    lease.wait_out(lease=0.2)  # but it waits out the lease of others
    assert slept == [waiting(0.2)]


def test_requests_share_a_read_they_all_asked_before(shared: Shared, clock: Clock) -> None:
    # The reads on the request path still go through pacte.coalesce.FreshRead.
    gate, started = threading.Event(), threading.Event()

    def slow() -> tuple[float, int]:
        started.set()
        assert gate.wait(30)
        return shared.read()

    lease = Lease(slow, times=TIMES, clock=clock)
    got: list[tuple[float, int]] = []
    threads = [threading.Thread(target=lambda: got.append(lease.get())) for _ in range(4)]
    threads[0].start()
    assert started.wait(30)
    for t in threads[1:]:
        t.start()
    while len(lease._fresh._cond._waiters) < 3:  # type: ignore[attr-defined]
        pass
    gate.set()
    for t in threads:
        t.join(30)
    assert len(got) == 4
    assert shared.reads == 2  # the first, then one for the three that asked during it


# -- renewal by a request -------------------------------------------------------------------

def test_the_first_request_past_the_refresh_age_renews_and_the_others_do_not_wait(
        shared: Shared, clock: Clock) -> None:
    gate, started = threading.Event(), threading.Event()
    lease = _lease(shared, clock)
    lease.get()
    shared.value = 1
    clock.t += 0.0625  # the refresh age: the next request renews

    def slow() -> tuple[float, int]:
        started.set()
        assert gate.wait(30)
        return shared.read()

    lease._read = slow
    got: list[tuple[float, int]] = []
    renewer = threading.Thread(target=lambda: got.append(lease.get()))
    renewer.start()
    assert started.wait(30)
    # While it renews, other requests take the value they have (within its lease).
    assert lease.get() == (1000.0, 0)
    gate.set()
    renewer.join(30)
    assert got == [(1000.0625, 1)]
    assert lease.get() == (1000.0625, 1)
    assert shared.reads == 2


def test_a_failed_renewal_serves_the_value_until_its_lease_runs_out(
        shared: Shared, clock: Clock) -> None:
    lease = _lease(shared, clock)
    lease.get()
    shared.fail = ConnectionError("neo4j unreachable")
    clock.t += 0.125
    assert lease.get() == (1000.0, 0)  # the renewal failed; the value is 0.125 s old
    assert shared.reads == 2
    clock.t += 0.125
    with pytest.raises(ConnectionError, match="unreachable"):
        lease.get()  # too old: read on the request path, and its error
    shared.fail = None
    assert lease.get()[1] == 0


def test_a_renewal_that_fails_after_the_lease_ran_out_raises(
        shared: Shared, clock: Clock) -> None:
    lease = _lease(shared, clock)
    lease.get()
    clock.t += 0.0625  # the refresh age: this request renews
    shared.fail = ConnectionError("neo4j unreachable")
    shared.takes = 5.0  # the renewal hangs (a partition), then fails
    with pytest.raises(ConnectionError, match="unreachable"):
        lease.get()  # the value held began 5.0625 s before the request goes on with it
    assert shared.reads == 2


def test_no_value_older_than_the_lease_is_used_when_renewals_fail(
        shared: Shared, clock: Clock) -> None:
    """Random failures of slow and quick reads: every value a request gets comes from a
    read that began after it asked, or less than a lease before it goes on with it."""
    rng = random.Random(23)
    lease = _lease(shared, clock)
    served = 0
    for step in range(5000):
        shared.value = step
        shared.takes = rng.choice([0.0, 0.0, 0.01, 0.1, 0.3])
        shared.fail = ConnectionError("down") if rng.random() < 0.5 else None
        clock.t += rng.choice([0.0, 0.001, 0.03, 0.06, 0.19, 0.25])
        asked = clock.t
        try:
            began, _ = lease.get()
        except ConnectionError:
            continue
        served += 1
        assert began >= asked or clock.t - began < TIMES.lease
    assert served > 1000


# -- configuration -------------------------------------------------------------------------

def test_lease_times_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PACTE_LEASE_MS", raising=False)
    monkeypatch.delenv("PACTE_LEASE_REFRESH_MS", raising=False)
    assert LeaseTimes.from_env() == LeaseTimes(lease=0.2, refresh=0.05)
    monkeypatch.setenv("PACTE_LEASE_MS", "0")
    assert LeaseTimes.from_env().lease == 0
    monkeypatch.setenv("PACTE_LEASE_MS", "60")
    assert LeaseTimes.from_env() == LeaseTimes(lease=0.06, refresh=0.03)
    monkeypatch.setenv("PACTE_LEASE_REFRESH_MS", "60")
    with pytest.raises(ConfigError, match="renewed more often"):
        LeaseTimes.from_env()
    monkeypatch.setenv("PACTE_LEASE_MS", "soon")
    with pytest.raises(ConfigError, match="PACTE_LEASE_MS"):
        LeaseTimes.from_env()
    monkeypatch.setenv("PACTE_LEASE_MS", "-1")
    with pytest.raises(ConfigError, match="negative"):
        LeaseTimes.from_env()
