"""Which erasures are under way: what tells a live erasure from one whose process died.

An erasure notes itself pending in the key vault with the destruction of the keys, and
removes the note when done (pacte.backend). An open finds the notes left; it must
finish those whose process is gone, and leave alone those another process is still
running, or the trail records a spurious "resumed" erasure beside the real one.

- Beside a data directory (one machine): `erasing.lock` in it, held shared by every
  erasure under way (`flock`), which the OS releases when the process dies. An open
  finishes the pending erasures only if it can take the lock exclusively at once.
- Beside Neo4j (servers on many machines, each with its own working directory): a lock
  in the database (one for every erasure, which an open re-applying the erasure log
  must find free, and one per customer being erased): the erasing server holds the write
  lock of a `PacteMeta {key: 'erasing:<customer>'}` node in a transaction kept open
  for the erasure; the database releases it when the server's connection dies. An
  open that cannot take that lock within a second leaves the erasure to its server.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pacte.graph.neo4j_store import Neo4jStore
    from pacte.graph.store import Store

__all__ = ["ERASING_LOCK_FILE", "ErasureLocks", "erasure_locks"]

ERASING_LOCK_FILE = "erasing.lock"
_WAIT = 1.0  # seconds an open waits for a lock a live erasure holds


class ErasureLocks(Protocol):
    def erasing(self, customer_id: str) -> contextlib.AbstractContextManager[None]:
        """Held for the whole of an erasure."""

    def abandoned(self, customer_id: str) -> contextlib.AbstractContextManager[bool]:
        """Whether no process is erasing `customer_id` (held meanwhile, if so)."""

    def quiet(self) -> contextlib.AbstractContextManager[bool]:
        """Whether the erasure log may be applied again now (held meanwhile, if so): on
        one machine, no erasure under way; beside Neo4j, no other server applying it."""


def erasure_locks(store: Store, data_dir: Path) -> ErasureLocks:
    from pacte.graph.sqlite_store import SQLiteStore

    if isinstance(store, SQLiteStore):
        return FileLocks(data_dir)
    from pacte.graph.neo4j_store import Neo4jStore

    assert isinstance(store, Neo4jStore)
    return StoreLocks(store)


class FileLocks:
    """`erasing.lock` in the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / ERASING_LOCK_FILE

    @contextlib.contextmanager
    def erasing(self, customer_id: str) -> Iterator[None]:
        with self._locked(fcntl.LOCK_SH):  # always granted
            yield

    def abandoned(self, customer_id: str) -> contextlib.AbstractContextManager[bool]:
        return self._locked(fcntl.LOCK_EX | fcntl.LOCK_NB)

    def quiet(self) -> contextlib.AbstractContextManager[bool]:
        return self._locked(fcntl.LOCK_EX | fcntl.LOCK_NB)

    @contextlib.contextmanager
    def _locked(self, operation: int) -> Iterator[bool]:
        # Each call opens the file anew: flock locks belong to an open file, so two
        # erasures of one process, or an erasure and an open, exclude each other just
        # as two processes do.
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, operation)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the lock


_HOLD = "MERGE (m:PacteMeta {key: $key}) SET m.value = 'erasing'"
_RELEASE = "MATCH (m:PacteMeta {key: $key}) DELETE m"
_LOG_KEY = "erasing:\x00log"  # never released by deletion: erasures queue on it


class StoreLocks:
    """One lock node per customer being erased, held in an open transaction, and one
    for the erasure log: every erasure holds it too (the outermost, when the erasure of
    a merged customer nests its parts'), so an open applies the log again only while
    no erasure runs on any server (`quiet`), as `erasing.lock` does on one machine."""

    def __init__(self, store: Neo4jStore) -> None:
        self._store = store
        self._depth = threading.local()  # erasures this thread holds the log lock for

    def _held(self) -> int:
        return int(getattr(self._depth, "n", 0))

    @contextlib.contextmanager
    def _holding(self, *keys: str) -> Iterator[None]:
        with self._store.write_transaction("erasure lock") as tx:
            for key in keys:
                tx.run(_HOLD, key=key).consume()
            self._depth.n = self._held() + 1
            try:
                yield
            finally:
                self._depth.n = self._held() - 1
            for key in keys:
                if key != _LOG_KEY:
                    tx.run(_RELEASE, key=key).consume()

    def erasing(self, customer_id: str) -> contextlib.AbstractContextManager[None]:
        key = "erasing:" + customer_id
        return self._holding(key) if self._held() else self._holding(_LOG_KEY, key)

    @contextlib.contextmanager
    def abandoned(self, customer_id: str) -> Iterator[bool]:
        key = "erasing:" + customer_id
        # A transaction's timeout bounds all of it, so the lock is first tried in one
        # that waits at most a second, then held in one that lasts while the erasure
        # is finished. Two servers may both get past the try: the second waits for
        # the first, then finds the erasure no longer pending (the caller asks again).
        if not self._free(key):
            yield False
            return
        with self.erasing(customer_id):
            yield True

    @contextlib.contextmanager
    def quiet(self) -> Iterator[bool]:
        if self._held() or not self._free(_LOG_KEY):
            yield False
            return
        with self._holding(_LOG_KEY):
            yield True

    def _free(self, key: str) -> bool:
        from neo4j.exceptions import DriverError, Neo4jError

        with self._store.write_transaction("erasure lock", timeout=_WAIT) as tx:
            try:
                tx.run(_HOLD, key=key).consume()
            except (Neo4jError, DriverError):
                return False  # not granted within the timeout: a live server holds it
            finally:
                tx.close()  # rolled back: nothing written
        return True
