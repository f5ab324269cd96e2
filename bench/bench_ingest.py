"""Ingestion (issue #17): throughput against seeding, identity resolution against the
ground truth, peak memory on a large file, and re-ingestion.

- `ingest_vs_seed_rows`: source rows/s of `Pacte.ingest` over the exports of
  `pacte seed --sources`, divided by rows/s of `Pacte.seed` on the same world
  (customers + interactions + devices written per second), both on SQLite in one run
  (target >= 0.5). With `--neo4j`, the same on the test Neo4j server.
- `identity_precision` / `identity_recall`: pairwise, against the ground truth
  (targets >= 0.99 and >= 0.95).
- `ingest_peak_memory`: peak RSS of `pacte ingest` on one CSV of N event rows, in a
  child process (target < 500 MiB; the size measured is printed with it).
- `reingest_changes`: rows created, updated, merged or rejected by ingesting the same
  exports again (target == 0).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import Record, figure, ratio
from bench.ingest_truth import score
from pacte.clock import utcnow
from pacte.runtime import Pacte
from pacte.seed.sources import write_sources


def _files(src: Path) -> list[str]:
    return sorted(str(p) for p in src.glob("*.csv")) + sorted(
        str(p) for p in src.glob("*.jsonl"))


def seed_rows_per_s(customers: int, store_uri: str | None = None) -> float:
    with tempfile.TemporaryDirectory(prefix="pacte-bench-") as tmp, \
            Pacte.init(Path(tmp) / "data", store_uri=store_uri) as rt:
        t0 = time.perf_counter()
        rt.seed(customers, seed=1)
        seconds = time.perf_counter() - t0
        counts = rt._backend.store.count_nodes()
        rows = sum(counts.get(k, 0) for k in ("Customer", "Interaction", "Device"))
    return rows / seconds


def ingest_run(customers: int, store_uri: str | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="pacte-bench-") as tmp:
        src = Path(tmp) / "exports"
        write_sources(src, customers=customers, seed=1, now=utcnow())
        with Pacte.init(Path(tmp) / "data", store_uri=store_uri) as rt:
            t0 = time.perf_counter()
            report = rt.ingest(_files(src))
            seconds = time.perf_counter() - t0
            result = score(rt, src)
            again = rt.ingest(_files(src))
        changes = sum(again.count(k) for k in ("created", "updated", "merged", "rejected"))
        return {"rows_per_s": report.read / seconds, "rows": report.read,
                "rejected": report.rejected, "changes": changes, **result}


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
    seed_rate = seed_rows_per_s(customers)
    result = ingest_run(customers)
    size = f"{customers} customers, {int(result['rows'])} source rows"
    records.append(ratio("ingest_vs_seed_rows", result["rows_per_s"], seed_rate,
                         numerator_label="Pacte.ingest source rows/s (sqlite)",
                         denominator_label="Pacte.seed rows/s (sqlite)", size=size,
                         target=">= 0.5"))
    records.append(figure("ingest_rows_per_s", result["rows_per_s"], unit="rows/s",
                          size=size))
    records.append(figure("identity_precision", result["precision"], unit="",
                          size=size, target=">= 0.99"))
    records.append(figure("identity_recall", result["recall"], unit="", size=size,
                          target=">= 0.95"))
    records.append(figure("reingest_changes", result["changes"], unit="rows", size=size,
                          target="== 0"))
    big = 20_000 if quick else 200_000
    seconds, peak = ingest_peak_mib(big)
    records.append(figure("ingest_peak_memory", peak, unit="MiB", size=f"{big} rows",
                          target="< 500"))
    records.append(figure("ingest_cli_rows_per_s", big / seconds, unit="rows/s",
                          size=f"{big} rows"))
    if os.environ.get("PACTE_BENCH_INGEST_NEO4J"):
        records.extend(_neo4j(customers, size))
    return records


def _neo4j(customers: int, size: str) -> list[Record]:
    """The throughput ratio on the test suite's Neo4j server (started here, then stopped)."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests.neo4j_fixture import build_server, clean_database, start_server

    build_server()
    with tempfile.TemporaryDirectory(prefix="pacte-bench-neo4j-") as tmp:
        server = start_server(Path(tmp))
        try:
            clean_database(server.uri)
            seed_rate = seed_rows_per_s(customers, server.uri)
            clean_database(server.uri)
            neo = ingest_run(customers, server.uri)
        finally:
            server.stop()
    return [ratio("ingest_vs_seed_rows_neo4j", neo["rows_per_s"], seed_rate,
                  numerator_label="Pacte.ingest source rows/s (neo4j)",
                  denominator_label="Pacte.seed rows/s (neo4j)", size=size,
                  target=">= 0.5")]


if __name__ == "__main__":
    for record in run("--quick" in sys.argv):
        print(record)
