"""pacte on Neo4j against pacte on SQLite: loading, and the customer-360 read.

A real Neo4j 5.26 server (the test server from tests/neo4j_fixture.py: Community,
embedded in one JVM) is started afresh for each size in a temporary directory, on a
free port, with the fixture's `LOAD_JVM_OPTIONS` (full JIT, 4 GiB heap, a page cache
that holds the whole store), and always stopped at the end.

- Seeding: `Pacte.init(dir, store_uri=...)` then `rt.seed(n)`, customers/s on Neo4j as
  a ratio of the same on SQLite (same n, same seed; only `seed()` is timed).
- The purpose-bound customer-360 read (`c360_on` from bench_session: a `service`
  session reads, inside `Session.around(customer)` as the GraphQL app does, the
  profile, 20 interactions with their products, the purchases and the consents, then
  flushes its audit record) on Neo4j, as a ratio of the same read on SQLite (same
  generator and seed, so the same ids and graph shape; `around` does nothing there).
  On Neo4j `around` opens `Neo4jStore.read_scope` and prefetches the customer's
  neighbourhood in one round trip, which answers the read's 7 store calls. For
  comparison, the same read without `around` (7 calls, 7 round trips) is timed too, and
  checked to return the same results. Target: <= 3 at 100k customers.

Quick: 2k customers. Full: 10k, then 100k unless the load rate measured at 10k says the
Neo4j load would take longer than `LOAD_BUDGET_S` (then the 100k figures are skipped,
loudly, and the extrapolated load time is reported instead). Both stores are seeded
afresh at every size: the harness's cached directories (`seeded`) may come from an
older generator, with other ids.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bench.bench_session import c360_on
from bench.harness import Record, figure, per_item, ratio
from pacte.runtime import Pacte

if TYPE_CHECKING:
    from tests.neo4j_fixture import Neo4jServer

SEED = 11  # the seed of the harness's cached data directories
LOAD_BUDGET_S = 20 * 60  # the longest Neo4j load this benchmark will start
C360_TARGET = "<= 3"
WARM_UP_S = 5.0  # per variant of the read, before timing
PASSES = 5  # timed passes over the sample per variant; the best one counts



def _log(message: str) -> None:
    print(f"  bench_neo4j: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _server(base: Path) -> Iterator[Neo4jServer]:
    """A fresh server in `base`; stopped on the way out, whatever happened."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:  # `tests` is a package at the repository root
        sys.path.insert(0, root)
    from tests.neo4j_fixture import LOAD_JVM_OPTIONS, build_server, start_server

    build_server()
    server = start_server(base, jvm_options=LOAD_JVM_OPTIONS)
    _log(f"Neo4j server on {server.uri}, ready in {server.started_in:.1f} s")
    try:
        yield server
    finally:
        server.stop()  # closes the JVM's stdin (clean shutdown), kills it after a timeout


class _Progress:
    """When each seeding batch finished, to tell the late load rate from the early one."""

    def __init__(self, total: int, label: str, *, every: int = 0) -> None:
        self.total, self.label, self.every = total, label, every
        self.t0 = time.perf_counter()
        self.marks: list[tuple[int, float]] = [(0, 0.0)]

    def __call__(self, customers: int) -> None:
        elapsed = time.perf_counter() - self.t0
        self.marks.append((customers, elapsed))
        if self.every and customers % self.every == 0:
            _log(f"{self.label}: {customers}/{self.total} customers in {elapsed:.0f} s")

    def late_rate(self) -> float:
        """Customers/s over the second half of the load (the graph is larger by then)."""
        end_n, end_t = self.marks[-1]
        mid_n, mid_t = next(m for m in self.marks if m[0] >= end_n // 2)
        if end_t <= mid_t:
            return end_n / end_t
        return (end_n - mid_n) / (end_t - mid_t)


def _seed(path: Path, customers: int, progress: _Progress, *, store_uri: str | None = None
          ) -> tuple[Pacte, float]:
    """A new data directory seeded with `customers`; the open runtime and seed() seconds."""
    rt = Pacte.init(path, store_uri=store_uri)
    try:
        t0 = progress.t0 = time.perf_counter()
        rt.seed(customers, seed=SEED, progress=progress)
        return rt, time.perf_counter() - t0
    except BaseException:
        rt.close()
        raise


def _c360_unscoped(rt: Pacte, principal: object) -> Callable[[str], object]:
    """`c360_on` without `Session.around`: every store call is a read of its own."""
    def read(cid: str) -> object:
        s = rt.session(principal, "service", defer_audit=True)  # type: ignore[arg-type]
        out = (s.customer(cid), s.interactions(cid, first=20), s.products_of(cid),
               s.consents(cid))
        s.flush()
        return out
    return read


def _c360(sqlite_rt: Pacte, neo4j_rt: Pacte, customers: int, *, sample: int
          ) -> dict[str, float]:
    """Seconds per customer-360 read: SQLite, Neo4j, Neo4j without the read scope."""
    ids = [n.id for n in sqlite_rt._backend.store.scan_nodes("Customer", limit=customers)]
    chosen = random.Random(7).sample(ids, min(sample, len(ids)))
    missing = set(chosen) - set(neo4j_rt._backend.store.get_nodes(chosen))
    if missing:
        raise RuntimeError(f"{len(missing)} of {len(chosen)} sampled customers are not in "
                           "Neo4j: the two data sets differ")
    reads: dict[str, Callable[[str], object]] = {}
    for name, rt in (("sqlite", sqlite_rt), ("neo4j", neo4j_rt)):
        principal, _ = rt.create_principal(name="bench", role="app", purposes=["service"])
        reads[name] = c360_on(rt, principal)
        if name == "neo4j":
            reads["neo4j_unscoped"] = _c360_unscoped(rt, principal)
    if reads["sqlite"](chosen[0]) is None:
        raise RuntimeError("the customer-360 read found nothing; the data sets differ")
    for cid in chosen[:50]:  # the scope changes nothing but the number of round trips
        if reads["neo4j"](cid) != reads["neo4j_unscoped"](cid):
            raise RuntimeError(f"the read of {cid} differs with and without the scope")
    for read in reads.values():
        # Warm caches, and the JVM: its JIT compiles the read path only after a few
        # thousand queries, and a server in production is warm.
        started = time.perf_counter()
        for i, cid in enumerate(itertools.cycle(chosen)):
            read(cid)
            if i >= 50 and time.perf_counter() - started > WARM_UP_S:
                break
    best = dict.fromkeys(reads, float("inf"))
    for _ in range(PASSES):  # interleaved: the machine's load weighs on every variant alike
        for name, read in reads.items():
            best[name] = min(best[name], per_item(read, chosen, rounds=1))
    _log(f"customer-360 at {customers}: SQLite {best['sqlite'] * 1e3:.2f} ms; Neo4j "
         f"{best['neo4j'] * 1e3:.2f} ms ({best['neo4j'] / best['sqlite']:.1f}x), without "
         f"the read scope {best['neo4j_unscoped'] * 1e3:.2f} ms "
         f"({best['neo4j_unscoped'] / best['sqlite']:.1f}x)")
    return best


def _measure(base: Path, customers: int, *, sample: int, every: int
             ) -> tuple[list[Record], _Progress]:
    """Seed both stores with `customers`, time the read; the records and the Neo4j load."""
    label = f"{customers // 1000}k"
    progress = _Progress(customers, f"Neo4j load of {label}", every=every)
    with _server(base / f"server-{label}") as server, contextlib.ExitStack() as opened:
        # SQLite first: it fails early if the disk is too small.
        sqlite_rt, sqlite_s = _seed(base / f"sqlite-{label}", customers,
                                    _Progress(customers, f"SQLite load of {label}", every=every))
        opened.callback(sqlite_rt.close)
        neo4j_rt, neo4j_s = _seed(base / f"neo4j-{label}", customers, progress,
                                  store_uri=server.uri)
        opened.callback(neo4j_rt.close)
        counts = sqlite_rt._backend.store.count_nodes()
        nodes, edges = sum(counts.values()), sum(sqlite_rt._backend.store.count_edges().values())
        _log(f"seeded {customers} customers ({nodes} nodes, {edges} edges): SQLite "
             f"{sqlite_s:.1f} s ({customers / sqlite_s:.0f}/s), Neo4j {neo4j_s:.1f} s "
             f"({customers / neo4j_s:.0f}/s)")
        c360 = _c360(sqlite_rt, neo4j_rt, customers, sample=sample)
        rss = server.rss_bytes()
    suffix = "" if customers == 10_000 else f"_{label}"
    records = [
        figure(f"neo4j_graph_nodes{suffix}", nodes, unit="nodes", size=customers),
        figure(f"neo4j_graph_edges{suffix}", edges, unit="edges", size=customers),
        figure(f"neo4j_seed_throughput{suffix}", customers / neo4j_s, unit="customers/s",
               size=customers),
        figure(f"neo4j_seed_sqlite_throughput{suffix}", customers / sqlite_s,
               unit="customers/s", size=customers),
        ratio(f"neo4j_seed_vs_sqlite{suffix}", customers / neo4j_s, customers / sqlite_s,
              numerator_label="customers/s seeding into Neo4j (local server, Bolt)",
              denominator_label="customers/s seeding into SQLite", size=customers),
        figure(f"neo4j_customer360_sqlite_latency{suffix}", c360["sqlite"] * 1e3, unit="ms",
               size=customers),
        figure(f"neo4j_customer360_latency{suffix}", c360["neo4j"] * 1e3, unit="ms",
               size=customers),
        figure(f"neo4j_customer360_unscoped_latency{suffix}", c360["neo4j_unscoped"] * 1e3,
               unit="ms", size=customers),
        ratio(f"neo4j_customer360_vs_sqlite{suffix}", c360["neo4j"], c360["sqlite"],
              numerator_label="Session customer-360 read on Neo4j (Session.around: one "
                              "round trip)",
              denominator_label="the same read on SQLite, same data", size=customers,
              target=C360_TARGET),
        ratio(f"neo4j_customer360_unscoped_vs_sqlite{suffix}", c360["neo4j_unscoped"],
              c360["sqlite"],
              numerator_label="the same Session read on Neo4j without Session.around (7 "
                              "store calls, 7 round trips)",
              denominator_label="the same read on SQLite, same data", size=customers),
    ]
    if rss is not None:
        records.append(figure(f"neo4j_server_rss{suffix}", rss / 2**20, unit="MiB",
                              size=customers))
    return records, progress


def run(quick: bool) -> list[Record]:
    sample = 200 if quick else 500
    with tempfile.TemporaryDirectory(prefix="pacte-bench-neo4j-") as tmp:
        base = Path(tmp)
        if quick:
            return _measure(base, 2_000, sample=sample, every=0)[0]
        records, progress = _measure(base, 10_000, sample=sample, every=0)
        large = 100_000
        estimate = large / progress.late_rate()
        records.append(figure("neo4j_load_estimate_100k", estimate / 60, unit="min",
                              size=large))
        if estimate > LOAD_BUDGET_S:
            _log(f"SKIPPED the {large} customer figures: loading them into Neo4j would take "
                 f"~{estimate / 60:.0f} min (extrapolated from {progress.late_rate():.0f} "
                 f"customers/s over the second half of the 10000 load), over the "
                 f"{LOAD_BUDGET_S / 60:.0f} min budget")
            return records
        _log(f"loading {large} customers into each store; Neo4j ~{estimate / 60:.0f} min "
             "expected")
        return records + _measure(base, large, sample=sample, every=10_000)[0]


if __name__ == "__main__":
    for record in run("--quick" in sys.argv):
        print(record)
