"""A customer's interactions, newest first, within the purpose's retention."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from pacte.clock import from_micros
from pacte.errors import InputError
from pacte.features.door import Door
from pacte.graph.checks import page_size
from pacte.graph.model import CHANNELS, NODE_KINDS
from pacte.graph.operations import Action
from pacte.graph.store import Cursor, Edge, Reached, decode_cursor, edge_cursor
from pacte.graph.views import InteractionView, Page, Withheld

__all__ = ["BEHAVIOUR", "interaction_views", "interactions"]

_INTERACTION = NODE_KINDS["Interaction"]
# The category interactions carry.
BEHAVIOUR = "user.behavior"


def interactions(
    door: Door,
    customer_id: str,
    *,
    first: int = 20,
    after: str | None = None,
    channel: str | None = None,
    fields: Collection[str] | None = None,
) -> Page[InteractionView]:
    """A customer's interactions, newest first, within the purpose's retention.

    `fields` names the fields to open (default: every one the purpose may use).
    """
    door._gate(Action.INTERACTION_LIST)
    first = page_size(first)
    if channel is not None and channel not in CHANNELS:
        raise InputError(f"unknown channel; one of {', '.join(CHANNELS)}")
    names = door._pick(_INTERACTION, fields) if fields is not None else None
    before = decode_cursor(after) if after else None
    door._require_visible(Action.INTERACTION_LIST, customer_id)
    if not door._category_ok(BEHAVIOUR):
        door._audit(door._record(Action.INTERACTION_LIST, subjects=[customer_id],
                                 outcome="withheld"))
        return Page([], None, False)
    horizon = door._horizon()
    allowed, withheld = door._split(_INTERACTION)
    wanted: Sequence[str] = allowed if names is None else names
    views: list[InteractionView] = []
    # A channel filter drops rows after the fetch, so read in chunks until the page
    # fills; edges are newest first, and those past the horizon are not read at all, so
    # a short chunk ends it. Each chunk comes with its interactions and their products.
    # Only the rows returned are opened: the one read past the page tells `has_next`.
    chunk = first + 1 if channel is None else max(first + 1, 20)
    while True:
        reached = door._reach(customer_id, "HAD", limit=chunk, before=before, since=horizon,
                              then="ABOUT")
        rows = _rows(reached, channel)
        room = first - len(views)
        views.extend(_views(door, rows[:room], customer_id, wanted, withheld))
        has_next = len(rows) > room
        if has_next or len(reached) < chunk:
            break
        last = reached[-1][0]
        before = Cursor(last.at, last.id)
    opened = views[0].fields.keys() if views else ()
    door._note(Action.INTERACTION_LIST, [customer_id], opened)
    end = views[-1].cursor if views else None
    return Page(views, end, has_next)


def interaction_views(door: Door, edges: Sequence[Edge], customer_id: str, *,
                      channel: str | None = None, names: list[str] | None = None
                      ) -> list[InteractionView]:
    """The views of the interactions `edges` (HAD) lead to, opening the allowed fields."""
    if not edges:
        return []
    ids = [e.dst for e in edges]
    nodes = door._read_nodes(ids)
    about = door._edges_many(ids, "ABOUT")
    allowed, withheld = door._split(_INTERACTION)
    wanted: Sequence[str] = allowed if names is None else names
    rows = [(e, nodes.get(e.dst), (a[0].dst if (a := about.get(e.dst)) else None))
            for e in edges]
    return _views(door, _rows(rows, channel), customer_id, wanted, withheld)


def _rows(reached: Sequence[Reached], channel: str | None) -> list[Reached]:
    """The rows of `reached` with an interaction, on `channel` when one is given."""
    # Filtered before opening: nothing is decrypted for a row nobody returns.
    if channel is None:
        return [r for r in reached if r[1] is not None]
    return [r for r in reached if r[1] is not None and r[1].props.get("channel") == channel]


def _views(door: Door, rows: Sequence[Reached], customer_id: str, allowed: Sequence[str],
           withheld: tuple[Withheld, ...]) -> list[InteractionView]:
    """The views of interactions reached by their HAD edges (`_rows`), with their products."""
    # Bound once: this builds every row of a page (twenty per customer-360).
    open_, when, cursor, view = door._open, from_micros, edge_cursor, InteractionView
    return [view(node.id, customer_id, when(e.at), open_(node, allowed), product_id, withheld,
                 cursor(e.at, e.id))
            for e, node, product_id in rows if node is not None]
