"""What every server on one Neo4j database must see from its next request on, read in one
query and held under a lease (pacte.lease): the API-key revocation stamp
(pacte.graph.key_cache) and the key vault's state, its KEK version and destruction
counter (pacte.crypto.neo4j_vault).

Before, each request read both, two round trips before it read anything. Now one query
reads both, requests use the value while its read began less than the lease (200 ms)
ago, and the first request that finds it 50 ms old renews it: one request in many pays
a round trip. What changes this state (a revocation, an erasure, tombstones restored, a key
rotation) commits, then waits the lease out before it returns (`changed`), so that a
request arriving after it, on any server, uses a read that began after the commit (G5).

Servers need not be configured alike: each announces its lease in the database before
its first read (the largest one announced is kept), and a writer waits out the largest,
read after its commit. A server whose lease is 0 reads per request and waits out the
others'. Lowering the lease of every server leaves the largest announced in place
(writers keep waiting it) until `(:PacteLease)` is deleted, once no server runs with it.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from pacte.clock import Elapsed, elapsed
from pacte.errors import StorageError
from pacte.graph.neo4j_store import Neo4jStore
from pacte.lease import Lease, LeaseTimes

__all__ = ["STAMP_KEY", "SharedState", "State", "shared_state"]

STAMP_KEY = "revocations.stamp"  # a PacteMeta entry, written with Store.set_meta

# One row whatever exists yet: each OPTIONAL MATCH finds one node or none (unique keys).
_READ = (
    "OPTIONAL MATCH (m:PacteMeta {key: $stamp}) "
    "OPTIONAL MATCH (v:PacteVault {key: 'vault'}) "
    "OPTIONAL MATCH (l:PacteLease {key: 'lease'}) "
    "RETURN m.value, v.kek_version, v.destroy_seq, l.max_ms"
)
_ANNOUNCE = (
    "MERGE (l:PacteLease {key: 'lease'}) ON CREATE SET l.max_ms = $ms "
    "ON MATCH SET l.max_ms = CASE WHEN l.max_ms < $ms THEN $ms ELSE l.max_ms END"
)


@dataclass(frozen=True, slots=True)
class State:
    stamp: bytes  # b"" before the first revocation
    vault: tuple[int, int] | None  # (kek_version, destroy_seq); None: no vault here
    longest_lease: float  # seconds: the longest lease a server announced here


class SharedState:
    """The state of one Neo4j database that other servers change, leased."""

    def __init__(self, store: Neo4jStore, *, times: LeaseTimes | None = None,
                 clock: Elapsed = elapsed, sleep: Callable[[float], None] = time.sleep
                 ) -> None:
        self._store = store
        self._announced = False
        self.lease = Lease(self._read, times=times or LeaseTimes.from_env(), clock=clock,
                           sleep=sleep)
        self._longest = self.lease.times.lease

    def get(self) -> State:
        """A read begun less than a lease ago (or now); StorageError when it fails."""
        return self.lease.get()

    def changed(self) -> None:
        """After a commit that changed this state: return once no server may use a read
        of it that began before the commit."""
        try:
            longest = self.lease.refresh().longest_lease
        except StorageError:
            # The commit is made; wait out the longest lease known, the default's at least.
            longest = max(self._longest, LeaseTimes().lease)
        self.lease.wait_out(lease=longest)

    def _read(self) -> State:
        if not self._announced and self.lease.times.lease:
            # Before the first read this server may hold under its lease: a writer that
            # commits after it reads the announcement (see the module's docstring).
            ms = round(self.lease.times.lease * 1000)
            self._store.run_write("lease announcement",
                                  lambda tx: tx.run(_ANNOUNCE, ms=ms).consume())
            self._announced = True
        rows = self._store.run_read("shared state", _READ, stamp=STAMP_KEY)
        stamp, kek_version, destroy_seq, longest_ms = rows[0] if rows else (None,) * 4
        vault = (int(kek_version), int(destroy_seq)) \
            if kek_version is not None and destroy_seq is not None else None
        longest = int(longest_ms) / 1000 if longest_ms is not None else 0.0
        self._longest = max(self._longest, longest)
        return State(stamp=str(stamp).encode("ascii") if stamp is not None else b"",
                     vault=vault, longest_lease=longest)


_SHARED: weakref.WeakKeyDictionary[Neo4jStore, SharedState] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def shared_state(store: Neo4jStore) -> SharedState:
    """The one `SharedState` of this store object: the revocation stamp and the key vault
    over it share its reads."""
    with _SHARED_LOCK:
        state = _SHARED.get(store)
        if state is None:
            state = _SHARED[store] = SharedState(store)
        return state
