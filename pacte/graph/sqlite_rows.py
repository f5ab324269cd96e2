"""The SQLite store's rows: as its read cache keeps them, and as a read hands them out.

What the read cache keeps of a row are tuples of strings, numbers and decoded props (dicts
of plain values), which the garbage collector stops tracking once it has seen them; the
Node and Edge objects are made per read from them. Kept as objects, 40,000 cached rows
made every full collection walk them (~50 ms instead of ~3 ms after `gc.freeze`, paid by
every request in flight at that moment: the customer-360's p99 went from 15 to 61 ms).
"""

from __future__ import annotations

from typing import TypeVar, cast

from pacte.graph.read_cache import Freeze, as_read
from pacte.graph.store import Edge, Node, Reached, Value, decode_props

__all__ = ["RawEdge", "RawNode", "RawReached", "as_is", "built_edge", "built_edges",
           "built_node", "edge_of", "node_of", "one", "raw_edge", "raw_node", "reached"]

R = TypeVar("R")

RawNode = tuple[str, str, "str | None", dict[str, Value]]  # id, kind, owner, props
RawEdge = tuple[str, str, str, str, int, dict[str, Value]]  # id, type, src, dst, at, props
# A reached row: edge id, its dst, at, edge props, node kind, owner, props, the next dst.
RawReached = tuple[str, str, int, dict[str, Value], "str | None", "str | None",
                   "dict[str, Value] | None", "str | None"]


def raw_node(row: tuple[str, str, str | None, str]) -> RawNode:
    return (row[0], row[1], row[2], decode_props(row[3]))


def built_node(raw: RawNode, props: Freeze) -> Node:
    return Node(raw[1], raw[0], props(raw[3]), raw[2])


def raw_edge(row: tuple[str, str, str, str, int, str]) -> RawEdge:
    return (row[0], row[1], row[2], row[3], row[4],
            {} if row[5] == "{}" else decode_props(row[5]))


def built_edge(raw: RawEdge, props: Freeze) -> Edge:
    return Edge(raw[1], raw[0], raw[2], raw[3], raw[4], props(raw[5]))


def node_of(row: tuple[str, str, str | None, str]) -> Node:
    return built_node(raw_node(row), as_read)


def edge_of(row: tuple[str, str, str, str, int, str]) -> Edge:
    return built_edge(raw_edge(row), as_read)


def as_is(value: R, _: Freeze) -> R:
    return value


def one(_: object) -> int:
    return 1


def built_edges(raws: tuple[RawEdge, ...], props: Freeze) -> list[Edge]:
    return [built_edge(e, props) for e in raws]


def reached(node_id: str, type: str, rows: list[RawReached], props: Freeze
             ) -> list[Reached]:
    out: list[Reached] = []
    nodes: dict[str, Node] = {}  # a node that several edges lead to is made once
    for eid, dst, at, edge_props, kind, owner, node_props, further in rows:
        made = nodes.get(dst)
        if made is None and kind is not None:
            made = nodes[dst] = Node(kind, dst, props(cast("dict[str, Value]", node_props)),
                                     owner)
        out.append((Edge(type, eid, node_id, dst, at, props(edge_props)), made, further))
    return out
