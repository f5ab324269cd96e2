"""A fresh read shared by the callers waiting for it (pacte.coalesce): each caller gets
the result of a read that began after it called, never an older one (what makes a
revocation or an erasure on another server hold from the next request, G5)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from pacte.coalesce import FreshRead


class _Store:
    """A value other servers change; each read can be held until the test lets it end."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0
        self.began = threading.Semaphore(0)
        self.gate: threading.Event | None = None

    def read(self) -> int:
        self.reads += 1
        seen = self.value
        self.began.release()
        if self.gate is not None:
            assert self.gate.wait(30)
        return seen


def _in_thread(call: Callable[[], int]) -> tuple[threading.Thread, list[int]]:
    got: list[int] = []
    thread = threading.Thread(target=lambda: got.append(call()))
    thread.start()
    return thread, got


def test_a_lone_caller_reads_every_time() -> None:
    store = _Store()
    fresh = FreshRead(store.read)
    assert fresh() == 0
    store.value = 1
    assert fresh() == 1
    assert store.reads == 2


def test_a_caller_never_takes_a_read_that_began_before_it() -> None:
    store = _Store()
    fresh = FreshRead(store.read)
    store.gate = threading.Event()
    first, got_first = _in_thread(fresh)
    assert store.began.acquire(timeout=30)  # the first read is under way, value 0
    store.value = 1  # a change committed elsewhere, then a new request arrives
    second, got_second = _in_thread(fresh)
    store.gate.set()
    first.join(30)
    second.join(30)
    assert got_first == [0]
    assert got_second == [1]  # a read of its own, begun after it arrived
    assert store.reads == 2


def test_callers_waiting_together_share_one_read() -> None:
    store = _Store()
    fresh = FreshRead(store.read)
    store.gate = threading.Event()
    blocker, _ = _in_thread(fresh)
    assert store.began.acquire(timeout=30)
    waiting = [_in_thread(fresh) for _ in range(5)]
    # All five called while the first read ran (each is waiting on the condition: a
    # CPython detail, the only way to know without sleeping): one later read serves them.
    while len(fresh._cond._waiters) < 5:  # type: ignore[attr-defined]
        pass
    store.value = 7
    store.gate.set()
    blocker.join(30)
    for thread, got in waiting:
        thread.join(30)
        assert got == [7]
    assert store.reads == 2  # the first, then one for the five


def test_a_failed_read_raises_for_its_callers_and_the_next_call_reads_again() -> None:
    calls: list[int] = []

    def failing() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("connection lost")
        return 5

    fresh = FreshRead(failing)
    with pytest.raises(OSError, match="connection lost"):
        fresh()
    assert fresh() == 5
