"""Recommendations: products often bought with a customer's, from consenting customers
only, and only where enough of them back it (k-anonymity)."""

from __future__ import annotations

from pacte.features.door import Door
from pacte.features.products import PURCHASES, product_views
from pacte.graph.checks import page_size
from pacte.graph.operations import Action, Capability
from pacte.graph.views import ProductView

__all__ = ["MIN_SUPPORT", "recommendations"]

# Recommendations and other aggregates rest on at least this many people (k-anonymity).
MIN_SUPPORT = 5
# How many recent buyers per product recommendations read.
_NEIGHBOURHOOD = 200


def recommendations(door: Door, customer_id: str, *, first: int = 5) -> list[ProductView]:
    """Products often bought with this customer's, from consenting customers only.

    Item-to-item co-purchase counts over the buyers of the customer's products,
    computed per request so a withdrawal removes a customer's purchases from
    everyone's recommendations at once (G5). Empty without consent to the purpose.
    """
    door._gate(Action.RECOMMENDATIONS)
    first = page_size(first)
    door._require_visible(Action.RECOMMENDATIONS, customer_id)
    if not door._may(Capability.RECOMMEND) or not door._category_ok(PURCHASES):
        # Only a purpose the policy lets recommend (`may`) has any; others get none.
        door._audit(door._record(Action.RECOMMENDATIONS, subjects=[customer_id],
                                 outcome="withheld"))
        return []
    backers = _co_buyers(door, customer_id)
    # A product backed by fewer than k co-buyers would reveal what those few bought.
    supported = {p: b for p, b in backers.items() if len(b) >= MIN_SUPPORT}
    ranked = sorted(supported, key=lambda p: (-len(supported[p]), p))[:first]
    views = product_views(door, ranked)
    used = set().union(*(supported[p] for p in ranked)) if ranked else set()
    # Co-buyers whose purchases shaped the answer find this use in their own trail.
    door._audit(door._record(Action.RECOMMENDATIONS, subjects=[customer_id, *used],
                             fields=["BOUGHT"]))
    return views


def _co_buyers(door: Door, customer_id: str) -> dict[str, set[str]]:
    """Per product the customer did not buy, the consenting customers who bought it
    along with one the customer did, within the purpose's retention."""
    horizon = door._horizon()
    mine = {e.dst for e in door._edges(customer_id, "BOUGHT") if e.at >= horizon}
    # The newest buyers of each product: popular products have thousands, and the
    # newest few hundred say as much about what goes with them, at a bounded cost.
    peers: set[str] = set()
    for product in sorted(mine):
        peers.update(e.src for e in door._edges(product, "BOUGHT", direction="in",
                                                limit=_NEIGHBOURHOOD) if e.at >= horizon)
    peers.discard(customer_id)
    backers: dict[str, set[str]] = {}
    for peer, edges in door._edges_many(door._visible_ids(sorted(peers)), "BOUGHT").items():
        for product in {e.dst for e in edges if e.at >= horizon} - mine:
            backers.setdefault(product, set()).add(peer)
    return backers
