"""A per-process cache of one SQLite store's reads, exactly as fresh as reading the file.

A customer-360 reads the same few rows request after request (the customer, their
consents, their newest interactions and purchases); reading and decoding them again
costs about a third of the request. `SQLiteStore` keeps what it read here and serves it
again for as long as the file has not changed, which it checks before every read it
serves from here:

- `PRAGMA data_version` changes when another connection, in this process or another,
  has committed since this connection last looked;
- the connection's `total_changes` grows with every row this connection itself inserts,
  updates or deletes (`write`, `set_meta`, the deletions of an erasure), committed or
  not, whatever method made the change.

Either changed: everything is dropped (`sync`). The store does the check, the lookup and,
on a miss, the read of the file and the keeping of its answer under its one lock, which
its writes take too: no write of this connection can come between a miss's read and its
keeping, and a commit of another connection that comes between them changes
`data_version` after the version this cache was synced to, so the next read drops the
answer along with the rest (see docs/sqlite-reads.md for the whole argument).

What is kept is shared by every request of the process, so it is read-only: props are
`MappingProxyType` views (`frozen`), lists are kept as tuples and handed out as new
lists. It holds what the store holds, ciphertext for personal fields; the session
decrypts per request, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from types import MappingProxyType

from pacte.env import whole_number
from pacte.graph.store import Value

__all__ = ["DEFAULT_ENTRIES", "ENV", "MISSING", "Freeze", "ReadCache", "as_read",
           "entries_from_env", "frozen"]

ENV = "PACTE_READ_CACHE"
# Rows (nodes, edges, ids) kept at most: about 1 KB each with their ciphertext (see
# docs/sqlite-reads.md), so some 50 MB; 2,000 customers' 360s take about 40,000.
DEFAULT_ENTRIES = 50_000

_EMPTY: Mapping[str, Value] = MappingProxyType({})
# What a store makes the props it read into: `as_read` for its caller alone, `frozen`
# for an answer the cache keeps, which every request of the process shares.
Freeze = Callable[[dict[str, Value]], Mapping[str, Value]]


def as_read(props: dict[str, Value]) -> Mapping[str, Value]:
    return props


def frozen(props: dict[str, Value]) -> Mapping[str, Value]:
    """A read-only view of props read for the cache: a change raises TypeError."""
    return MappingProxyType(props) if props else _EMPTY


def entries_from_env() -> int:
    """PACTE_READ_CACHE: how many rows the cache keeps (0: off; unset: the default)."""
    value = whole_number(ENV, unit="rows (0: no read cache)")
    return DEFAULT_ENTRIES if value is None else value


class ReadCache:
    """Answers by key, each weighing the rows it holds, `entries` rows at most.

    Not thread-safe by itself: its store calls it under the store's lock only.
    When an answer would not fit, everything is dropped first: a lookup costs no
    bookkeeping, and a store whose working set fits (the default fits 2,000 customers'
    360s) drops nothing.
    """

    __slots__ = ("_answers", "_bound", "_size", "_version", "hits", "misses")

    def __init__(self, *, entries: int) -> None:
        if entries <= 0:
            raise ValueError("a read cache holds at least one row")
        self._bound = entries
        self._answers: dict[Hashable, object] = {}
        self._size = 0
        self._version: tuple[int, int] | None = None
        self.hits = 0
        self.misses = 0

    def sync(self, version: tuple[int, int]) -> None:
        """Drop everything unless the file is at the `version` the answers were read at."""
        if version != self._version:
            self.clear()
            self._version = version

    def get(self, key: Hashable) -> object:
        """The answer kept for `key`, or `MISSING`."""
        answer = self._answers.get(key, MISSING)
        if answer is MISSING:
            self.misses += 1
        else:
            self.hits += 1
        return answer

    def put(self, key: Hashable, answer: object, *, rows: int = 1) -> None:
        weight = max(rows, 1)
        if weight > self._bound:
            return  # larger than the whole cache: read each time
        if self._size + weight > self._bound:
            self.clear()
        self._answers[key] = answer
        self._size += weight

    def clear(self) -> None:
        self._answers.clear()
        self._size = 0

    @property
    def size(self) -> int:
        """The rows held."""
        return self._size

    def __len__(self) -> int:
        return len(self._answers)


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: object = _Missing()
