"""What happens in an interaction: which kind on which channel, and its free-text summary.

Summaries are a template, a product name and a reference number, so they read
plausibly, vary a lot, and one of them is specific enough for a test to search the
raw store files for it. Templates take `%` arguments because `%`-formatting is
the cheapest formatting Python has.
"""

from __future__ import annotations

import bisect

from pacte.graph.model import INTERACTION_KINDS

__all__ = [
    "PLAIN",
    "PLAIN_MODE",
    "PRODUCT_MODE",
    "PURCHASE_MODE",
    "RATINGS",
    "REVIEW_BY_RATING",
    "REVIEW_MODE",
    "SITUATIONS",
    "SITUATIONS_WITH_DEVICES",
    "TELEMETRY_MODE",
    "WITH_PRODUCT",
    "WITH_PRODUCT_SHARE",
    "Situation",
]

# How often each kind occurs, then which channels it arrives on (weights in percent).
_KINDS: tuple[tuple[str, int, tuple[tuple[str, int], ...]], ...] = (
    ("purchase", 25, (("web", 35), ("app", 30), ("store", 25), ("phone", 10))),
    ("support", 15, (("email", 25), ("phone", 25), ("chat", 30), ("sms", 5), ("social", 10),
                     ("app", 5))),
    ("review", 8, (("web", 50), ("app", 35), ("social", 15))),
    ("visit", 25, (("web", 45), ("app", 35), ("store", 20))),
    ("campaign", 20, (("email", 50), ("sms", 25), ("social", 15), ("app", 10))),
    ("telemetry", 7, (("iot", 100),)),
)


# Share of interactions of each kind that concern a product (and get an ABOUT edge);
# the others use a template without one.
WITH_PRODUCT_SHARE: dict[str, float] = {
    "purchase": 1.0, "support": 0.7, "review": 1.0, "visit": 0.6, "campaign": 0.5,
    "telemetry": 1.0,
}

# Templates taking (product name, reference number).
WITH_PRODUCT: dict[str, tuple[str, ...]] = {
    "purchase": (
        "Ordered the %s, order #%d",
        "Purchased the %s, order #%d",
        "Bought the %s as a gift, order #%d",
        "Reordered the %s, order #%d",
        "Bought the %s with a discount code, order #%d",
        "Upgraded to the %s, order #%d",
    ),
    "support": (
        "Asked how to reset the %s, ticket %d",
        "Reported that the %s stopped pairing, ticket %d",
        "Requested a replacement %s under warranty, ticket %d",
        "Asked when the %s will be delivered, ticket %d",
        "Said the %s arrived damaged, ticket %d",
        "Needed help installing the %s, ticket %d",
    ),
    "visit": (
        "Browsed the %s page, session %d",
        "Compared the %s with similar items, session %d",
        "Tried the %s in the showroom, visit %d",
        "Added the %s to the wishlist, session %d",
    ),
    "campaign": (
        "Opened the offer for the %s, campaign %d",
        "Clicked the %s promotion, campaign %d",
        "Received a restock alert for the %s, campaign %d",
    ),
    "telemetry": (
        "%s reported a firmware update, event %d",
        "%s went offline for an hour, event %d",
        "%s sent its daily energy report, event %d",
        "%s detected unusual night-time use, event %d",
    ),
}

# Templates taking the reference number only.
PLAIN: dict[str, tuple[str, ...]] = {
    "support": (
        "Forgot the password, reset link sent, ticket %d",
        "Asked to update the billing address, ticket %d",
        "Questioned a charge on the last invoice, ticket %d",
        "Asked about store opening hours, ticket %d",
    ),
    "visit": (
        "Viewed the home page, session %d",
        "Checked the order history, session %d",
        "Searched the help center, session %d",
    ),
    "campaign": (
        "Opened the monthly newsletter, campaign %d",
        "Ignored the seasonal sale message, campaign %d",
        "Dismissed a reminder message, campaign %d",
    ),
}

# Review templates by rating 1..5 (index 0 unused), taking (product name, reference).
_LOW = ("The %s broke after two weeks (review %d)",
        "Disappointed by the %s battery life (review %d)",
        "The %s keeps disconnecting (review %d)")
_MID = ("The %s is fine but a bit pricey (review %d)",
        "Mixed feelings about the %s (review %d)")
_HIGH = ("Loves the %s, easy to set up (review %d)",
         "The %s works great with the app (review %d)",
         "Would recommend the %s to friends (review %d)")
REVIEW_BY_RATING: tuple[tuple[str, ...], ...] = ((), _LOW, _LOW, _MID, _HIGH, _HIGH)

# Ratings skew high, as on real shops: 5% one star, 8% two, 17% three, 35% four, 35% five.
RATINGS: tuple[int, ...] = tuple(r for r, w in ((1, 5), (2, 8), (3, 17), (4, 35), (5, 35))
                                 for _ in range(w))


# What the summary template needs, and which edges besides HAD the interaction gets.
PLAIN_MODE = 0  # no product
PRODUCT_MODE = 1  # about a product: ABOUT
PURCHASE_MODE = 2  # ABOUT, BOUGHT {amount}
REVIEW_MODE = 3  # ABOUT, REVIEWED {rating}
TELEMETRY_MODE = 4  # about one of the customer's devices: ABOUT its product

# (kind, channel, summary template, mode, rating or 0)
Situation = tuple[str, str, str, int, int]

_TABLE_SIZE = 8192


def _situations(kinds: tuple[str, ...]) -> tuple[Situation, ...]:
    """Every (kind, channel, template, mode, rating) with its probability, flattened into a
    table of evenly spaced quantiles so that one draw picks all five at once."""
    weighted: list[tuple[Situation, float]] = []
    total_kind = sum(w for k, w, _ in _KINDS if k in kinds)
    for kind, kind_weight, channels in _KINDS:
        if kind not in kinds:
            continue
        for channel, channel_weight in channels:
            p = kind_weight / total_kind * channel_weight / 100
            weighted.extend(_templates(kind, channel, p))
    cumulative: list[float] = []
    acc = 0.0
    for _, p in weighted:
        acc += p
        cumulative.append(acc)
    return tuple(weighted[min(bisect.bisect_left(cumulative, (i + 0.5) / _TABLE_SIZE * acc),
                              len(weighted) - 1)][0] for i in range(_TABLE_SIZE))


def _templates(kind: str, channel: str, p: float) -> list[tuple[Situation, float]]:
    if kind == "review":
        n_ratings = len(RATINGS)
        return [((kind, channel, t, REVIEW_MODE, rating),
                 p * RATINGS.count(rating) / n_ratings / len(REVIEW_BY_RATING[rating]))
                for rating in range(1, 6) for t in REVIEW_BY_RATING[rating]]
    mode = {"purchase": PURCHASE_MODE, "telemetry": TELEMETRY_MODE}.get(kind, PRODUCT_MODE)
    share = WITH_PRODUCT_SHARE[kind]
    out = [((kind, channel, t, mode, 0), p * share / len(WITH_PRODUCT[kind]))
           for t in WITH_PRODUCT[kind]]
    if share < 1.0:
        out += [((kind, channel, t, PLAIN_MODE, 0), p * (1 - share) / len(PLAIN[kind]))
                for t in PLAIN[kind]]
    return out


# Telemetry only comes from a device, so customers without one draw from a table
# without it.
SITUATIONS_WITH_DEVICES: tuple[Situation, ...] = _situations(INTERACTION_KINDS)
SITUATIONS: tuple[Situation, ...] = _situations(
    tuple(k for k in INTERACTION_KINDS if k != "telemetry"))
