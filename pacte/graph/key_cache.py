"""API keys already authenticated by this process, trusted until a revocation stamp moves.

Looking a key up in the store is two reads (the key's index entry, then the principal),
which on Neo4j are two round trips on every request, `{ __typename }` included. So a
process remembers the principal behind each key it has authenticated, and trusts that
memory only while the data directory's revocation stamp is the one it saw.

The stamp is a small file (`revocations.stamp`) beside the key vault and the audit trail,
which every process serving that directory shares: each authentication reads it (an
open and a read of 16 bytes, microseconds, no store), and a revocation replaces it with
a fresh random value once the store holds the revocation. A revocation therefore holds
from the next request on every process, as it did without the cache (G5):

- a process reads the stamp before it reads the store, and files what it read under the
  stamp it read first; the revoker writes the store before the stamp. An entry made from
  a read before the revocation is thus filed under an older stamp, and the first request
  to see the new stamp drops every entry;
- the stamp is replaced atomically (`os.replace`), so a reader sees the old value or the
  new one, never a torn file, and a random value cannot come back (an mtime could).

Servers on other machines share no file: beside Neo4j the stamp is in the store
(`StoreStamp`), read with the key vault's state under a lease (pacte.graph.neo4j_shared).
The argument above holds as it is: the stamp a request uses comes from a read that began
before the request's own store reads, and the revoker, after moving the stamp, waits
until no server uses a read of it that began before.

Unknown and revoked keys are never remembered: they always ask the store, so a new key
works at once. A stamp that cannot be read turns the cache off for that request. A stamp
that cannot be replaced raises RevocationNotPropagated after the store holds the
revocation (the trail records it as made, and incomplete); other processes may then
accept the key until the revocation is run again.
"""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pacte.errors import RevocationNotPropagated, StorageError

if TYPE_CHECKING:
    from pacte.graph.neo4j_store import Neo4jStore
    from pacte.graph.principals import Principal
    from pacte.graph.store import Store

__all__ = ["KeyCache", "RevocationStamp", "StoreStamp", "revocation_stamp"]

STAMP_FILE = "revocations.stamp"
_MAX_ENTRIES = 10_000  # principals are few; a flood of distinct valid keys just restarts it


class RevocationStamp:
    """A random value in a file, replaced by every revocation."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> bytes | None:
        """The current value (b"" before the first revocation); None when unreadable."""
        # os.open and one os.read rather than Path.read_bytes: half the cost (no buffered
        # file object, no fstat or isatty), on every request. The value is 16 bytes,
        # written whole before the file is moved into place, so one read gets it all.
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return b""
        except OSError:
            return None
        try:
            return os.read(fd, 64)
        except OSError:
            return None
        finally:
            os.close(fd)

    def move(self) -> None:
        """A fresh value, atomically; StorageError when it cannot be written."""
        staged = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        try:
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, secrets.token_bytes(16))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(staged, self.path)
        except OSError as exc:
            staged.unlink(missing_ok=True)
            raise RevocationNotPropagated(
                f"the key is revoked in the store, but {self.path.name} could not be "
                f"replaced ({exc.strerror}): other processes may accept it until the "
                "revocation is run again", retryable=True) from exc


class StoreStamp:
    """The same stamp kept in a Neo4j store's meta, for servers that share only the store.

    Read with the key vault's state in one query under a lease (pacte.graph.neo4j_shared):
    no round trip per request. A revocation moves it, then waits the lease out before
    it returns, so that it holds from the next request on every server (G5)."""

    def __init__(self, store: Neo4jStore) -> None:
        from pacte.graph.neo4j_shared import shared_state

        self._store = store
        self._shared = shared_state(store)

    def read(self) -> bytes | None:
        try:
            return self._shared.get().stamp
        except StorageError:
            return None

    def move(self) -> None:
        from pacte.graph.neo4j_shared import STAMP_KEY

        try:
            self._store.set_meta(STAMP_KEY, secrets.token_hex(16))
        except StorageError as exc:
            raise RevocationNotPropagated(
                "the key is revoked in the store, but the revocation stamp could not be "
                "moved: other servers may accept it until the revocation is run again",
                retryable=True) from exc
        self._shared.changed()


def revocation_stamp(store: Store, path: Path) -> RevocationStamp | StoreStamp:
    """A file stamp for a SQLite store (its data directory is the one machine's), the
    store's own otherwise."""
    from pacte.graph.sqlite_store import SQLiteStore

    if isinstance(store, SQLiteStore):
        return RevocationStamp(path)
    from pacte.graph.neo4j_store import Neo4jStore  # the driver: only beside Neo4j

    assert isinstance(store, Neo4jStore)
    return StoreStamp(store)


class KeyCache:
    """Key hash -> principal, valid while the stamp holds the value it was filed under."""

    def __init__(self, stamp: RevocationStamp | StoreStamp) -> None:
        self._stamp = stamp
        self._lock = threading.Lock()
        self._seen: bytes | None = None
        self._entries: dict[bytes, Principal] = {}

    def check(self) -> bytes | None:
        """Read the stamp (before any store read); drop every entry if it moved.

        Returns the value to file new entries under, None when nothing may be cached.
        """
        current = self._stamp.read()
        with self._lock:
            if current != self._seen:
                self._entries.clear()
                self._seen = current
        return current

    def get(self, key_hash: bytes) -> Principal | None:
        with self._lock:
            return self._entries.get(key_hash)

    def put(self, key_hash: bytes, principal: Principal, *, under: bytes | None) -> None:
        """Remember an active principal read after `check` returned `under`."""
        with self._lock:
            # Another thread may have seen a newer stamp since: then this read may predate
            # a revocation, and is not filed.
            if under is None or under != self._seen or principal.revoked:
                return
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[key_hash] = principal

    def revoked(self) -> None:
        """After the store holds a revocation: move the stamp, and forget here too."""
        with self._lock:
            self._entries.clear()
        self._stamp.move()
