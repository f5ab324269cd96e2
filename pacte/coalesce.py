"""A read of shared state that must be fresh, shared by the requests waiting for it.

Beside Neo4j, a request needs what other servers may have changed before its arrival
(the vault's destruction counter, the revocation stamp). The lease (pacte.lease) keeps
that read off the request path while it is younger than the lease; when it is not (or
with the lease off) the request reads, through here. The guarantee (G5) is that a change
committed before a request arrived is seen by that request; it does not need a read
of its own. So a caller waits for a read that *began after it arrived*, and every
caller who arrived before that read began takes its answer: under concurrent load one
round trip serves many requests, and a lone request still pays exactly one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["FreshRead"]

T = TypeVar("T")


class FreshRead(Generic[T]):
    """`read()` called at most once at a time; each call returns the result of a call
    of `read` that began after it was made."""

    def __init__(self, read: Callable[[], T]) -> None:
        self._read = read
        self._cond = threading.Condition()
        self._began = 0  # how many reads have begun
        self._ended = 0  # the number of the latest read that ended
        self._running = False
        self._value: T | None = None
        self._error: BaseException | None = None

    def __call__(self) -> T:
        with self._cond:
            # A read under way began before this call: only a later one will do.
            wanted = self._began + 1
            while self._ended < wanted:
                if self._running:
                    self._cond.wait()
                    continue
                self._running = True
                self._began += 1
                number = self._began
                self._cond.release()
                try:
                    value, error = self._read(), None
                except BaseException as exc:  # handed to every caller it served
                    value, error = None, exc
                finally:
                    self._cond.acquire()
                    self._running = False
                self._value, self._error, self._ended = value, error, number
                self._cond.notify_all()
            if self._error is not None:
                raise self._error
            return self._value  # type: ignore[return-value]
