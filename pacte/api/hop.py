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
limit wait in order. They are daemon threads: at interpreter exit a thread waiting for
work is not joined (uvicorn lets the requests in flight finish before its loop ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["WorkerThreads"]

T = TypeVar("T")

# (the caller's loop, the future it awaits, the call): one per request.
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class WorkerThreads:
    """Runs calls on at most `limit` threads named `name`_N, awaited from an event loop."""

    def __init__(self, *, limit: int, name: str) -> None:
        self._limit = limit
        self._name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        # Threads waiting for work that no request has claimed yet: a request claims
        # one, or starts a thread when none is left (the executor's idle semaphore).
        self._idle = 0

    @property
    def threads(self) -> int:
        """How many threads were started (for tests)."""
        return self._threads

    async def run(self, call: Callable[[], T]) -> T:
        """`call()` on a worker thread; its result, or its exception raised here."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        name = None
        with self._lock:
            if self._idle:
                self._idle -= 1
            elif self._threads < self._limit:
                name = f"{self._name}_{self._threads}"
                self._threads += 1
        self._jobs.put((loop, done, call))
        if name is not None:
            threading.Thread(target=self._work, name=name, daemon=True).start()
        return await done

    def _work(self) -> None:
        jobs, lock = self._jobs, self._lock
        while True:
            loop, done, call = jobs.get()
            try:
                result, error = call(), None
            except BaseException as exc:  # handed to the caller, as an executor does
                result, error = None, exc
            # Idle before the answer goes: the caller's next request, which may come
            # as soon as it has it, then finds this thread rather than starting one.
            with lock:
                self._idle += 1
            # A loop closed meanwhile has no one left to answer.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, done, result, error)
            del done, call, result, error  # nothing of a request outlives it here


def _settle(done: asyncio.Future[Any], result: object, error: BaseException | None) -> None:
    if done.cancelled():  # the caller went away (its task cancelled)
        return
    if error is None:
        done.set_result(result)
    else:
        done.set_exception(error)
