"""Products bought together: the co-purchase graph and its strongest pairs.

A pair's weight is the number of *distinct customers* who bought both products
(buying the pair twice counts once). Pairs bought together by fewer than `k`
customers, and products bought by fewer than `k`, are left out (G9).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations

import networkx as nx

from pacte.analytics.projection import CUSTOMER, Projection, _detail
from pacte.analytics.suppress import K_DEFAULT, check_k

__all__ = ["BoughtTogether", "Pair", "bought_together", "copurchase_graph"]


@dataclass(frozen=True, slots=True)
class Pair:
    """Two products (node ids, in order) and how many customers bought both."""

    a: str
    b: str
    customers: int


@dataclass(frozen=True, slots=True)
class BoughtTogether:
    """The strongest pairs, strongest first; `suppressed` pairs had fewer than k buyers."""

    pairs: list[Pair] = field(default_factory=list)
    suppressed: int = 0


def _baskets(projection: Projection) -> list[frozenset[str]]:
    """Each customer's set of products bought."""
    g = _detail(projection)
    out: list[frozenset[str]] = []
    for node, kind in g.nodes(data="kind"):
        if kind != CUSTOMER:
            continue
        basket = frozenset(dst for _, dst, rel in g.out_edges(node, data="rel")
                           if rel == "bought")
        if basket:
            out.append(basket)
    return out


def _pair_counts(projection: Projection) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for basket in _baskets(projection):
        counts.update(combinations(sorted(basket), 2))
    return counts


def bought_together(projection: Projection, *, k: int = K_DEFAULT, top: int = 20
                    ) -> BoughtTogether:
    """The `top` pairs of products bought by the most distinct customers.

    >>> from pacte.analytics.testing import projection_of, row
    >>> p = projection_of([row(i, bought=["lamp", "bulb"]) for i in range(5)]
    ...                   + [row(9, bought=["lamp", "desk"])])
    >>> bought_together(p)
    BoughtTogether(pairs=[Pair(a='product:bulb', b='product:lamp', customers=5)], suppressed=1)
    """
    check_k(k)
    counts = _pair_counts(projection)
    kept = sorted(((pair, n) for pair, n in counts.items() if n >= k),
                  key=lambda item: (-item[1], item[0]))
    return BoughtTogether([Pair(a, b, n) for (a, b), n in kept[:max(top, 0)]],
                          suppressed=len(counts) - len(kept))


def copurchase_graph(projection: Projection, *, k: int = K_DEFAULT) -> nx.Graph:
    """Products as nodes (with `customers`: distinct buyers), pairs as weighted edges.

    Only products with at least `k` buyers and pairs with at least `k` common
    buyers appear; `weight` is the number of distinct customers who bought both.

    >>> from pacte.analytics.testing import projection_of, row
    >>> g = copurchase_graph(projection_of([row(i, bought=["lamp", "bulb"]) for i in range(6)]))
    >>> sorted(g.nodes(data="customers")), list(g.edges(data="weight"))
    ([('product:bulb', 6), ('product:lamp', 6)], [('product:bulb', 'product:lamp', 6)])
    """
    check_k(k)
    buyers: Counter[str] = Counter()
    for basket in _baskets(projection):
        buyers.update(basket)
    g, products = nx.Graph(), _detail(projection).nodes
    for product, n in sorted(buyers.items()):
        if n >= k:
            g.add_node(product, kind="product", label=products[product].get("label", product),
                       customers=n)
    for (a, b), n in sorted(_pair_counts(projection).items()):
        if n >= k:
            g.add_edge(a, b, weight=n)
    return g
