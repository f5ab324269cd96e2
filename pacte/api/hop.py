"""The GraphQL endpoint's worker threads: a request's hop off the event loop and back.

A request is executed on a thread of its own, so that a slow one never holds the event
loop (pacte.api.app). `loop.run_in_executor` on a `ThreadPoolExecutor` did that with
about 25 us of Python per request around the two hand-overs that cannot be avoided: a
`concurrent.futures.Future` with its condition variable, a work item, the executor's
idle semaphore (a Python-level condition) taken on submit and released after every
call, the asyncio future chained to it with callbacks both ways. Here a request is one
tuple put on a `queue.SimpleQueue` (C), a thread takes it, and the answer is handed
back with `loop.call_soon_threadsafe`, which is what the executor's chain ended in.

The threads behave as the executor's did: up to `limit`, started when a request finds
none idle, each running one request at a time, kept for the next; requests beyond the
limit wait in order; one whose caller was cancelled while it waited does not run. They
are daemon threads: at interpreter exit a thread waiting for work is not joined (uvicorn
lets the requests in flight finish before its loop ends); they end when their
`WorkerThreads` is garbage.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["WorkerThreads"]

T = TypeVar("T")

# (the caller's loop, the future it awaits, the call): one per request.
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class _Pool:
    """What the threads share: never the `WorkerThreads` itself, so dropping that ends them."""

    __slots__ = ("idle", "jobs", "lock", "threads")

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.threads = 0
        # Threads waiting for work that no request has claimed yet: a request claims
        # one, or starts a thread when none is left (the executor's idle semaphore).
        self.idle = 0

    def stop(self) -> None:
        """One stop mark per thread: each ends when it takes one (the owner is gone)."""
        for _ in range(self.threads):
            self.jobs.put(None)


class WorkerThreads:
    """Runs calls on at most `limit` threads named `name`_N, awaited from an event loop.

    The threads end once this object is garbage: as a `ThreadPoolExecutor`'s did, so an
    app dropped (tests build many) leaves no thread behind.
    """

    def __init__(self, *, limit: int, name: str) -> None:
        self._limit = limit
        self._name = name
        self._pool = _Pool()
        weakref.finalize(self, self._pool.stop)

    @property
    def threads(self) -> int:
        """How many threads were started (for tests)."""
        return self._pool.threads

    async def run(self, call: Callable[[], T]) -> T:
        """`call()` on a worker thread; its result, or its exception raised here."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        pool = self._pool
        name = None
        with pool.lock:
            if pool.idle:
                pool.idle -= 1
            elif pool.threads < self._limit:
                name = f"{self._name}_{pool.threads}"
                pool.threads += 1
        pool.jobs.put((loop, done, call))
        if name is not None:
            threading.Thread(target=_work, args=(pool,), name=name, daemon=True).start()
        return await done


def _work(pool: _Pool) -> None:
    jobs, lock = pool.jobs, pool.lock
    while True:
        job = jobs.get()
        if job is None:
            return
        loop, done, call = job
        # A caller cancelled while its request waited for a thread (a shutdown's
        # timeout): the request does not run, as an executor's pending work item did not.
        ran = not done.cancelled()
        result: object = None
        error: BaseException | None = None
        if ran:
            try:
                result = call()
            except BaseException as exc:  # handed to the caller, as an executor does
                error = exc
        # Idle before the answer goes: the caller's next request, which may come
        # as soon as it has it, then finds this thread rather than starting one.
        with lock:
            pool.idle += 1
        if ran:
            # A loop closed meanwhile has no one left to answer.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, done, result, error)
        del job, done, call, result, error  # nothing of a request outlives it here


def _settle(done: asyncio.Future[Any], result: object, error: BaseException | None) -> None:
    if done.cancelled():  # the caller went away (its task cancelled)
        return
    if error is None:
        done.set_result(result)
    else:
        done.set_exception(error)
