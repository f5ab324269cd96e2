"""Offers that usually follow a purchase, learned per request from consenting customers.

What the customer bought lately, against what customers who consented to
personalization bought next after the same product (`Session.purchases_following`:
counts of at least k = 5 distinct customers, computed on each request, so a withdrawn
or erased customer counts no more from the next request on).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pacte.predict.actions import FOLLOW_UP, NextBestAction, Signal

if TYPE_CHECKING:
    from pacte.graph.session import Session

__all__ = ["FOLLOW_WINDOW", "follow_ups"]

FOLLOW_WINDOW = timedelta(days=60)  # how soon after a purchase its follow-up counts
RECENT = 1  # the customer's newest purchases (within the window) looked at, at most
PEERS = 50  # the newest buyers of each of them read (a bounded neighbourhood)


def follow_ups(session: Session, customer_id: str) -> list[NextBestAction]:
    """One offer per product B usually bought after a recent purchase A; the score is
    the share of A's consenting buyers who bought B next (the best A for each B).

    The newest purchase is looked at first, and the next ones (up to RECENT) only while
    none has given an offer: each costs a neighbourhood read.
    """
    best: dict[str, NextBestAction] = {}
    for skip in range(RECENT):
        found = session.purchases_following(customer_id, within=FOLLOW_WINDOW, recent=1,
                                            skip=skip, per_product=PEERS)
        for product, at, buyers, following in found:
            for nxt, n in following.items():
                score = round(n / buyers, 3)
                if nxt in best and best[nxt].score >= score:
                    continue
                best[nxt] = NextBestAction(FOLLOW_UP, nxt, score, _expiry(at), (
                    Signal("user.financial", "customer", f"bought {product} on {at.date()}"),
                    Signal("user.financial", "customers",
                           f"bought {nxt} within {FOLLOW_WINDOW.days} days of {product}",
                           customers=n)))
        if best:
            break
    return list(best.values())


def _expiry(bought_at: datetime) -> datetime:
    return bought_at + FOLLOW_WINDOW
