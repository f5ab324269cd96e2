"""Copying a WAL-mode SQLite file's log into the database, from a thread of its own.

With SQLite's automatic checkpoints, the commit that finds the log past 1,000 pages
copies it into the database file and syncs it, and that one append pays for a
thousand: on a machine with slow syncs that is most of an append's average cost. The
audit trail commits once per request, so it hands the copy to this thread instead:
after every `every` commits it runs a PASSIVE checkpoint on a connection of its own,
which never blocks a writer or a reader. SQLite's automatic checkpoint stays on, set
ten times higher, as a backstop should this thread ever fall behind.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

__all__ = ["BACKSTOP_PAGES", "WalCheckpointer"]

BACKSTOP_PAGES = 10_000


class WalCheckpointer:
    """Checkpoints `path` in the background; `poke()` after each commit, `close()` at the end."""

    def __init__(self, path: Path, *, every: int = 500) -> None:
        self._path = path
        self._every = every
        self._count = 0
        self._wake = threading.Event()
        self._due = False
        self._stopping = False
        self.copies = 0  # checkpoints run, for tests and curious operators
        self._thread = threading.Thread(target=self._run, name=f"pacte-wal:{path.name}",
                                        daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """One more commit; every `every` of them wake the thread."""
        self._count += 1
        if self._count >= self._every:
            self._count = 0
            self._due = True
            self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self._path, isolation_level=None)
        except sqlite3.Error:
            return  # the backstop keeps the log bounded
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._due:
                    self._due = False
                    # Busy (another process is checkpointing) or failing: the log is
                    # copied later, by this thread or by the backstop; nothing is lost.
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        self.copies += 1
                if self._stopping:
                    return
        finally:
            db.close()

    def close(self) -> None:
        """Stop the thread, after the checkpoint it was asked for, if any."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)
