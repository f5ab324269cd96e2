"""Analytics: projection build time and recommendation latency, against the bare store.

Each figure is measured in one run next to a baseline doing the same reads straight
from the store, with no consent check, no decryption, no pseudonyms and no audit
(what pacte would cost without its privacy), so the ratio is what privacy costs:

- `analytics.projection_build_per_100k`: `build_projection` wall time per 100k
  customers in the data directory (quick: measured at 2k and scaled), its
  k-anonymous release included;
- `analytics.projection_vs_bare_store`: its time per projected customer over the
  bare-store build's time per customer;
- `analytics.k_anonymous_projection_vs_projection`: `build_projection` (the
  detailed graph, then its k-anonymous release at k=5, what the analyst gets)
  over building the detailed pseudonymised graph alone (what a projection was
  before it was k-anonymous), in one run on the same data;
- `analytics.recommendations_p50`, `_p99`: one request each (a fresh session, as
  the API makes one per request), for customers consenting to `personalization`;
- `analytics.recommendations_vs_bare_store`: p50 over the bare co-purchase p50.

Seeded data directories are cached under `bench/results/` (git-ignored), keyed by
size and seed; seeding 100k customers takes a few minutes the first time.

Run alone with `python -m bench.bench_analytics [--quick]`.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx

from bench.harness import figure, ratio, seeded
from pacte.analytics import build_projection
from pacte.analytics.projection import Projection, _detailed_graph
from pacte.graph.store import Store
from pacte.runtime import Pacte

__all__ = ["run"]

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 11
PER = 100_000
SAMPLE = 200  # recommendation requests timed


def run(quick: bool) -> list[dict[str, Any]]:
    size = 2_000 if quick else 100_000
    data = seeded(size, seed=SEED)
    with Pacte.open(data) as rt:
        return _projection(rt, size) + _recommendations(rt, size)


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _projection(rt: Pacte, size: int) -> list[dict[str, Any]]:
    session = rt.operator_session("analytics")
    built: list[Projection] = []
    ours = _timed(lambda: built.append(build_projection(session)))
    plain = _timed(lambda: _detailed_graph(session, key=None, batch=1000))
    bare_nodes: list[int] = []
    bare = _timed(lambda: bare_nodes.append(_bare_projection(rt._backend.store)))
    projected, everyone = built[0].anonymity.customers, bare_nodes[0]
    where = f"{size} customers, {projected} consenting to analytics"
    return [
        ratio("analytics.projection_build_per_100k", ours, size / PER,
              numerator_label=f"build_projection wall time (s) at {size} customers",
              denominator_label="hundreds of thousands of customers in the store",
              unit="s/100k", size=where, target="<= 120"),
        # Per customer: the bare build reads everyone, the projection only the consenting.
        ratio("analytics.projection_vs_bare_store", ours / max(projected, 1), bare / everyone,
              numerator_label="build_projection seconds per projected customer",
              denominator_label="bare-store build (every customer, raw ids, no consent, "
                                "decryption or audit) seconds per customer",
              size=where, target="<= 3"),
        ratio("analytics.k_anonymous_projection_vs_projection", ours, plain,
              numerator_label="build_projection (detail + k=5 release) wall time (s)",
              denominator_label="detailed pseudonymised graph alone wall time (s)",
              size=f"{where}; {built[0].anonymity}", target="<= 2"),
    ]


def _bare_projection(store: Store) -> int:
    """What a projection would cost with no privacy: every customer, raw ids, no audit.

    Returns how many customers it holds.
    """
    g = nx.MultiDiGraph()
    customers = 0
    for page in store.iter_nodes(batch=1000):
        ids = [n.id for n in page if n.kind == "Customer"]
        if not ids:
            continue
        customers += len(ids)
        rels = {t: store.edges_many(ids, t) for t in ("BOUGHT", "REVIEWED", "REFERRED", "OWNS",
                                                      "HAD")}
        inter = [e.dst for c in ids for e in rels["HAD"].get(c, [])]
        inodes = store.get_nodes(inter)
        about = store.edges_many(inter, "ABOUT")
        devices = store.get_nodes([e.dst for c in ids for e in rels["OWNS"].get(c, [])])
        for c in ids:
            g.add_node(c, kind="customer")
            for t in ("BOUGHT", "REVIEWED", "REFERRED"):
                for e in rels[t].get(c, []):
                    g.add_edge(c, e.dst, rel=t, at=e.at)
            for e in rels["OWNS"].get(c, []):
                if e.dst in devices:
                    g.add_edge(c, devices[e.dst].props.get("device_type"), rel="owns")
            for e in rels["HAD"].get(c, []):
                node = inodes.get(e.dst)
                if node is not None:
                    prods = about.get(e.dst) or []
                    g.add_edge(c, node.props.get("channel"), rel="interacted", at=e.at,
                               product=prods[0].dst if prods else None)
    return customers


def _recommendations(rt: Pacte, size: int) -> list[dict[str, Any]]:
    app, _ = rt.create_principal(name="bench-shop", role="app", purposes=["personalization"])
    people = rt.session(app, "personalization").customers  # paged, consenting only
    targets: list[str] = []
    after: str | None = None
    while len(targets) < SAMPLE:
        page = people(first=100, after=after)
        targets.extend(v.id for v in page.items)
        if not page.has_next:
            break
        after = page.end_cursor
        people = rt.session(app, "personalization").customers
    targets = targets[:SAMPLE]
    for c in targets[:10]:  # warm the page cache
        rt.session(app, "personalization").recommendations(c)
    ours = sorted(_timed(lambda c=c: rt.session(app, "personalization").recommendations(c))
                  for c in targets)
    bare = sorted(_timed(lambda c=c: _bare_recommendations(rt._backend.store, c)) for c in targets)
    p50, p99 = _pct(ours, 0.5) * 1000, _pct(ours, 0.99) * 1000
    where = f"{size} customers, {len(targets)} requests"
    return [
        figure("analytics.recommendations_p50", p50, unit="ms", size=where, target="<= 50"),
        figure("analytics.recommendations_p99", p99, unit="ms", size=where, target="<= 250"),
        ratio("analytics.recommendations_vs_bare_store", p50, _pct(bare, 0.5) * 1000,
              numerator_label="Session.recommendations p50 ms (fresh session, consent, audit)",
              denominator_label="the same co-purchase count straight from the store, p50 ms",
              size=where, target="<= 3"),
    ]


def _bare_recommendations(store: Store, customer: str, first: int = 5) -> list[str]:
    mine = {e.dst for e in store.edges(customer, "BOUGHT")}
    buyers = store.edges_many(sorted(mine), "BOUGHT", direction="in")
    peers = sorted({e.src for edges in buyers.values() for e in edges} - {customer})
    scores: dict[str, int] = {}
    for edges in store.edges_many(peers, "BOUGHT").values():
        for p in {e.dst for e in edges} - mine:
            scores[p] = scores.get(p, 0) + 1
    return sorted(scores, key=lambda p: (-scores[p], p))[:first]


def _pct(ordered: list[float], q: float) -> float:
    if len(ordered) < 2:
        return ordered[0] if ordered else 0.0
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(q * 100) - 1] \
        if q < 1 else ordered[-1]


if __name__ == "__main__":
    for record in run(quick="--quick" in sys.argv[1:]):
        print(json.dumps(record))
