"""pacte on Neo4j against pacte on SQLite: loading, and the customer-360 read.

A real Neo4j 5.26 server (the test server from tests/neo4j_fixture.py: Community,
embedded in one JVM, 32 MiB page cache, 512 MiB heap) is started in a temporary
directory on a free port and always stopped at the end.

- Seeding: `Pacte.init(dir, store_uri=...)` then `rt.seed(n)`, customers/s on Neo4j as
  a ratio of the same on SQLite (same n, same seed; only `seed()` is timed).
- The purpose-bound customer-360 read (`c360_on` from bench_session) on the Neo4j data
  as a ratio of the same read on the SQLite data (same generator and seed, so the same
  ids and graph shape). Target: <= 3 at 100k customers.

Quick: 2k customers. Full: 10k, then 100k when the load rate measured at 10k says it
fits in `LOAD_BUDGET_S`; otherwise the 100k figures are skipped, loudly, and the
extrapolated load time is reported instead. Both stores are seeded afresh at every
size: the harness's cached directories (`seeded`) may come from an older generator,
with other ids.
"""

from __future__ import annotations

import contextlib
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bench.bench_session import c360_on
from bench.harness import Record, figure, per_item, ratio
from pacte.runtime import Pacte

if TYPE_CHECKING:
    from tests.neo4j_fixture import Neo4jServer

SEED = 11  # the seed of the harness's cached data directories
LARGE = 100_000
LOAD_BUDGET_S = 25 * 60  # the longest Neo4j load at LARGE this benchmark will start
C360_TARGET = "<= 3"


def _log(message: str) -> None:
    print(f"  bench_neo4j: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _server(base: Path) -> Iterator[Neo4jServer]:
    """A fresh test server in `base`; stopped on the way out, whatever happened."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:  # `tests` is a package at the repository root
        sys.path.insert(0, root)
    from tests.neo4j_fixture import build_server, start_server

    build_server()
    server = start_server(base)
    _log(f"Neo4j test server on {server.uri}, ready in {server.started_in:.1f} s")
    try:
        yield server
    finally:
        server.stop()  # closes the JVM's stdin (clean shutdown), kills it after a timeout


class _Progress:
    """When each seeding batch finished, to tell the late load rate from the early one."""

    def __init__(self, total: int, *, every: int = 0) -> None:
        self.total, self.every = total, every
        self.t0 = time.perf_counter()
        self.marks: list[tuple[int, float]] = [(0, 0.0)]

    def __call__(self, customers: int) -> None:
        elapsed = time.perf_counter() - self.t0
        self.marks.append((customers, elapsed))
        if self.every and customers % self.every == 0:
            _log(f"loaded {customers}/{self.total} customers in {elapsed:.0f} s")

    def late_rate(self) -> float:
        """Customers/s over the second half of the load (the graph is larger by then)."""
        end_n, end_t = self.marks[-1]
        mid_n, mid_t = next(m for m in self.marks if m[0] >= end_n // 2)
        if end_t <= mid_t:
            return end_n / end_t
        return (end_n - mid_n) / (end_t - mid_t)


def _seed(path: Path, customers: int, *, store_uri: str | None = None,
          progress: _Progress | None = None) -> tuple[Pacte, float]:
    """A new data directory seeded with `customers`; the open runtime and seed() seconds."""
    rt = Pacte.init(path, store_uri=store_uri)
    try:
        t0 = time.perf_counter()
        if progress is not None:
            progress.t0 = t0
        rt.seed(customers, seed=SEED, progress=progress)
        return rt, time.perf_counter() - t0
    except BaseException:
        rt.close()
        raise


def _c360(sqlite_rt: Pacte, neo4j_rt: Pacte, customers: int, *, sample: int
          ) -> tuple[float, float]:
    """Seconds per customer-360 read on SQLite and on Neo4j, over the same customers."""
    ids = [n.id for n in sqlite_rt.store.scan_nodes("Customer", limit=customers)]
    chosen = random.Random(7).sample(ids, min(sample, len(ids)))
    missing = set(chosen) - set(neo4j_rt.store.get_nodes(chosen))
    if missing:
        raise RuntimeError(f"{len(missing)} of {len(chosen)} sampled customers are not in "
                           "Neo4j: the two data sets differ")
    reads = []
    for rt in (sqlite_rt, neo4j_rt):
        principal, _ = rt.create_principal(name="bench", role="app", purposes=["service"])
        read = c360_on(rt, principal)
        if read(chosen[0]) is None:
            raise RuntimeError("the customer-360 read found nothing; the data sets differ")
        for cid in chosen[:50]:  # warm caches (and the JVM) before timing
            read(cid)
        reads.append(read)
    sqlite_s, neo4j_s = per_item(reads[0], chosen), per_item(reads[1], chosen)
    _log(f"customer-360 at {customers}: SQLite {sqlite_s * 1e3:.2f} ms, "
         f"Neo4j {neo4j_s * 1e3:.2f} ms ({neo4j_s / sqlite_s:.1f}x)")
    return sqlite_s, neo4j_s


def _c360_records(sqlite_s: float, neo4j_s: float, size: int, suffix: str = ""
                  ) -> list[Record]:
    return [
        figure(f"neo4j_customer360_latency{suffix}", neo4j_s * 1e3, unit="ms", size=size),
        figure(f"neo4j_customer360_sqlite_latency{suffix}", sqlite_s * 1e3, unit="ms",
               size=size),
        ratio(f"neo4j_customer360_vs_sqlite{suffix}", neo4j_s, sqlite_s,
              numerator_label="Session customer-360 read on Neo4j (test server, local Bolt)",
              denominator_label="the same read on SQLite, same data shape",
              size=size, target=C360_TARGET),
    ]


def run(quick: bool) -> list[Record]:
    small = 2_000 if quick else 10_000
    sample = 200 if quick else 500
    records: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="pacte-bench-neo4j-") as tmp:
        base = Path(tmp)
        # -- small: seed both stores, compare seeding and the read -------------------
        with _server(base / "server-small") as server:
            progress = _Progress(small)
            with contextlib.ExitStack() as opened:
                sqlite_rt, sqlite_s = _seed(base / "sqlite-small", small)
                opened.callback(sqlite_rt.close)
                neo4j_rt, neo4j_s = _seed(base / "neo4j-small", small, store_uri=server.uri,
                                          progress=progress)
                opened.callback(neo4j_rt.close)
                _log(f"seeded {small} customers: SQLite {sqlite_s:.1f} s, "
                     f"Neo4j {neo4j_s:.1f} s")
                c360_sqlite, c360_neo4j = _c360(sqlite_rt, neo4j_rt, small, sample=sample)
            rss = server.rss_bytes()
        records += [
            figure("neo4j_seed_throughput", small / neo4j_s, unit="customers/s", size=small),
            figure("neo4j_seed_sqlite_throughput", small / sqlite_s, unit="customers/s",
                   size=small),
            ratio("neo4j_seed_vs_sqlite", small / neo4j_s, small / sqlite_s,
                  numerator_label="customers/s seeding into Neo4j (test server, local Bolt)",
                  denominator_label="customers/s seeding into SQLite", size=small),
            *_c360_records(c360_sqlite, c360_neo4j, small),
        ]
        if rss is not None:
            records.append(figure("neo4j_server_rss", rss / 2**20, unit="MiB", size=small))
        if quick:
            return records

        # -- large: only when the load fits the budget ----------------------------------
        late_rate = progress.late_rate()
        estimate = LARGE / late_rate
        records.append(figure("neo4j_load_estimate_large", estimate / 60, unit="min",
                              size=LARGE))
        if estimate > LOAD_BUDGET_S:
            _log(f"SKIPPED the {LARGE} customer figures: loading them into Neo4j would take "
                 f"~{estimate / 60:.0f} min (extrapolated from {late_rate:.0f} customers/s "
                 f"over the second half of the {small} load), over the "
                 f"{LOAD_BUDGET_S / 60:.0f} min budget")
            return records
        _log(f"loading {LARGE} customers into Neo4j, ~{estimate / 60:.0f} min expected")
        with _server(base / "server-large") as server, contextlib.ExitStack() as opened:
            # SQLite first: a few minutes, and it fails early if the disk is too small.
            sqlite_rt, sqlite_s = _seed(base / "sqlite-large", LARGE)
            opened.callback(sqlite_rt.close)
            neo4j_rt, neo4j_s = _seed(base / "neo4j-large", LARGE, store_uri=server.uri,
                                      progress=_Progress(LARGE, every=10_000))
            opened.callback(neo4j_rt.close)
            _log(f"seeded {LARGE} customers: SQLite {sqlite_s / 60:.1f} min, "
                 f"Neo4j {neo4j_s / 60:.1f} min")
            c360_sqlite, c360_neo4j = _c360(sqlite_rt, neo4j_rt, LARGE, sample=sample)
        records += [
            ratio("neo4j_seed_vs_sqlite_large", LARGE / neo4j_s, LARGE / sqlite_s,
                  numerator_label="customers/s seeding into Neo4j (test server, local Bolt)",
                  denominator_label="customers/s seeding into SQLite", size=LARGE),
            *_c360_records(c360_sqlite, c360_neo4j, LARGE, "_large"),
        ]
    return records


if __name__ == "__main__":
    for record in run("--quick" in sys.argv):
        print(record)
