"""The storage boundary: a small property-graph protocol.

A `Store` keeps nodes, edges and blind-index entries. It knows nothing of purposes,
keys or people: personal values arrive already encrypted, as opaque `bytes`, and
leave the same way. Only the session above it decides, decrypts and audits.

Values are `str | int | float | bool | bytes | None` (plus lists of str for a few
structural fields). Times are integers, microseconds since the Unix epoch, so that
ordering is exact on every backend.

Edges are listed newest first by `(at, id)`; a `Cursor` is the `(at, id)` of the
last edge of the previous page, so pages are stable while new edges arrive.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol, cast, runtime_checkable

import orjson

__all__ = [
    "EVENT_INDEX",
    "NEO4J_SCHEMES",
    "Cursor",
    "Direction",
    "Edge",
    "Hop",
    "IndexEntry",
    "JoinedReads",
    "Node",
    "Props",
    "Reached",
    "ScopedReads",
    "Store",
    "Value",
    "WriteBatch",
    "decode_cursor",
    "decode_props",
    "decode_props_many",
    "edge_cursor",
    "encode_cursor",
    "encode_props",
    "event_token",
    "reach",
]

Value = str | int | float | bool | bytes | list[str] | None

# The one index whose entries are unique per (name, token): an event id names one
# interaction, even when two processes record it at the same moment. Every store
# enforces it with a unique constraint, and refuses a second entry with `Conflict`.
EVENT_INDEX = "Interaction.event_id"
# The URI schemes the Neo4j store serves (`pacte.graph.stores` chooses by them; the
# store checks them): here, so that neither of the two imports the other.
NEO4J_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")
Props = Mapping[str, Value]


def event_token(event_id: str) -> bytes:
    """The `EVENT_INDEX` token of an event id. Event ids are the caller's idempotency
    keys, not personal data: a plain hash keeps the index entry fixed-size."""
    return hashlib.sha256(event_id.encode("utf-8")).digest()

Direction = Literal["out", "in"]


@dataclass(frozen=True, slots=True)
class Node:
    kind: str
    id: str
    props: Props = field(default_factory=dict)
    # The customer whose key protects this node's personal fields (None: no owner).
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    type: str
    id: str
    src: str
    dst: str
    at: int
    props: Props = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A blind-index token: `name` is e.g. 'Customer.email', `token` an HMAC."""

    name: str
    token: bytes
    node_id: str


@dataclass(frozen=True, slots=True)
class Cursor:
    at: int
    id: str


@dataclass
class WriteBatch:
    """Everything one `Store.write` applies, in a single transaction.

    An edge's two nodes must exist, in the store or in the same batch: Neo4j cannot
    hold a dangling relationship and refuses the batch, so writers never make one
    (SQLite does not check, for speed).

    Order of application: deletions (nodes, edges, then the index entries of the
    `unindex` node ids), then puts. Puts are upserts by id. Deleting a node also
    deletes its edges and its index entries, so erasure is one batch; `unindex` lets
    an update replace a node's blind-index entries (a changed email).
    """

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    index: list[IndexEntry] = field(default_factory=list)
    delete_nodes: list[str] = field(default_factory=list)
    delete_edges: list[str] = field(default_factory=list)
    unindex: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.nodes or self.edges or self.index or self.delete_nodes
                    or self.delete_edges or self.unindex)


@dataclass(frozen=True, slots=True)
class Hop:
    """One edge type to read around a node with `Store.prefetch`.

    The newest `limit` edges of `type` in `direction` (all of them when None); with
    `nodes`, the nodes at their other ends too; with `then`, every outgoing edge of those
    types at those nodes (an interaction's ABOUT edge, say); with `then_nodes`, the nodes
    those edges lead to as well (the product an interaction is about).
    """

    type: str
    direction: Direction = "out"
    limit: int | None = None
    nodes: bool = False
    then: tuple[str, ...] = ()
    then_nodes: bool = False


@runtime_checkable
class Store(Protocol):
    """What every backend provides. Conformance: tests/graph/test_store_conformance.py."""

    uri: str

    def write(self, batch: WriteBatch) -> None:
        """Apply the whole batch in one transaction, or nothing of it.

        A second `EVENT_INDEX` entry for a token raises `Conflict`. A batch that deletes
        nodes leaves none of their data behind in the store's files (erasure, G8).
        """

    def get_nodes(self, ids: Sequence[str]) -> dict[str, Node]:
        """The nodes with these ids that exist, in one round trip."""

    def scan_nodes(self, kind: str, *, after: str | None = None, limit: int = 100) -> list[Node]:
        """Nodes of one kind in id order, starting after `after` (keyset pagination)."""

    def edges(
        self,
        node_id: str,
        type: str,
        *,
        direction: Direction = "out",
        limit: int | None = None,
        before: Cursor | None = None,
    ) -> list[Edge]:
        """Edges of `type` at a node, newest first; `before` continues a previous page."""

    def edges_many(
        self, node_ids: Sequence[str], type: str, *, direction: Direction = "out"
    ) -> dict[str, list[Edge]]:
        """All edges of `type` at each node, newest first, in one round trip."""

    def find_edges(self, type: str, src: str, dst: str) -> list[Edge]:
        """Every edge of `type` from `src` to `dst`, newest first."""

    def edge_sources(self, dst: str, type: str, *, after: str | None = None,
                     limit: int = 100) -> list[str]:
        """Ids of the nodes with an edge of `type` into `dst`, each once, in id order,
        after `after` (keyset pagination: who consented to a purpose, say)."""

    def lookup(self, name: str, token: bytes) -> list[str]:
        """Node ids whose blind-index entry `name` equals `token`."""

    def lookup_many(self, name: str, tokens: Sequence[bytes]) -> dict[bytes, list[str]]:
        """`lookup` of many tokens in one round trip: for each token that has entries,
        their node ids in id order; a token without one is absent."""

    def owned_by(self, owner: str) -> list[str]:
        """Ids of every node whose `owner` is this customer (for erasure and export)."""

    def count_nodes(self) -> dict[str, int]:
        """Number of nodes per kind."""

    def count_edges(self) -> dict[str, int]:
        """Number of edges per type."""

    def iter_nodes(self, *, batch: int = 1000) -> Iterator[list[Node]]:
        """Every node, in batches (for migration and export)."""

    def iter_edges(self, *, batch: int = 1000) -> Iterator[list[Edge]]:
        """Every edge, in batches."""

    def iter_index(self, *, batch: int = 1000) -> Iterator[list[IndexEntry]]:
        """Every blind-index entry, in batches."""

    def get_meta(self, key: str) -> str | None:
        """A small named setting kept with the graph (schema version, migration state)."""

    def set_meta(self, key: str, value: str) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class ScopedReads(Protocol):
    """An optional capability of a store whose reads are round trips (Neo4j): a block
    (one request) whose reads may be answered from one neighbourhood read. A local
    store (SQLite) has no use for it and does not offer it; the session asks
    `isinstance(store, ScopedReads)`.
    """

    def read_scope(self, *, around: str | None = None, hops: Sequence[Hop] = ()
                   ) -> AbstractContextManager[None]:
        """A block whose reads may be answered from what it prefetched."""
        ...

    def prefetch(self, around: str, hops: Sequence[Hop]) -> bool:
        """Read a node and its hops into the current scope; False when nothing was read."""
        ...

    def prefetch_page(self, kind: str, *, after: str | None, limit: int,
                      hops: Sequence[Hop]) -> bool:
        """Read the page `scan_nodes` would read, each node with its hops, into the
        current scope; False when nothing was read."""
        ...

    def prefetch_lookup(self, name: str, token: bytes, hops: Sequence[Hop], *, kind: str,
                        decoy_after: str) -> bool:
        """Read the nodes an index entry points at, with their hops, into the current
        scope (when it points at nothing, the first node of `kind` after `decoy_after`,
        or the first); False when nothing was read."""
        ...


@runtime_checkable
class BulkLookups(Protocol):
    """An optional capability of a store whose reads are round trips (Neo4j): the
    lookups of a bulk load (pacte.ingest) in fewer of them. A local store (SQLite)
    answers the same questions with `lookup_many` and `edges_many` as cheaply and does
    not offer it; the session asks `isinstance(store, BulkLookups)`.
    """

    def lookup_groups(self, groups: Mapping[str, Sequence[bytes]]
                      ) -> dict[str, dict[bytes, list[str]]]:
        """`lookup_many` of several indexes in one round trip: per index name, the
        tokens that have entries and their node ids in id order."""
        ...

    def ids_of_kind(self, ids: Sequence[str], kind: str) -> list[str]:
        """Those of `ids` that are nodes of `kind`, in one round trip that reads no
        edge and no props."""
        ...


# An edge, the node it leads to (None: absent), and where the newest edge of a second
# type out of that node leads (None: no such edge, or no second type asked for).
Reached = tuple[Edge, Node | None, str | None]


@runtime_checkable
class JoinedReads(Protocol):
    """An optional capability of a store that joins in one read what `edges`,
    `get_nodes` and `edges_many` answer in three (SQLite): a customer's interactions
    with the products they are about, say. Call it through `reach`, which answers the
    same on a store without it (Neo4j, whose read scope answers those three instead).
    """

    def reach(self, node_id: str, type: str, *, limit: int | None = None,
              before: Cursor | None = None, since: int | None = None,
              then: str | None = None) -> list[Reached]:
        """The outgoing edges of `type` at a node, newest first, from `before` on, those
        at `since` or later only, the newest `limit` of them; each with the node it leads
        to and, with `then`, where that node's newest edge of type `then` leads."""
        ...


def reach(store: Store, node_id: str, type: str, *, limit: int | None = None,
          before: Cursor | None = None, since: int | None = None,
          then: str | None = None) -> list[Reached]:
    """`JoinedReads.reach` on any store: in one read where the store joins, else from
    the reads it would otherwise take (nothing past the edges when none is left)."""
    if _joins(store):
        return cast(JoinedReads, store).reach(node_id, type, limit=limit, before=before,
                                              since=since, then=then)
    edges = store.edges(node_id, type, limit=limit, before=before)
    if since is not None:
        edges = [e for e in edges if e.at >= since]
    if not edges:
        return []
    ids = list(dict.fromkeys(e.dst for e in edges))
    nodes = store.get_nodes(ids)
    if then is None:
        return [(e, nodes.get(e.dst), None) for e in edges]
    further = store.edges_many(ids, then)
    return [(e, nodes.get(e.dst), f[0].dst if (f := further.get(e.dst)) else None)
            for e in edges]


# Whether a store class joins, asked once per class: `isinstance` against a
# runtime-checkable protocol inspects its attributes each time.
_JOINS: dict[type, bool] = {}


def _joins(store: object) -> bool:
    known = _JOINS.get(type(store))
    if known is None:
        known = _JOINS[type(store)] = isinstance(store, JoinedReads)
    return known


# -- helpers shared by backends --------------------------------------------------

# Bytes travel as tagged base64 strings. A str that itself starts with NUL is tagged
# too, so no string can ever be read back as bytes.
_BYTES_TAG = "\x00b64:"
_STR_TAG = "\x00s:"

# One encoder for every call: json.dumps with options builds a new one each time.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_props(props: Props) -> str:
    """Props as compact JSON; bytes are tagged base64 so they round-trip exactly."""
    if not props:
        return "{}"
    out: dict[str, object] = {}
    for k, v in props.items():
        if isinstance(v, bytes):
            out[k] = _BYTES_TAG + base64.b64encode(v).decode()
        elif isinstance(v, str) and v.startswith("\x00"):
            out[k] = _STR_TAG + v
        else:
            out[k] = v
    return _encode(out)


def decode_props(text: str | bytes) -> dict[str, Value]:
    """What `encode_props` wrote, with the values it was given.

    Read on every node and edge a request touches, so orjson parses it (several times
    faster than the json module) where it gives the same values; where it may not, the
    json module does: text it refuses (NaN, infinities, lone surrogates) and integers
    beyond 64 bits, which orjson reads as floats (they show as integral floats of that
    size, which the json module then reads again).
    """
    if isinstance(text, bytes):
        text = text.decode(json.detect_encoding(text), "surrogatepass")  # as json.loads
    if text == "{}":
        return {}  # most edges: nothing to parse
    try:
        raw: dict[str, Value] = _loads(text)
    except _LoadError:
        raw = json.loads(text)
    else:
        for v in raw.values():
            # A set lookup of the type: most values are strings and integers, and
            # `isinstance` with a union cost more than the parse.
            if type(v) in _MAY_DIFFER and not _exact(v):
                raw = json.loads(text)
                break
    # A tagged value starts with NUL, which the encoder always escapes: text without
    # that escape holds none.
    return _untag(raw) if _NUL_ESCAPE in text else raw


def _untag(raw: dict[str, Value]) -> dict[str, Value]:
    for k, v in raw.items():
        if type(v) is str and v[:1] == "\x00":
            if v[:_BYTES_TAG_LEN] == _BYTES_TAG:
                raw[k] = _b64decode(v[_BYTES_TAG_LEN:])
            elif v[:_STR_TAG_LEN] == _STR_TAG:
                raw[k] = v[_STR_TAG_LEN:]
    return raw


def decode_props_many(texts: Sequence[str]) -> list[dict[str, Value]]:
    """`decode_props` of each of `texts` (a Neo4j read scope decodes dozens at once);
    a text that is not one JSON object is refused, as no store writes one."""
    decoded = []
    for text in texts:
        if not text.startswith("{"):
            raise ValueError("props are not JSON objects")
        decoded.append(decode_props(text))  # trailing data is refused by the parser
    return decoded


_loads = orjson.loads
_LoadError = orjson.JSONDecodeError
# base64.b64decode without its wrapper: the same checks, for ASCII text.
_b64decode = binascii.a2b_base64
_NUL_ESCAPE = "\\u0000"
# The smallest magnitude orjson reads as a float instead of an integer (beyond uint64
# on the positive side, but a float that large is checked either way).
_INT64_BEYOND = float(2**63)
_MAY_DIFFER = frozenset({float, list, dict})
_BYTES_TAG_LEN = len(_BYTES_TAG)
_STR_TAG_LEN = len(_STR_TAG)


def _exact(value: object) -> bool:
    """False where orjson may have read an integer as a float (checked in lists too)."""
    if isinstance(value, float):
        return not (value.is_integer() and abs(value) >= _INT64_BEYOND)
    if isinstance(value, list):
        return all(map(_exact, value))
    if isinstance(value, dict):
        return all(map(_exact, value.values()))
    return True


def encode_cursor(cursor: Cursor) -> str:
    """An opaque, URL-safe cursor string for API clients."""
    return edge_cursor(cursor.at, cursor.id)


def edge_cursor(at: int, id: str) -> str:
    """`encode_cursor(Cursor(at, id))`, made for every edge of a page: base64url without
    padding, from binascii directly (base64's wrappers cost more than the encoding)."""
    raw = _b2a_base64(f"{at}:{id}".encode(), newline=False)
    return raw.translate(_URL_SAFE).rstrip(b"=").decode("ascii")


_b2a_base64 = binascii.b2a_base64
_URL_SAFE = bytes.maketrans(b"+/", b"-_")


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def decode_cursor(text: str) -> Cursor:
    from pacte.errors import InputError

    try:
        pad = "=" * (-len(text) % 4)
        at, _, id_ = base64.urlsafe_b64decode(text + pad).decode().partition(":")
        if not id_:
            raise ValueError
        moment = int(at)
        if not _INT64_MIN <= moment <= _INT64_MAX:
            # Both stores keep times as 64-bit integers; a bigger one overflows there.
            raise ValueError
        return Cursor(moment, id_)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError("malformed cursor") from exc


def chunked(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
