"""Relay conventions: connections (`edges { cursor node }`, `pageInfo`) and the Node interface.

Pages go forward only (`first`/`after`): every list is read in keyset order from
the store, which serves "the next n after this key" from an index, never "the n
before it". `hasPreviousPage` is therefore what Relay allows for forward paging: it
says whether `after` was given (the page continues an earlier one), without reading
backwards to check that an item before the cursor is still visible.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Generic, Self, TypeVar

import strawberry

from pacte.errors import InputError

__all__ = ["Connection", "Edge", "Node", "PageInfo", "decode_seq_cursor", "encode_seq_cursor"]

T = TypeVar("T")
S = TypeVar("S")


@strawberry.type(description="Where a page starts and ends, and whether others surround it.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="Pages go forward only: true when `after` was given, i.e. this page "
                    "continues an earlier one (whether items before the cursor are still "
                    "visible is not read again).")
    start_cursor: str | None
    end_cursor: str | None


@strawberry.interface(description="An object that can be fetched again by its id with "
                                  "`node(id:)`, under the same purpose and consent rules.")
class Node:
    id: strawberry.ID


@strawberry.type(description="One item of a page, with the cursor that points just past it.")
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A page of items; pass `pageInfo.endCursor` as `after` for the next.")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @classmethod
    def build(cls, items: Sequence[S], *, node: Callable[[S], T], cursor: Callable[[S], str],
              has_next: bool, after: str | None) -> Self:
        """The page of `items`; `after` is the cursor it was asked after (None: the first)."""
        edges = [Edge(cursor=cursor(i), node=node(i)) for i in items]
        return cls(edges=edges, page_info=PageInfo(
            has_next_page=has_next, has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None))


_SEQ_PREFIX = "seq:"


def encode_seq_cursor(seq: int) -> str:
    """An opaque cursor for a position in the audit trail."""
    return base64.urlsafe_b64encode(f"{_SEQ_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_seq_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith(_SEQ_PREFIX):
            raise ValueError(cursor)
        seq = int(text[len(_SEQ_PREFIX):])
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError("malformed cursor") from exc
    if not 0 <= seq < 2**63:
        # Sequence numbers are 64-bit integers in the trail; a bigger one overflows there.
        raise InputError("malformed cursor")
    return seq
