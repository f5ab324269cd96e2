"""Identity resolution scored against the ground truth of `pacte seed --sources`.

Each record of the ground truth names its person and a key that finds it in the
graph (a CRM id, an order line, a device serial, an event id). Precision and recall
are pairwise: of the pairs of records pacte put in one customer, the share that are
one person; of the pairs that are one person, the share pacte put together.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from pacte.graph.codec import EVENT_INDEX, event_token
from pacte.identity import normalise_identifier
from pacte.runtime import Pacte
from pacte.seed.sources import TRUTH_FILE

__all__ = ["score"]


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _customer(rt: Pacte, kind: str, key: str) -> str | None:
    store, codec = rt._backend.store, rt._backend.codec
    if kind == "event":
        found = store.lookup(EVENT_INDEX, event_token(key))
        node = store.get_nodes(found[:1]).get(found[0]) if found else None
        return node.owner if node is not None else None
    ident_kind = {"crm": "crm", "order": "order", "device": "device"}[kind]
    value = key.rsplit(":", 1)[0] if kind == "order" else key
    token = codec.keyed_token(f"id.{ident_kind}", normalise_identifier(ident_kind, value).value)
    owners = store.lookup(f"Identity.{ident_kind}", token)
    return owners[0] if len(owners) == 1 else None


def score(rt: Pacte, sources: Path) -> dict[str, float]:
    """Pairwise precision and recall, and how many records were found at all."""
    truth: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    both: Counter[tuple[str, str]] = Counter()
    records = missing = 0
    with (sources / TRUTH_FILE).open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            records += 1
            cid = _customer(rt, row["key_kind"], row["key"])
            if cid is None:
                missing += 1
                cid = f"missing:{records}"  # a record pacte lost is alone
            truth[row["person"]] += 1
            predicted[cid] += 1
            both[(row["person"], cid)] += 1
    together = sum(_pairs(n) for n in both.values())
    predicted_pairs = sum(_pairs(n) for n in predicted.values())
    truth_pairs = sum(_pairs(n) for n in truth.values())
    return {
        "records": records,
        "missing": missing,
        "people": len(truth),
        "customers": len([c for c in predicted if not c.startswith("missing:")]),
        "precision": together / predicted_pairs if predicted_pairs else 1.0,
        "recall": together / truth_pairs if truth_pairs else 1.0,
    }
