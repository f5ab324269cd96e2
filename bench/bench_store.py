"""Store-level figures: seed generation, plaintext writes to SQLite, and whether a
customer's interaction page costs the same in a graph ten times larger.

Sizes (quick / full): generation 5k / 50k customers; stores of 1k and 10k / 10k and
100k customers. Both stores are filled from one pass of `generate` (the smaller is
a prefix of the larger), and the lookup is timed on both in the same run.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import Record, best_of, figure, peak_rss_mib, ratio
from pacte.graph.sqlite_store import SQLiteStore
from pacte.graph.store import WriteBatch
from pacte.seed import generate

# Fixed, so every run measures the same data.
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PAGE = 20


def _timed(batches: Iterator[WriteBatch]) -> Iterator[tuple[WriteBatch, float]]:
    """Each batch with the seconds spent producing it (the consumer's time excluded)."""
    while True:
        start = time.perf_counter()
        batch = next(batches, None)
        spent = time.perf_counter() - start
        if batch is None:
            return
        yield batch, spent


def _count(batch: WriteBatch, kind: str) -> int:
    return sum(1 for n in batch.nodes if n.kind == kind)


def generation(customers: int) -> list[Record]:
    spent = 0.0
    interactions = 0
    for batch, seconds in _timed(generate(customers, now=NOW)):
        spent += seconds
        interactions += _count(batch, "Interaction")
    return [
        figure("seed.generate.customers", customers / spent, unit="customers/s",
               size=customers),
        figure("seed.generate.interactions", interactions / spent, unit="interactions/s",
               size=customers),
    ]


def build(directory: Path, small: int, large: int
          ) -> tuple[SQLiteStore, list[str], SQLiteStore, list[str], list[Record]]:
    """Stores of `small` and `large` customers; times the writes to the large one."""
    small_store = SQLiteStore(directory / "small.db", create=True)
    large_store = SQLiteStore(directory / "large.db", create=True)
    small_ids: list[str] = []
    large_ids: list[str] = []
    written = generated = 0.0
    interactions = rows = 0
    for batch, seconds in _timed(generate(large, now=NOW)):
        generated += seconds
        ids = [n.id for n in batch.nodes if n.kind == "Customer"]
        if len(small_ids) < small:
            # Batches hold 1000 customers and `small` is a multiple of that.
            small_store.write(batch)
            small_ids.extend(ids)
        start = time.perf_counter()
        large_store.write(batch)
        written += time.perf_counter() - start
        large_ids.extend(ids)
        interactions += _count(batch, "Interaction")
        rows += len(batch.nodes) + len(batch.edges)
    records = [
        figure("store.write.customers", large / written, unit="customers/s", size=large),
        figure("store.write.interactions", interactions / written, unit="interactions/s",
               size=large),
        figure("store.write.rows", rows / written, unit="rows/s", size=large),
        figure("store.generate_and_write.customers", large / (written + generated),
               unit="customers/s", size=large),
        figure("store.peak_rss", peak_rss_mib(), unit="MiB", size=large),
    ]
    return small_store, small_ids, large_store, large_ids, records


def _page(store: SQLiteStore, customer_ids: list[str]) -> None:
    for cid in customer_ids:
        edges = store.edges(cid, "HAD", limit=PAGE)
        store.get_nodes([e.dst for e in edges])


def lookup_ratio(small_store: SQLiteStore, small_ids: list[str], large_store: SQLiteStore,
                 large_ids: list[str], *, samples: int) -> list[Record]:
    rnd = random.Random(42)
    small_sample = rnd.sample(small_ids, min(samples, len(small_ids)))
    large_sample = rnd.sample(large_ids, min(samples, len(large_ids)))
    # Warm cache: both samples are read once before any timing.
    _page(small_store, small_sample)
    _page(large_store, large_sample)
    small_cost = large_cost = float("inf")
    for _ in range(5):  # interleaved, so drift on a busy machine hits both alike
        small_cost = min(small_cost, best_of(lambda: _page(small_store, small_sample),
                                             repeat=1) / len(small_sample))
        large_cost = min(large_cost, best_of(lambda: _page(large_store, large_sample),
                                             repeat=1) / len(large_sample))
    n_small, n_large = len(small_ids), len(large_ids)
    return [
        figure("store.interaction_page", small_cost * 1e6, unit="us/lookup", size=n_small),
        figure("store.interaction_page", large_cost * 1e6, unit="us/lookup", size=n_large),
        ratio("store.interaction_page.growth", large_cost, small_cost,
              numerator_label=f"s per page of {PAGE} at {n_large} customers",
              denominator_label=f"s per page of {PAGE} at {n_small} customers",
              size=f"{n_large}/{n_small}", target="<= 1.3"),
    ]


def run(quick: bool) -> list[Record]:
    gen_customers = 5_000 if quick else 50_000
    small, large = (1_000, 10_000) if quick else (10_000, 100_000)
    records = generation(gen_customers)
    with tempfile.TemporaryDirectory(prefix="pacte-bench-") as tmp:
        small_store, small_ids, large_store, large_ids, built = build(Path(tmp), small, large)
        try:
            records += built
            records += lookup_ratio(small_store, small_ids, large_store, large_ids,
                                    samples=500 if quick else 2000)
        finally:
            small_store.close()
            large_store.close()
    return records
