"""Ingestion (issue #17): throughput against seeding, identity resolution against the
ground truth, peak memory on a large file, and re-ingestion.

- `ingest_vs_seed_rows`: source rows/s of `Pacte.ingest` over the exports of
  `pacte seed --sources`, divided by rows/s of `Pacte.seed` on the same world
  (customers + interactions + devices written per second), both on SQLite (target
  >= 0.5). The two arms run interleaved (seed, ingest, seed, ingest...) in one process,
  so load that comes and goes falls on both; the median ratio of the rounds is the
  figure, and `ingest_vs_seed_cpu` is the same ratio in process CPU time (steadier on
  a shared machine). The size names the load average at the start. With
  `PACTE_BENCH_INGEST_NEO4J=1`, the same on the test Neo4j server.
- `identity_precision` / `identity_recall`: pairwise, against the ground truth
  (targets >= 0.99 and >= 0.95).
- `ingest_peak_memory`: peak RSS of `pacte ingest` on one CSV of N event rows (1M
  rows, 50,000 customers; 20,000 rows with --quick), in a child process (target
  < 500 MiB, for 1M rows).
- `reingest_changes`: rows created, updated, merged or rejected by ingesting the same
  exports again (target == 0).
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import Record, figure, ratio
from bench.ingest_truth import score
from pacte.clock import utcnow
from pacte.runtime import Pacte
from pacte.seed.sources import write_sources


def _files(src: Path) -> list[str]:
    return sorted(str(p) for p in src.glob("*.csv")) + sorted(
        str(p) for p in src.glob("*.jsonl"))


def seed_rates(customers: int, store_uri: str | None = None) -> tuple[float, float]:
    """Rows per second of wall time and of process CPU time of `Pacte.seed`."""
    with tempfile.TemporaryDirectory(prefix="pacte-bench-") as tmp, \
            Pacte.init(Path(tmp) / "data", store_uri=store_uri) as rt:
        t0, c0 = time.perf_counter(), time.process_time()
        rt.seed(customers, seed=1)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        counts = rt._backend.store.count_nodes()
        rows = sum(counts.get(k, 0) for k in ("Customer", "Interaction", "Device"))
    return rows / seconds, rows / cpu


def ingest_run(src: Path, store_uri: str | None = None, *, check: bool = True
               ) -> dict[str, float]:
    """Rows/s (wall and CPU) of ingesting the exports in `src` into a new store; with
    `check`, also the identity scores and the changes made by ingesting them again."""
    with tempfile.TemporaryDirectory(prefix="pacte-bench-") as tmp, \
            Pacte.init(Path(tmp) / "data", store_uri=store_uri) as rt:
        t0, c0 = time.perf_counter(), time.process_time()
        report = rt.ingest(_files(src))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        out: dict[str, float] = {"rows_per_s": report.read / seconds,
                                 "cpu_rows_per_s": report.read / cpu,
                                 "rows": report.read, "rejected": report.rejected}
        if check:
            out |= score(rt, src)
            again = rt.ingest(_files(src))
            out["changes"] = sum(again.count(k)
                                 for k in ("created", "updated", "merged", "rejected"))
    return out


def interleaved(customers: int, src: Path, *, rounds: int, store_uri: str | None = None,
                reset: Callable[[], object] | None = None) -> dict[str, float]:
    """Seed and ingest in turn, `rounds` times: the median of the rounds' ratios (wall
    and CPU), the rates of the median round, and the checks of the last ingestion."""
    walls: list[tuple[float, float, float]] = []
    cpus: list[float] = []
    result: dict[str, float] = {}
    for r in range(rounds):
        if reset is not None:
            reset()
        seed_wall, seed_cpu = seed_rates(customers, store_uri)
        if reset is not None:
            reset()
        result = ingest_run(src, store_uri, check=r == rounds - 1)
        walls.append((result["rows_per_s"] / seed_wall, result["rows_per_s"], seed_wall))
        cpus.append(result["cpu_rows_per_s"] / seed_cpu)
    walls.sort()
    middle = walls[len(walls) // 2]
    return {**result, "ratio": middle[0], "ingest_rate": middle[1], "seed_rate": middle[2],
            "cpu_ratio": statistics.median(cpus)}


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def ingest_peak_mib(rows: int) -> tuple[float, float]:
    """Seconds and peak MiB of `pacte ingest` on one CSV of `rows` events."""
    with tempfile.TemporaryDirectory(prefix="pacte-bench-") as tmp:
        path = Path(tmp) / "events.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["event_id", "email", "channel", "kind", "occurred_at", "summary",
                        "amount"])
            for i in range(rows):
                w.writerow([f"ev-{i}", f"person{i % 50_000}@example.com", "web", "visit",
                            1_767_225_600 + i, f"viewed page {i % 977}", f"{i % 100},5"])
        data = str(Path(tmp) / "data")
        subprocess.run([sys.executable, "-m", "pacte", "init", "--data", data], check=True,
                       stdout=subprocess.DEVNULL)
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "pacte", "ingest", str(path),
                                 "--data", data], stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status):
            raise RuntimeError("pacte ingest failed")
    return seconds, usage.ru_maxrss / 1024


def run(quick: bool) -> list[Record]:
    records: list[Record] = []
    customers = 300 if quick else 2_000
    with tempfile.TemporaryDirectory(prefix="pacte-bench-src-") as tmp:
        src = Path(tmp) / "exports"
        write_sources(src, customers=customers, seed=1, now=utcnow())
        load = _load()
        result = interleaved(customers, src, rounds=3)
        size = f"{customers} customers, {int(result['rows'])} source rows, {load}"
        records.extend(_ratios("", result, size))
        records.append(figure("identity_precision", result["precision"], unit="",
                              size=size, target=">= 0.99"))
        records.append(figure("identity_recall", result["recall"], unit="", size=size,
                              target=">= 0.95"))
        records.append(figure("reingest_changes", result["changes"], unit="rows",
                              size=size, target="== 0"))
        if os.environ.get("PACTE_BENCH_INGEST_NEO4J"):
            records.extend(_neo4j(customers, src))
    big = 20_000 if quick else 1_000_000
    seconds, peak = ingest_peak_mib(big)
    records.append(figure("ingest_peak_memory", peak, unit="MiB",
                          size=f"{big} event rows, {min(big, 50_000)} customers",
                          target="< 500"))
    records.append(figure("ingest_cli_rows_per_s", big / seconds, unit="rows/s",
                          size=f"{big} rows"))
    return records


def _ratios(suffix: str, result: dict[str, float], size: str) -> list[Record]:
    store = suffix.strip("_") or "sqlite"
    return [
        ratio(f"ingest_vs_seed_rows{suffix}", result["ingest_rate"], result["seed_rate"],
              numerator_label=f"Pacte.ingest source rows/s ({store})",
              denominator_label=f"Pacte.seed rows/s ({store})", size=size,
              target=">= 0.5"),
        figure(f"ingest_vs_seed_cpu{suffix}", result["cpu_ratio"], unit="x",
               size=f"{size}; rows per CPU second, median of the rounds"),
        figure(f"ingest_rows_per_s{suffix}", result["ingest_rate"], unit="rows/s",
               size=size),
    ]


def _neo4j(customers: int, src: Path) -> list[Record]:
    """The throughput ratio on the test suite's Neo4j server (started here, then stopped)."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests.neo4j_fixture import build_server, clean_database, start_server

    build_server()
    with tempfile.TemporaryDirectory(prefix="pacte-bench-neo4j-") as tmp:
        server = start_server(Path(tmp))
        try:
            load = _load()
            result = interleaved(customers, src, rounds=3, store_uri=server.uri,
                                 reset=lambda: clean_database(server.uri))
        finally:
            server.stop()
    size = f"{customers} customers, {int(result['rows'])} source rows, {load}"
    return _ratios("_neo4j", result, size)


if __name__ == "__main__":
    for record in run("--quick" in sys.argv):
        print(record)
