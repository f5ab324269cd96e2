"""Relay-style connections: `edges { cursor node }` and `pageInfo { hasNextPage endCursor }`."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import strawberry

from pacte.errors import InputError

__all__ = ["Connection", "Edge", "PageInfo", "decode_seq_cursor", "encode_seq_cursor"]

T = TypeVar("T")
S = TypeVar("S")


@strawberry.type(description="Where a page ends, and whether another follows.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


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
              has_next: bool) -> Connection[T]:
        edges = [Edge(cursor=cursor(i), node=node(i)) for i in items]
        return cls(edges=edges, page_info=PageInfo(
            has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None))


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
