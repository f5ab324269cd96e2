"""Customer reads: by id, many by id, by email or phone, pages and counts (G3, G4)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from pacte.errors import InputError, PurposeNotGranted
from pacte.features.door import Door
from pacte.graph.checks import (
    check_id,
    check_text,
    encode_id_cursor,
    id_cursor,
    page_size,
)
from pacte.graph.model import NODE_KINDS
from pacte.graph.operations import Action
from pacte.graph.store import Node
from pacte.graph.views import CustomerView, Page

__all__ = ["as_customer", "count_customers", "customer", "customer_by_email",
           "customer_by_phone", "customers", "customers_by_id"]

_CUSTOMER = NODE_KINDS["Customer"]


def customer(door: Door, customer_id: str, *, fields: Collection[str] | None = None
             ) -> CustomerView | None:
    """One customer, or None when absent or not visible under this purpose.

    `fields` names the fields to open (default: every one the purpose may use).
    """
    door._gate(Action.CUSTOMER_READ)
    check_id(customer_id)
    names = door._pick(_CUSTOMER, fields) if fields is not None else None
    node = door._visible_one(customer_id)
    if node is None and customer_id in door._parts:  # merged: the survivor answers
        customer_id = door._survivors([customer_id])[customer_id]
        node = door._visible_one(customer_id)
    view = door._customer_view(node, names) if node is not None else None
    door._note(Action.CUSTOMER_READ, [customer_id], view.fields.keys() if view else (),
               outcome="ok" if view else "not_found")
    return view


def customers_by_id(door: Door, customer_ids: Sequence[str], *,
                    fields: Collection[str] | None = None) -> dict[str, CustomerView]:
    """Many customers in one round trip (for DataLoaders); invisible ones are absent."""
    door._gate(Action.CUSTOMER_READ)
    ids = list(dict.fromkeys(customer_ids))
    for cid in ids:
        check_id(cid)
    names = door._pick(_CUSTOMER, fields)
    views = {n.id: door._customer_view(n, names) for n in door._visible_customers(ids)}
    merged = door._survivors([i for i in ids if i in door._parts])
    if merged:  # a merged part's id answers with its survivor
        views.update((n.id, door._customer_view(n, names)) for n in
                     door._visible_customers(sorted(set(merged.values()) - set(views))))
        views.update((i, views[s]) for i, s in merged.items() if s in views)
    opened = next(iter(views.values())).fields.keys() if views else ()
    door._audit(door._record(Action.CUSTOMER_READ, subjects={v.id for v in views.values()},
                             fields=opened))
    hidden = [i for i in ids if i not in views]
    if hidden:
        # Asked for but absent or not visible: on record, as for a single read.
        door._audit(door._record(Action.CUSTOMER_READ, subjects=hidden, outcome="not_found"))
    return views


def customer_by_email(door: Door, email: str, *, fields: Collection[str] | None = None
                      ) -> CustomerView | None:
    """Exact lookup through the blind index; None when absent or not visible."""
    return _lookup(door, "email", email, fields)


def customer_by_phone(door: Door, phone: str, *, fields: Collection[str] | None = None
                      ) -> CustomerView | None:
    """Exact lookup through the phone's blind index; None when absent or not visible.

    The number is normalised to E.164 as it was on the way in (a national number gets
    the data directory's default country code). Several customers may share a phone
    (households): the first visible one in id order is returned.
    """
    return _lookup(door, "phone", phone, fields)


def _lookup(door: Door, field: str, value: str, fields: Collection[str] | None
            ) -> CustomerView | None:
    """The visible customer whose `field` is `value`, found through its blind index.

    The answer for a hidden customer is the answer for nobody: None, after the same
    reads, with the same audit entry (G3); a purpose that may not use `field` may not
    look customers up by it at all.
    """
    names, token = _lookup_admitted(door, field, value, fields)
    # A miss reads a customer that cannot exist (NUL is in no id), as a hidden match
    # reads one that does (see `_confirmed`).
    miss = f"c_{token.hex()}\x00"
    # On Neo4j, within the request's read scope, the reads below and the fields of the
    # customer found are then answered from one round trip.
    door._prefetch_lookup(field, token, miss=miss)
    candidates = sorted(door._index_owners(field, token))
    door._customer_nodes(candidates)
    via: set[str] = set()  # survivors found by the value of one of their merged parts
    opened_parts: list[str] = []
    if parts := [c for c in candidates if c in door._parts]:
        via, opened_parts = _via_parts(door, field, value, parts)
        candidates = [c for c in candidates if c not in door._parts] + sorted(via)
    match = _confirmed(door, field, value, names, candidates or [miss], via)
    # The value is opened to confirm the match: on record even when not returned.
    used = match.fields.keys() if match else ()
    # Every part whose value was opened is named too: the trail says whose data it was.
    door._audit(door._record(
        Action.CUSTOMER_LOOKUP, subjects=[*([match.id] if match else []), *opened_parts],
        fields=used if field in used else (*used, field),
        outcome="ok" if match else "not_found"))
    return match


def _lookup_admitted(door: Door, field: str, value: str, fields: Collection[str] | None
                     ) -> tuple[list[str] | None, bytes]:
    """The gate of a lookup by `field`: the fields to open, and the value's index token."""
    door._gate(Action.CUSTOMER_LOOKUP)
    names = door._pick(_CUSTOMER, fields)
    reason = door._reason(_CUSTOMER.field(field))
    if reason is not None:
        door._deny(Action.CUSTOMER_LOOKUP, PurposeNotGranted(
            f"cannot look customers up by {field}: {reason}"))
    try:
        check_text(field, value)
        return names, door._index_token(field, value)
    except InputError:
        door._audit(door._record(Action.CUSTOMER_LOOKUP, outcome="bad_input"))
        raise


def _via_parts(door: Door, field: str, value: str, parts: list[str]
               ) -> tuple[set[str], list[str]]:
    """The survivors whose merged `parts` hold `value`, and the parts opened to know it."""
    survivors = door._survivors(parts)
    # Consent first: a part is opened only when the purpose sees its survivor, so a
    # hidden customer's value is never decrypted to find out (G3, G4).
    seen = set(door._visible_ids(sorted(set(survivors.values()))))
    opened = [c for c in parts if survivors[c] in seen]
    raw = door._read_nodes(opened) if opened else {}
    via = {survivors[c] for c in opened if door._same_indexed(
        field, door._open(as_customer(raw[c]), [field]).get(field), value)}
    return via, opened


def _confirmed(door: Door, field: str, value: str, names: list[str] | None,
               candidates: list[str], via: set[str]) -> CustomerView | None:
    """The first visible candidate whose decrypted `field` is `value` (or found `via` a
    part), as a view of `names`.

    A miss passes a customer that cannot exist (NUL is in no id), so it reads one, as a
    hidden match does: both cost the same (G3, timing). Its decoy is then a customer
    picked by the token, as arbitrary as the one a hidden match reads.
    """
    for node in door._visible_customers(candidates):
        if node.id in via:
            return door._customer_view(node, names)
        opened = door._open(node, [field])
        if door._same_indexed(field, opened.get(field), value):
            return door._customer_view(node, names, opened=opened)
    return None


def customers(door: Door, *, first: int = 20, after: str | None = None,
              fields: Collection[str] | None = None) -> Page[CustomerView]:
    """Visible customers in id order (keyset pagination)."""
    door._gate(Action.CUSTOMER_LIST)
    first = page_size(first)
    names = door._pick(_CUSTOMER, fields)
    start = id_cursor(after)
    # On Neo4j, within the request's read scope, the page and what its customers'
    # fields below read are then answered from one round trip.
    door._prefetch_page(start, first + 1)
    items = door._visible_page(start, first + 1)
    has_next = len(items) > first
    views = [door._customer_view(n, names) for n in items[:first]]
    door._audit(door._record(
        Action.CUSTOMER_LIST, subjects=[v.id for v in views],
        fields=views[0].fields.keys() if views else ()))
    end = encode_id_cursor(views[-1].id) if views else None
    return Page(views, end, has_next)


def as_customer(part: Node) -> Node:
    """A merged part's node as the customer it was, to open its fields."""
    return Node("Customer", part.id, part.props, part.owner)


def count_customers(door: Door) -> int:
    """How many customers this purpose may see; invisible ones are not counted."""
    door._gate(Action.CUSTOMER_COUNT)
    n = door._visible_count()
    door._audit(door._record(Action.CUSTOMER_COUNT, extra={"count": n}))
    return n
