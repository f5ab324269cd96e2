"""Predictions (issue #21): the gate pacte.predict reads other customers through.

What other customers contribute to a prediction leaves here as counts of at least
k = 5 distinct customers who consented to personalization, never as anyone's single
record; each customer counted is an audit subject of the use. And the record of a
prediction served: the kinds of action and the categories read. The predictions
themselves (rules, ranking, explanations) are pacte.predict's.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from pacte.clock import from_micros
from pacte.errors import InputError, PurposeNotGranted
from pacte.features.door import Door
from pacte.features.products import PURCHASES
from pacte.features.recommendations import MIN_SUPPORT
from pacte.graph.operations import Action
from pacte.graph.store import Cursor, Edge

__all__ = ["purchases_following", "record_prediction"]

# The most buyers of one product read for one prediction.
_NEIGHBOURHOOD = 200


def purchases_following(door: Door, customer_id: str, *, within: timedelta, recent: int = 3,
                        skip: int = 0, per_product: int = _NEIGHBOURHOOD,
                        k: int = MIN_SUPPORT
                        ) -> list[tuple[str, datetime, int, dict[str, int]]]:
    """What other customers bought next, after what this customer bought lately.

    For each of the customer's `recent` newest distinct purchases A made within
    `within` of now, after the `skip` newest: (A, when they bought it, how many
    customers visible under this purpose bought A, and for each product B how many
    of those bought B within `within` after A). Those customers are the newest
    `per_product` buyers of A among those who bought it within retention and at
    least `within` ago (each had the whole window to buy next). Products the
    customer already bought are left out as B. Computed per request, so a
    withdrawal or erasure holds from the next one (G5). An A bought by fewer than
    `k` (at least 5) such customers is left out, and so is a B bought next by
    fewer than `k`. Only under a purpose the policy lets recommend (in the default
    policy personalization, and the purposes below it) with
    purchases allowed. The customers counted are audit subjects, so each finds
    this use in their own trail.
    """
    action = Action.PREDICT_PEERS
    door._gate(action)
    if not door._category_ok(PURCHASES):
        door._deny(action, PurposeNotGranted(
            f"predictions need purchases, which {door.purpose.id!r} may not use"))
    window = _window(within, k=k, per_product=per_product, recent=recent, skip=skip)
    door._require_visible(action, customer_id)
    horizon = door._horizon()
    own = [e for e in door._edges(customer_id, "BOUGHT") if e.at >= horizon]
    mine = {e.dst for e in own}
    latest = _latest(own, since=door._now_us - window, recent=recent, skip=skip)
    sampled = {product: _buyers(door, product, customer_id, horizon=horizon,
                                window=window, per_product=per_product)
               for product in latest}
    consenting = set(door._visible_ids(sorted({c for w in sampled.values() for c in w})))
    bought = door._edges_many(sorted(consenting), "BOUGHT")
    out: list[tuple[str, datetime, int, dict[str, int]]] = []
    used: set[str] = set()
    for product, at in latest.items():
        peers = {c: t for c, t in sampled[product].items() if c in consenting}
        if len(peers) < k:
            continue
        after = _bought_next(peers, bought, mine, window)
        out.append((product, from_micros(at), len(peers),
                    {b: len(who) for b, who in sorted(after.items()) if len(who) >= k}))
        used.update(peers)
    door._audit(door._record(action, subjects=[customer_id, *sorted(used)],
                             fields=["BOUGHT"], extra={"k": k}))
    return out


def _window(within: timedelta, *, k: int, per_product: int, recent: int, skip: int) -> int:
    """The options of `purchases_following`, checked: the window in microseconds."""
    if not isinstance(k, int) or k < MIN_SUPPORT:
        raise InputError(f"k must be at least {MIN_SUPPORT}")
    if not isinstance(per_product, int) or not 1 <= per_product <= _NEIGHBOURHOOD:
        raise InputError(f"per_product must be between 1 and {_NEIGHBOURHOOD}")
    if not isinstance(recent, int) or not 0 <= recent <= 10:
        raise InputError("recent must be between 0 and 10")
    if not isinstance(skip, int) or not 0 <= skip <= 10:
        raise InputError("skip must be between 0 and 10")
    window = int(within.total_seconds() * 1_000_000)
    if window <= 0:
        raise InputError("within must be positive")
    return window


def _latest(own: list[Edge], *, since: int, recent: int, skip: int) -> dict[str, int]:
    """The `recent` newest distinct products bought since `since`, after the `skip`
    newest, -> when they were bought."""
    newest: dict[str, int] = {}
    for e in sorted(own, key=lambda e: -e.at):
        if e.at >= since:
            newest.setdefault(e.dst, e.at)
    return dict(list(newest.items())[skip:skip + recent])


def _buyers(door: Door, product: str, customer_id: str, *, horizon: int, window: int,
            per_product: int) -> dict[str, int]:
    """The newest buyers of `product` (other than the customer) who bought it within
    retention and at least `window` ago, so that each had the whole window to buy
    something next, -> when: a bounded neighbourhood, read through the index newest
    first."""
    settled = Cursor(door._now_us - window, "")
    when: dict[str, int] = {}
    for e in door._edges(product, "BOUGHT", direction="in", limit=per_product + 1,
                         before=settled):
        if e.at >= horizon and e.src != customer_id:
            when.setdefault(e.src, e.at)
    return dict(list(when.items())[:per_product])


def _bought_next(peers: dict[str, int], bought: dict[str, list[Edge]], mine: set[str],
                 window: int) -> dict[str, set[str]]:
    """For each product the customer never bought, which `peers` bought it within
    `window` after their first purchase."""
    after: dict[str, set[str]] = {}
    for peer, first in peers.items():
        for e in bought.get(peer, ()):
            if e.dst not in mine and first < e.at <= first + window:
                after.setdefault(e.dst, set()).add(peer)
    return after


def record_prediction(door: Door, customer_id: str, *, kinds: Sequence[str],
                      categories: Collection[str]) -> None:
    """Put on record that predictions were served for a customer: the kinds of
    action served and the data categories they were drawn from (pacte.predict)."""
    action = Action.PREDICT
    door._gate(action)
    door._require_visible(action, customer_id)
    door._audit(door._record(action, subjects=[customer_id], extra={
        "actions": list(kinds), "categories": sorted(set(categories))}))
