"""Customer communities, described by what their members share, never by who they are.

Communities are found with Louvain (`networkx.community.louvain_communities`, with a
fixed seed so the same projection gives the same answer) on the graph linking
customers to the products they bought and to the customers they referred. A
community is then described by its size and its segment, age band, channel and
product mixes, each a `Mix` with small categories hidden; communities of fewer than
`k` customers are not described at all (G9). No member list ever leaves this module.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import networkx as nx

from pacte.analytics.projection import CUSTOMER, Projection, _detail
from pacte.analytics.suppress import K_DEFAULT, Mix, check_k, suppress_mix

__all__ = ["Communities", "Community", "communities"]


@dataclass(frozen=True, slots=True)
class Community:
    """One community of at least k customers, by its mixes (distinct customers each)."""

    number: int
    customers: int
    segments: Mix
    age_bands: Mix
    channels: Mix
    products: Mix


@dataclass(frozen=True, slots=True)
class Communities:
    """Communities, largest first.

    `suppressed` communities had fewer than k customers; `in_suppressed` is how many
    customers they hold together (None when under k). `unlinked` customers bought
    nothing and referred no one, so belong to no community (None when under k).
    """

    communities: list[Community] = field(default_factory=list)
    suppressed: int = 0
    in_suppressed: int | None = None
    unlinked: int | None = None


def _link_graph(projection: Projection) -> tuple[nx.Graph, list[str], int]:
    """Customers and products as integers, in the projection's order, and the unlinked count.

    Louvain iterates over sets of nodes; integer labels make that order, and so the
    communities found, the same in every process and for every pseudonym key.
    """
    g = _detail(projection)
    names = list(g.nodes)
    index = {n: i for i, n in enumerate(names)}
    links = nx.Graph()
    unlinked = 0
    for node, kind in g.nodes(data="kind"):
        if kind != CUSTOMER:
            continue
        linked = False
        for _, dst, rel in g.out_edges(node, data="rel"):
            if rel in ("bought", "referred"):
                links.add_edge(index[node], index[dst])
                linked = True
        if not linked and not any(r == "referred" for _, _, r in g.in_edges(node, data="rel")):
            unlinked += 1
    return links, names, unlinked


def communities(projection: Projection, *, k: int = K_DEFAULT, seed: int = 0,
                resolution: float = 1.0, top: int = 10) -> Communities:
    """Louvain communities of customers, each described by its mixes.

    `top` bounds how many categories each mix shows (the largest ones).

    >>> from pacte.analytics.testing import projection_of, row
    >>> rows = ([row(i, segment="gold", bought=["lamp", "bulb"]) for i in range(6)]
    ...         + [row(i, segment="green", bought=["seeds", "hose"]) for i in range(6, 12)]
    ...         + [row(i, bought=["desk"]) for i in range(12, 14)])
    >>> found = communities(projection_of(rows))
    >>> for c in found.communities:
    ...     print(c.customers, c.segments.counts, list(c.products.counts))
    6 {'gold': 6} ['product:bulb', 'product:lamp']
    6 {'green': 6} ['product:hose', 'product:seeds']
    >>> found.suppressed, found.in_suppressed
    (1, None)
    """
    check_k(k)
    links, names, unlinked = _link_graph(projection)
    groups = _groups(projection, links, names, seed=seed, resolution=resolution)
    small = [m for m in groups if len(m) < k]
    in_small = sum(len(m) for m in small)
    described = [_describe(projection, members, number=i + 1, k=k, top=top)
                 for i, members in enumerate(m for m in groups if len(m) >= k)]
    return Communities(described, suppressed=len(small),
                       in_suppressed=in_small if in_small >= k else None,
                       unlinked=unlinked if unlinked >= k else None)


def _groups(projection: Projection, links: nx.Graph, names: Sequence[str], *, seed: int,
            resolution: float) -> list[list[str]]:
    """The customers of each Louvain community, largest first (ties by first member)."""
    g = _detail(projection)
    parts = nx.community.louvain_communities(links, seed=seed, resolution=resolution) \
        if links.number_of_edges() else []
    numbered = [sorted(i for i in part if g.nodes[names[i]].get("kind") == CUSTOMER)
                for part in parts]
    numbered.sort(key=lambda m: (-len(m), m[0] if m else -1))
    return [[names[i] for i in m] for m in numbered if m]


def _describe(projection: Projection, members: list[str], *, number: int, k: int,
              top: int) -> Community:
    g = _detail(projection)
    by: dict[str, dict[str, set[Hashable]]] = {
        "segment": defaultdict(set), "age_band": defaultdict(set),
        "channel": defaultdict(set), "product": defaultdict(set)}
    for m in members:
        attrs = g.nodes[m]
        for a in ("segment", "age_band"):
            if attrs.get(a):
                by[a][attrs[a]].add(m)
        for _, dst, rel in g.out_edges(m, data="rel"):
            if rel == "interacted":
                by["channel"][g.nodes[dst].get("label", dst)].add(m)
            elif rel == "bought":
                by["product"][dst].add(m)

    def mix(name: str) -> Mix:
        full = suppress_mix(by[name], k=k)
        return Mix(dict(full.top(top)), full.other, full.hidden)

    return Community(number, len(members), mix("segment"), mix("age_band"), mix("channel"),
                     mix("product"))
