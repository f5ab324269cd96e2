"""Next best actions (issue #21): quality against the planted truth, and cost.

A fresh data directory is seeded with `pacte.seed.patterns.Planted` (the default
world plus planted patterns; the truth stays in memory, never in the store). Then,
for every customer who consented to personalization and has something true to
predict:

- `predict_precision_at_3`, `predict_recall_at_3`: hits in the top 3 of
  `next_best_actions` over 3, and over the true actions;
- `predict_baseline_precision_at_3`: the same for the most popular actions (the 3
  most frequent true actions over all customers, handed to everyone);
- `predict_vs_popular`: the two precisions' ratio, target >= 2.

Cost: `predict_vs_customer360`, a prediction request (a personalization session with
its audit deferred to one append, as the GraphQL app runs it) over the customer-360
read of bench_session (`c360_on`, under service), on the same store and sample,
timed in alternating chunks (`harness.paired`); target <= 2. The same ratio in CPU
time of this process (`_cpu`: the best of 3 passes each), which other processes on a
shared machine disturb less than wall time.

Quick: 2k customers; full: 10k.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.bench_session import c360_on
from bench.harness import Record, figure, paired, ratio
from pacte.predict import next_best_actions
from pacte.runtime import Pacte
from pacte.seed.patterns import Planted

SEED = 11
TOP = 3


def predict_on(rt: Pacte, principal: object) -> Callable[[str], object]:
    def predict(cid: str) -> object:
        s = rt.session(principal, "personalization", defer_audit=True)  # type: ignore[arg-type]
        with s.around(cid):
            out = next_best_actions(s, cid, first=TOP)
        s.flush()
        return out
    return predict


def _consenting(rt: Pacte) -> list[str]:
    s = rt.operator_session("personalization")
    ids: list[str] = []
    after = None
    while True:
        page = s.customers(first=100, after=after, fields=())
        ids.extend(v.id for v in page.items)
        if not page.has_next:
            return ids
        after = page.end_cursor


def measure(customers: int, *, sample: int) -> list[Record]:
    size = f"{customers} customers"
    with tempfile.TemporaryDirectory() as tmp, \
            Pacte.init(Path(tmp) / "data") as rt:
        planted = Planted(customers, seed=SEED, now=rt.now())
        rt.operator_session("service").ingest(planted.batches())
        truth = planted.truth
        app, _ = rt.create_principal(name="bench", role="app",
                                     purposes=["personalization", "service"])
        predict = predict_on(rt, app)
        evaluated = [c for c in _consenting(rt) if truth.get(c)]
        popular = [key for key, _ in Counter(
            key for actions in truth.values() for key in actions).most_common(TOP)]
        hits = base_hits = relevant = 0
        for cid in evaluated:
            got = {a.key for a in predict(cid)}  # type: ignore[attr-defined]
            hits += len(got & truth[cid])
            base_hits += len(set(popular) & truth[cid])
            relevant += len(truth[cid])
        precision = hits / (TOP * len(evaluated))
        base = base_hits / (TOP * len(evaluated))
        chosen = random.Random(7).sample(evaluated, min(sample, len(evaluated)))
        c360 = c360_on(rt, app)
        for cid in chosen[:30]:  # warm both paths
            predict(cid)
            c360(cid)
        t_predict, t_360 = paired(predict, c360, chosen)
        cpu_predict, cpu_360 = _cpu(predict, chosen), _cpu(c360, chosen)
        print(f"  bench_predict: {size}, {len(evaluated)} evaluated (consented, with a true "
              f"action), {relevant} true actions, timing sample {len(chosen)}",
              file=sys.stderr)
        return [
            figure("predict_precision_at_3", precision, unit="", size=size),
            figure("predict_recall_at_3", hits / relevant, unit="", size=size),
            figure("predict_baseline_precision_at_3", base, unit="", size=size),
            figure("predict_baseline_recall_at_3", base_hits / relevant, unit="", size=size),
            ratio("predict_vs_popular", precision, base,
                  numerator_label="precision@3 of next_best_actions",
                  denominator_label="precision@3 of the 3 most popular true actions",
                  size=size, target=">= 2"),
            figure("predict_latency_ms", t_predict * 1e3, unit="ms", size=size),
            ratio("predict_vs_customer360", t_predict, t_360,
                  numerator_label="s per prediction request (personalization, SQLite)",
                  denominator_label="s per customer-360 read (service, SQLite)",
                  size=size, target="<= 2"),
            ratio("predict_vs_customer360_cpu", cpu_predict, cpu_360,
                  numerator_label="CPU s per prediction request (personalization, SQLite)",
                  denominator_label="CPU s per customer-360 read (service, SQLite)",
                  size=size, target="<= 2"),
        ]


def _cpu(fn: Callable[[str], object], items: list[str], *, rounds: int = 3) -> float:
    """CPU seconds of this process per `fn(item)`: the best of `rounds` passes."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for item in items:
            fn(item)
        best = min(best, (time.process_time() - start) / len(items))
    return best


def run(quick: bool) -> list[Record]:
    return measure(2000 if quick else 10_000, sample=200 if quick else 500)
