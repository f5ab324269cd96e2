"""The endpoint's worker threads behave as the ThreadPoolExecutor they replace."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pacte.api.hop import WorkerThreads

# Only a guard against hanging the suite; nothing is timed.
GIVE_UP = 30


def test_a_call_runs_off_the_loop_and_its_result_comes_back() -> None:
    workers = WorkerThreads(limit=4, name="t")

    async def scenario() -> tuple[str, str]:
        return await workers.run(lambda: threading.current_thread().name), \
            threading.current_thread().name

    ran_on, loop_thread = asyncio.run(scenario())
    assert ran_on == "t_0" and ran_on != loop_thread


def test_an_exception_is_raised_to_the_caller_and_the_thread_serves_on() -> None:
    workers = WorkerThreads(limit=1, name="t")

    def fail() -> None:
        raise KeyError("x")

    async def scenario() -> int:
        with pytest.raises(KeyError):
            await workers.run(fail)
        return await workers.run(lambda: 7)

    assert asyncio.run(scenario()) == 7
    assert workers.threads == 1


def test_sequential_calls_reuse_one_thread() -> None:
    workers = WorkerThreads(limit=40, name="t")

    async def scenario() -> set[str]:
        return {await workers.run(lambda: threading.current_thread().name) for _ in range(50)}

    assert asyncio.run(scenario()) == {"t_0"}
    assert workers.threads == 1


def test_blocked_calls_each_get_a_thread_up_to_the_limit_then_wait() -> None:
    """Three calls block together on three threads; with a limit of three, a fourth
    waits until one of them returns (a thread runs one call at a time)."""
    workers = WorkerThreads(limit=3, name="t")
    release = threading.Event()
    inside = threading.Semaphore(0)
    running: list[str] = []

    def blocked() -> str:
        running.append(threading.current_thread().name)
        inside.release()
        release.wait(GIVE_UP)
        return threading.current_thread().name

    async def scenario() -> tuple[list[str], bool, list[str]]:
        calls = [asyncio.create_task(workers.run(blocked)) for _ in range(4)]
        for _ in range(3):
            await asyncio.to_thread(inside.acquire, True, GIVE_UP)
        together = sorted(running)
        fourth_waited = len(running) == 3
        release.set()
        return together, fourth_waited, list(await asyncio.gather(*calls))

    together, fourth_waited, names = asyncio.run(scenario())
    assert together == ["t_0", "t_1", "t_2"]
    assert fourth_waited and workers.threads == 3
    assert set(names) == {"t_0", "t_1", "t_2"}


def test_a_caller_gone_does_not_stop_the_thread() -> None:
    """A cancelled caller's answer is dropped; the thread takes the next call."""
    workers = WorkerThreads(limit=1, name="t")
    release = threading.Event()
    started = threading.Event()

    def slow() -> int:
        started.set()
        release.wait(GIVE_UP)
        return 1

    async def scenario() -> int:
        task = asyncio.create_task(workers.run(slow))
        await asyncio.to_thread(started.wait, GIVE_UP)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        return await workers.run(lambda: 2)

    assert asyncio.run(scenario()) == 2


def test_a_call_cancelled_while_it_waits_for_a_thread_does_not_run() -> None:
    workers = WorkerThreads(limit=1, name="t")
    gate = threading.Event()
    ran: list[str] = []

    async def scenario() -> None:
        started = threading.Event()

        def hold() -> None:
            started.set()
            gate.wait(GIVE_UP)

        first = asyncio.ensure_future(workers.run(hold))
        while not started.is_set():  # the one thread is busy
            await asyncio.sleep(0)
        second = asyncio.ensure_future(workers.run(lambda: ran.append("applied")))
        await asyncio.sleep(0)  # queued behind the first
        second.cancel()
        gate.set()
        await first
        # The thread has passed the cancelled call when it runs the next one.
        assert await workers.run(lambda: "next") == "next"

    asyncio.run(scenario())
    assert ran == []


def test_the_threads_end_when_their_owner_is_dropped() -> None:
    import gc

    names = [f"drop{i}" for i in range(3)]
    for name in names:
        workers = WorkerThreads(limit=2, name=name)

        async def scenario(w: WorkerThreads = workers) -> None:
            await asyncio.gather(w.run(lambda: None), w.run(lambda: None))

        asyncio.run(scenario())
        del workers, scenario
    gc.collect()
    left = [t for t in threading.enumerate() if t.name.split("_")[0] in names]
    for t in left:
        t.join(GIVE_UP)
    assert not any(t.is_alive() for t in left)
