"""Referral weight: how influence spreads through referrals, as a distribution only.

Weight is PageRank on the referral graph with each edge turned back towards the
referrer (being referred by someone passes weight to them), scaled by the number of
customers so that 1.0 is the average. Who holds the weight is never returned: only
quantiles with at least `k` customers on each side, a histogram whose every bin holds
at least `k` customers, and the share held by the top tenth when that tenth is at
least `k` customers (G9).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import networkx as nx

from pacte.analytics.projection import CUSTOMER, Projection, _detail
from pacte.analytics.suppress import K_DEFAULT, Bin, check_k, merge_sparse_bins, safe_quantiles

__all__ = ["QUANTILES", "WEIGHT_BINS", "ReferralWeight", "referral_weight"]

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
# Relative weight (1.0 = the average customer), roughly doubling.
WEIGHT_BINS = (0.0, 0.5, 0.9, 1.1, 2.0, 4.0, 8.0, 16.0, float("inf"))


@dataclass(frozen=True, slots=True)
class ReferralWeight:
    """The distribution of referral weight over customers (1.0 = average).

    `customers` and `referrals` are None when under k; `suppressed` counts the
    quantiles left out for having fewer than k customers on one side.
    """

    customers: int | None
    referrals: int | None
    referrers: int | None
    quantiles: dict[float, float] = field(default_factory=dict)
    histogram: list[Bin] = field(default_factory=list)
    top_decile_share: float | None = None
    suppressed: int = 0


def referral_weight(projection: Projection, *, k: int = K_DEFAULT, alpha: float = 0.85,
                    quantiles: tuple[float, ...] = QUANTILES) -> ReferralWeight:
    """PageRank over referrals, described by its distribution over customers.

    >>> from pacte.analytics.testing import projection_of, row
    >>> rows = [row(0, referred=range(1, 11))] + [row(i) for i in range(1, 20)]
    >>> w = referral_weight(projection_of(rows))
    >>> w.customers, w.referrals, w.referrers     # one referrer: not a count to show
    (20, 10, None)
    >>> sorted(w.quantiles), [b.customers for b in w.histogram]
    ([0.25, 0.5, 0.75], [20])
    """
    check_k(k)
    g = _detail(projection)
    people = [n for n, kind in g.nodes(data="kind") if kind == CUSTOMER]
    flow = nx.DiGraph()
    flow.add_nodes_from(people)
    referrers: set[str] = set()
    referrals = 0
    for src, dst, rel in g.edges(data="rel"):
        if rel == "referred":
            flow.add_edge(dst, src)
            referrers.add(src)
            referrals += 1
    n = len(people)
    if n < k:
        return ReferralWeight(None, None, None, suppressed=len(quantiles))
    rank = _pagerank(flow, alpha=alpha)
    weights = sorted(rank[p] * n for p in people)
    shown = safe_quantiles(weights, quantiles, k=k)
    tenth = n // 10
    total = sum(weights)
    share = sum(weights[-tenth:]) / total if tenth >= k and total > 0 else None
    return ReferralWeight(
        customers=n,
        referrals=referrals if referrals >= k else None,
        referrers=len(referrers) if len(referrers) >= k else None,
        quantiles={q: round(v, 4) for q, v in shown.items()},
        histogram=merge_sparse_bins(weights, WEIGHT_BINS, k=k),
        top_decile_share=round(share, 4) if share is not None else None,
        suppressed=len(quantiles) - len(shown),
    )


def _pagerank(graph: nx.DiGraph, *, alpha: float, tol: float = 1e-10, max_iter: int = 200
              ) -> dict[Hashable, float]:
    """PageRank by power iteration (networkx's own needs scipy, which pacte does not ship).

    Dangling nodes spread their weight evenly, as in networkx, so results agree.
    """
    nodes = list(graph)
    n = len(nodes)
    if n == 0:
        return {}
    rank = dict.fromkeys(nodes, 1.0 / n)
    out_degree = {v: graph.out_degree(v) for v in nodes}
    for _ in range(max_iter):
        dangling = alpha * sum(rank[v] for v in nodes if out_degree[v] == 0) / n
        base = (1.0 - alpha) / n + dangling
        new = dict.fromkeys(nodes, base)
        for v in nodes:
            if out_degree[v]:
                share = alpha * rank[v] / out_degree[v]
                for w in graph.successors(v):
                    new[w] += share
        change = sum(abs(new[v] - rank[v]) for v in nodes)
        rank = new
        if change < n * tol:
            break
    return rank
