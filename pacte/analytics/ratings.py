"""Ratings per product: how many reviewed it, the mean, and the spread of stars.

Each customer counts once per product, with their latest rating. Products reviewed
by fewer than `k` customers are left out, and the star counts are a `Mix`, so a star
given by fewer than `k` customers is hidden (G9).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime

from pacte.analytics.projection import CUSTOMER, Projection, _detail
from pacte.analytics.suppress import K_DEFAULT, Mix, check_k, suppress_mix

__all__ = ["ProductRating", "Ratings", "ratings"]


@dataclass(frozen=True, slots=True)
class ProductRating:
    """One product's ratings over `reviewers` distinct customers (at least k)."""

    product: str
    label: str
    reviewers: int
    mean: float
    stars: Mix


@dataclass(frozen=True, slots=True)
class Ratings:
    """Products by number of reviewers, most first; `suppressed` products had too few."""

    products: list[ProductRating] = field(default_factory=list)
    suppressed: int = 0


def ratings(projection: Projection, *, k: int = K_DEFAULT, top: int = 50) -> Ratings:
    """Mean rating and star counts per product, over distinct reviewers.

    >>> from pacte.analytics.testing import projection_of, row
    >>> rows = ([row(i, ratings={"lamp": 5}) for i in range(5)]
    ...         + [row(i, ratings={"lamp": 2, "desk": 4}) for i in range(5, 9)])
    >>> r = ratings(projection_of(rows))
    >>> [(p.label, p.reviewers, p.mean, p.stars.counts, p.stars.other) for p in r.products]
    [('lamp', 9, 3.67, {}, 9)]
    >>> r.suppressed                                  # desk: four reviewers
    1
    """
    check_k(k)
    g = _detail(projection)
    latest: dict[str, dict[str, tuple[datetime, int]]] = defaultdict(dict)
    for node, kind in g.nodes(data="kind"):
        if kind != CUSTOMER:
            continue
        for _, dst, d in g.out_edges(node, data=True):
            if d.get("rel") != "reviewed" or not isinstance(d.get("rating"), int):
                continue
            seen = latest[dst].get(node)
            if seen is None or d["at"] >= seen[0]:
                latest[dst][node] = (d["at"], d["rating"])
    shown: list[ProductRating] = []
    for product, by_customer in latest.items():
        if len(by_customer) < k:
            continue
        stars: dict[str, set[Hashable]] = defaultdict(set)
        for customer, (_, rating) in by_customer.items():
            stars[str(rating)].add(customer)
        values = [r for _, r in by_customer.values()]
        shown.append(ProductRating(product, str(g.nodes[product].get("label", product)),
                                   len(by_customer), round(sum(values) / len(values), 2),
                                   suppress_mix(stars, k=k)))
    shown.sort(key=lambda p: (-p.reviewers, p.product))
    return Ratings(shown[:max(top, 0)], suppressed=len(latest) - len(shown))
