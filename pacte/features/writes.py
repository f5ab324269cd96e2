"""Writes for customers: their profile and their interactions, each audited before it
commits (G6, see docs/writes.md)."""

from __future__ import annotations

import secrets
from datetime import datetime

from pacte.clock import from_micros, input_micros
from pacte.errors import Conflict, InputError, PurposeNotGranted
from pacte.features.door import Door
from pacte.features.interactions import BEHAVIOUR, interaction_views
from pacte.graph.checks import check_date, check_email, check_id, check_text, same_email
from pacte.graph.model import CHANNELS, INTERACTION_KINDS, NODE_KINDS
from pacte.graph.operations import Action
from pacte.graph.store import Cursor, Edge, Node, Value, WriteBatch, encode_cursor
from pacte.graph.views import CustomerView, InteractionView

__all__ = ["record_interaction", "upsert_customer"]

_CUSTOMER = NODE_KINDS["Customer"]
_INTERACTION = NODE_KINDS["Interaction"]


def upsert_customer(
    door: Door,
    *,
    id: str | None = None,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    address: str | None = None,
    birth_date: str | None = None,
    segment: str | None = None,
) -> CustomerView:
    """Create a customer, or update the given fields of an existing one."""
    door._gate(Action.CUSTOMER_WRITE)
    raw = {"name": name, "email": email, "phone": phone, "address": address,
           "birth_date": birth_date, "segment": segment}
    given: dict[str, str] = {k: v.strip() for k, v in raw.items() if v is not None}
    _check_profile(id, given)
    purpose = door.purpose
    denied = [k for k in given if door._reason(_CUSTOMER.field(k)) is not None]
    if denied:
        door._deny(Action.CUSTOMER_WRITE, PurposeNotGranted(
            f"purpose {purpose.id} may not write {', '.join(sorted(denied))}"))
    if id is None:
        if purpose.needs_consent:
            door._deny(Action.CUSTOMER_WRITE, PurposeNotGranted(
                f"customers are created under a contract or request purpose, "
                f"not {purpose.id}"))
        if "name" not in given or "email" not in given:
            raise InputError("a new customer needs a name and an email")
        id = "c_" + secrets.token_hex(6)
        props: dict[str, Value] = {"created_at": door._now_us}
    else:
        node = door._require_visible(Action.CUSTOMER_WRITE, id)
        props = door._open(node, [f.name for f in _CUSTOMER.fields])
    if "email" in given and not same_email(props.get("email"), given["email"]):
        _refuse_taken_email(door, id, given["email"])
    props.update(given)
    door._write(WriteBatch(nodes=[Node("Customer", id, props, id)], unindex=[id]),
                door._record(Action.CUSTOMER_WRITE, subjects=[id], fields=tuple(given)), keys=[id])
    door._forget(id)
    allowed, withheld = door._split(_CUSTOMER)
    return CustomerView(id, {k: props.get(k) for k in allowed}, withheld)


def _check_profile(id: str | None, given: dict[str, str]) -> None:
    if id is not None:
        check_id(id)
    for k, v in given.items():
        check_text(k, v)
        if len(v) > 1000:
            raise InputError(f"{k} is too long (1000 characters at most)")
    if "email" in given:
        check_email(given["email"])
    if "birth_date" in given:
        check_date(given["birth_date"])


def _refuse_taken_email(door: Door, customer_id: str, email: str) -> None:
    """Refuse an email another customer has, saying nothing of hidden customers (G3).

    The owner of a taken email may be a customer this purpose does not see, and
    "already belongs to another customer" would then reveal that they exist. So
    under a consent-based purpose an email is not changed at all, whichever it is,
    taken or not: the same refusal, which depends on nothing but the purpose.
    Purposes that see every customer (service, self_service) change emails and are
    told when one is taken, which reveals nobody they could not read anyway.
    """
    if door.purpose.needs_consent:
        door._deny(Action.CUSTOMER_WRITE, PurposeNotGranted(
            f"emails are changed under a purpose that sees every customer, "
            f"not {door.purpose.id}"), subjects=[customer_id])
    token = door._index_token("email", email)
    others = [c for c in door._index_owners("email", token) if c != customer_id]
    for node in door._customer_nodes(others).values():
        if same_email(door._open(node, ["email"]).get("email"), email):
            door._audit(door._record(Action.CUSTOMER_WRITE, outcome="bad_input",
                                     subjects=[customer_id], reason="email_taken"))
            raise InputError("this email already belongs to another customer")


def record_interaction(
    door: Door,
    *,
    customer_id: str,
    channel: str,
    kind: str,
    event_id: str,
    occurred_at: datetime | None = None,
    summary: str | None = None,
    product_id: str | None = None,
    amount: float | None = None,
) -> InteractionView:
    """Record one contact; replaying the same `event_id` returns the first record."""
    door._gate(Action.INTERACTION_WRITE)
    _check_interaction(channel, kind, event_id, summary)
    at = input_micros(occurred_at, "occurred_at") if occurred_at is not None else door._now_us
    if not door._category_ok(BEHAVIOUR):
        door._deny(Action.INTERACTION_WRITE, PurposeNotGranted(
            f"purpose {door.purpose.id} may not record interactions"))
    door._require_visible(Action.INTERACTION_WRITE, customer_id)
    existing = door._event_owners(event_id)
    if existing:
        return _recorded(door, existing[0], customer_id)
    if product_id is not None:
        check_id(product_id)
        prod = door._read_nodes([product_id]).get(product_id)
        if prod is None or prod.kind != "Product":
            raise InputError("no such product")
    iid = "i_" + secrets.token_hex(8)
    props: dict[str, Value] = {"channel": channel, "kind": kind, "occurred_at": at,
                               "event_id": event_id, "summary": summary, "amount": amount}
    edges = [Edge("HAD", "h_" + iid, customer_id, iid, at)]
    if product_id is not None:
        edges.append(Edge("ABOUT", "a_" + iid, iid, product_id, at))
        if kind == "purchase":
            edges.append(Edge("BOUGHT", "b_" + iid, customer_id, product_id, at,
                              {"amount": amount}))
    batch = WriteBatch(nodes=[Node("Interaction", iid, props, customer_id)], edges=edges,
                       index=[door._event_entry(event_id, iid)])
    try:
        door._write(batch, door._record(
            Action.INTERACTION_WRITE, subjects=[customer_id],
            fields=tuple(k for k, v in props.items() if v is not None)), keys=[customer_id])
    except Conflict:
        # Another request (another process, maybe) stored this event id between
        # the lookup and the write: the store's unique index refused this one.
        winner = door._event_owners(event_id)
        if not winner:
            raise
        return _recorded(door, winner[0], customer_id)
    allowed, withheld = door._split(_INTERACTION)
    return InteractionView(iid, customer_id, from_micros(at),
                           {k: props.get(k) for k in allowed}, product_id, withheld,
                           encode_cursor(Cursor(at, edges[0].id)))


def _check_interaction(channel: str, kind: str, event_id: str, summary: str | None) -> None:
    # The messages do not echo the value: a caller may have put a personal one there.
    if channel not in CHANNELS:
        raise InputError(f"unknown channel; one of {', '.join(CHANNELS)}")
    if kind not in INTERACTION_KINDS:
        raise InputError(f"unknown kind; one of {', '.join(INTERACTION_KINDS)}")
    if not event_id or len(event_id) > 200:
        raise InputError("event_id must be 1 to 200 characters")
    check_text("event_id", event_id)
    if summary is not None:
        check_text("summary", summary)
        if len(summary) > 10_000:
            raise InputError("summary is too long (10000 characters at most)")


def _recorded(door: Door, interaction_id: str, customer_id: str) -> InteractionView:
    """A replayed event id: the interaction first recorded with it."""
    node = door._read_nodes([interaction_id]).get(interaction_id)
    # The interaction's own HAD edge: one indexed read, whatever the history.
    had = door._edges(node.id, "HAD", direction="in") if node is not None else []
    if node is None or node.owner != customer_id or not had or had[0].at < door._horizon():
        # One answer for another customer's event (who may be hidden from this
        # purpose) and for one past the purpose's retention (which it may not read).
        raise InputError("event_id was already used")
    page = interaction_views(door, had, customer_id)
    door._audit(door._record(Action.INTERACTION_WRITE, subjects=[customer_id],
                             outcome="duplicate"))
    return page[0]
