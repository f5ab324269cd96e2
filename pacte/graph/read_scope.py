"""A session's read scope: whether a store has one, and the block that prefetches first.

A store with the optional `ScopedReads` capability (Neo4j) answers the reads of a
block (one request) from neighbourhoods it fetched in one round trip; on any other
store the scope is a block that does nothing. The decisions on what those reads may
return stay the session's (pacte.graph.session): this module only tells the stores
apart and opens the block.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol, cast

from pacte.graph.store import ScopedReads

__all__ = ["NO_SCOPE", "Around", "scoped"]


class _Prefetching(Protocol):
    """What `Around` needs of a session."""

    def read_scope(self) -> AbstractContextManager[None]: ...

    def prefetch(self, customer_id: str) -> None: ...


class Around:
    """`Session.around`: a class rather than a generator, since every request opens one."""

    __slots__ = ("_customer_id", "_scope", "_session")

    def __init__(self, session: _Prefetching, customer_id: str) -> None:
        self._session = session
        self._customer_id = customer_id
        self._scope = session.read_scope()

    def __enter__(self) -> None:
        self._scope.__enter__()
        try:
            self._session.prefetch(self._customer_id)
        except BaseException as exc:
            self._scope.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def __exit__(self, *exc: Any) -> bool | None:
        return self._scope.__exit__(*exc)


# The read scope of a store without the capability: entering and leaving it does nothing.
NO_SCOPE: AbstractContextManager[None] = nullcontext()

# Whether a store class has read scopes, asked once per class: `isinstance` against a
# runtime-checkable protocol inspects its attributes each time (~10 us, twice a request).
_SCOPED_TYPES: dict[type, bool] = {}


def scoped(store: object) -> ScopedReads | None:
    """The store as `ScopedReads`, or None when it has no read scopes."""
    kind = type(store)
    known = _SCOPED_TYPES.get(kind)
    if known is None:
        known = _SCOPED_TYPES[kind] = isinstance(store, ScopedReads)
    return cast(ScopedReads, store) if known else None
