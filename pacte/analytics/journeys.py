"""Channels: which ones customers use, and the paths they take around purchases.

A path is the sequence of channels of a customer's interactions, oldest first, with
repeats in a row collapsed (`web, web, email` is `web > email`). Paths are counted
in distinct customers; paths taken by fewer than `k` customers are left out (G9).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pacte.analytics.projection import CUSTOMER, Projection, _detail, node_id
from pacte.analytics.suppress import K_DEFAULT, Mix, check_k, suppress_mix
from pacte.errors import InputError

__all__ = [
    "ChannelMix",
    "Journeys",
    "PathCount",
    "ProductJourneys",
    "channel_mix",
    "product_journeys",
    "purchase_journeys",
]

# (time, channel, interaction kind, product node id or None)
Step = tuple[datetime, str, str, str | None]


@dataclass(frozen=True, slots=True)
class PathCount:
    """A channel path and how many distinct customers took it."""

    path: tuple[str, ...]
    customers: int

    def __str__(self) -> str:
        return " > ".join(self.path)


@dataclass(frozen=True, slots=True)
class Journeys:
    """The most common paths, most common first; `suppressed` paths had too few customers."""

    paths: list[PathCount] = field(default_factory=list)
    suppressed: int = 0


@dataclass(frozen=True, slots=True)
class ProductJourneys:
    """Paths before and after customers first bought one product.

    `customers` is how many bought it (None, with no paths, when under k).
    """

    product: str
    customers: int | None
    before: Journeys = field(default_factory=Journeys)
    after: Journeys = field(default_factory=Journeys)


@dataclass(frozen=True, slots=True)
class ChannelMix:
    """Distinct customers per channel, and interactions on the channels shown."""

    customers: Mix
    interactions: dict[str, int] = field(default_factory=dict)

    @property
    def suppressed(self) -> int:
        return self.customers.hidden


def _timelines(projection: Projection) -> dict[str, list[Step]]:
    """Every customer's interactions, oldest first."""
    g = _detail(projection)
    out: dict[str, list[Step]] = {}
    for node, kind in g.nodes(data="kind"):
        if kind != CUSTOMER:
            continue
        steps = [(d["at"], g.nodes[dst].get("label", dst), str(d.get("interaction", "")),
                  d.get("product"))
                 for _, dst, d in g.out_edges(node, data=True) if d.get("rel") == "interacted"]
        if steps:
            out[node] = sorted(steps, key=lambda s: (s[0], s[1]))
    return out


def _path(steps: Iterable[Step], *, length: int, last: bool) -> tuple[str, ...]:
    collapsed: list[str] = []
    for s in steps:
        if not collapsed or collapsed[-1] != s[1]:
            collapsed.append(s[1])
    return tuple(collapsed[-length:] if last else collapsed[:length])


def _count(paths: dict[tuple[str, ...], set[Hashable]], *, k: int, top: int) -> Journeys:
    kept = sorted(((p, len(who)) for p, who in paths.items() if len(who) >= k),
                  key=lambda item: (-item[1], item[0]))
    return Journeys([PathCount(p, n) for p, n in kept[:max(top, 0)]],
                    suppressed=len(paths) - len(kept))


def _check_length(length: int) -> None:
    if not isinstance(length, int) or not 1 <= length <= 20:
        raise InputError("length must be between 1 and 20")


def channel_mix(projection: Projection, *, k: int = K_DEFAULT) -> ChannelMix:
    """How many distinct customers used each channel (and how many interactions).

    >>> from pacte.analytics.testing import projection_of, row
    >>> rows = ([row(i, journey=[("web", "visit", None)] * 2) for i in range(10)]
    ...         + [row(i, journey=[("app", "visit", None)]) for i in range(10, 16)]
    ...         + [row(99, journey=[("sms", "campaign", None)])])
    >>> mix = channel_mix(projection_of(rows))
    >>> mix.customers         # sms (1) hidden, then app too, so sms cannot be worked out
    Mix(counts={'web': 10}, other=7, hidden=2)
    >>> mix.interactions
    {'web': 20}
    """
    check_k(k)
    users: dict[str, set[Hashable]] = defaultdict(set)
    volume: dict[str, int] = defaultdict(int)
    for customer, steps in _timelines(projection).items():
        for s in steps:
            users[s[1]].add(customer)
            volume[s[1]] += 1
    mix = suppress_mix(users, k=k)
    return ChannelMix(mix, {c: volume[c] for c in mix.counts})


def purchase_journeys(projection: Projection, *, k: int = K_DEFAULT, length: int = 3,
                      top: int = 10) -> Journeys:
    """The most common paths ending in a purchase.

    For every purchase interaction, the path is the channels of the interactions
    since the customer's previous purchase, the purchase's own channel last, cut
    to the last `length` channels.

    >>> from pacte.analytics.testing import projection_of, row
    >>> steps = [("email", "campaign", None), ("web", "visit", None),
    ...          ("store", "purchase", "lamp")]
    >>> j = purchase_journeys(projection_of([row(i, journey=steps) for i in range(5)]))
    >>> [(str(p), p.customers) for p in j.paths]
    [('email > web > store', 5)]
    """
    check_k(k)
    _check_length(length)
    paths: dict[tuple[str, ...], set[Hashable]] = defaultdict(set)
    for customer, steps in _timelines(projection).items():
        since = 0
        for i, s in enumerate(steps):
            if s[2] == "purchase":
                paths[_path(steps[since:i + 1], length=length, last=True)].add(customer)
                since = i + 1
    return _count(paths, k=k, top=top)


def product_journeys(projection: Projection, *, k: int = K_DEFAULT, product: str,
                     length: int = 3, top: int = 10) -> ProductJourneys:
    """The paths customers took before and after they first bought `product`.

    `before` is the last `length` channels up to and including that purchase;
    `after` the first `length` channels after it. `product` is a product id or node id.

    >>> from pacte.analytics.testing import projection_of, row
    >>> steps = [("web", "visit", None), ("app", "purchase", "bulb"),
    ...          ("chat", "support", "bulb")]
    >>> pj = product_journeys(projection_of([row(i, journey=steps) for i in range(5)]),
    ...                       product="bulb")
    >>> pj.customers, [str(p) for p in pj.before.paths], [str(p) for p in pj.after.paths]
    (5, ['web > app'], ['chat'])
    """
    check_k(k)
    _check_length(length)
    target = product if product.startswith("product:") else node_id("product", product)
    before: dict[tuple[str, ...], set[Hashable]] = defaultdict(set)
    after: dict[tuple[str, ...], set[Hashable]] = defaultdict(set)
    buyers = 0
    for customer, steps in _timelines(projection).items():
        first = _first_purchase(steps, target)
        if first is None:
            continue
        buyers += 1
        before[_path(steps[:first + 1], length=length, last=True)].add(customer)
        later = steps[first + 1:]
        if later:
            after[_path(later, length=length, last=False)].add(customer)
    if buyers < k:
        return ProductJourneys(target, None)
    return ProductJourneys(target, buyers, _count(before, k=k, top=top),
                           _count(after, k=k, top=top))


def _first_purchase(steps: Sequence[Step], product: str) -> int | None:
    for i, s in enumerate(steps):
        if s[2] == "purchase" and s[3] == product:
            return i
    return None
