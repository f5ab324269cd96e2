"""Seeding: the real `pacte seed` command, and the cost of encryption on that path.

- `seed_cli_*`: `pacte init` + `pacte seed --customers N` in a child process, timed,
  with its peak memory (bars: 100k customers in under 180 s and under 1 GiB).
- `seed_encrypted_vs_plain`: customers/s of `Pacte.seed` (generate, seal, write,
  audit) over customers/s of the same generator written straight into a SQLite
  store without keys, sealing or audit (target >= 0.5).
- `seed_neo4j_vs_sqlite`: customers/s of `Pacte.seed` into a Neo4j server (the test
  server, full JIT) over the same into SQLite, interleaved rounds, best of each
  (target >= 0.5). The server is warmed by a throwaway load first, as a server in
  production is warm: a fresh JVM spends its first thousands of rows compiling. Skipped,
  with the reason, without Java.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import Record, figure, ratio
from pacte.graph.sqlite_store import SQLiteStore
from pacte.runtime import Pacte
from pacte.seed import generate


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pacte", *args], check=True,
                   stdout=subprocess.DEVNULL)


def seed_cli(customers: int) -> tuple[float, float]:
    """Seconds and peak MiB of `pacte seed --customers N` in a fresh data directory.

    The peak is that process's own (wait4), not RUSAGE_CHILDREN's: the latter is the
    largest of every child this process ever had, such as a Neo4j server started by
    an earlier benchmark in the same run.
    """
    with tempfile.TemporaryDirectory(prefix="pacte-bench-") as tmp:
        data = str(Path(tmp) / "data")
        _cli("init", "--data", data)
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "pacte", "seed", "--customers",
                                 str(customers), "--seed", "1", "--data", data],
                                stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, proc.args)
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


def seed_encrypted(customers: int) -> float:
    with tempfile.TemporaryDirectory(prefix="pacte-bench-") as tmp, \
            Pacte.init(Path(tmp) / "data") as rt:
        t0 = time.perf_counter()
        rt.seed(customers, seed=1)
        return customers / (time.perf_counter() - t0)


def seed_plain(customers: int) -> float:
    """The baseline: same batches, same two-thread pipeline, no keys, sealing or audit."""
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="pacte-bench-") as tmp:
        store = SQLiteStore(Path(tmp) / "plain.db", create=True)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=1) as writer:
            pending = None
            for batch in generate(customers, seed=1, now=now):
                if pending is not None:
                    pending.result()
                pending = writer.submit(store.write, batch)
            if pending is not None:
                pending.result()
        rate = customers / (time.perf_counter() - t0)
        store.close()
    return rate


def seed_neo4j_vs_sqlite(customers: int, *, rounds: int = 2) -> tuple[float, float] | None:
    """(Neo4j, SQLite) customers/s of `Pacte.seed`, best of `rounds`; None without Java."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:  # `tests` is a package at the repository root
        sys.path.insert(0, root)
    from tests.neo4j_fixture import build_server, clean_database, missing_tools, start_server

    reason = missing_tools()
    if reason is not None:
        print(f"  bench_seed: SKIPPED seed_neo4j_vs_sqlite: {reason}", file=sys.stderr)
        return None
    build_server()
    jvm = ("-Xms2g", "-Xmx2g", "-XX:+UseParallelGC", "-XX:+ExitOnOutOfMemoryError",
           f"-Dpacte.pagecache={2**30}", f"-Dpacte.txmemory={2**30}")
    best = {"neo4j": 0.0, "sqlite": 0.0}
    with tempfile.TemporaryDirectory(prefix="pacte-bench-") as tmp:
        server = start_server(Path(tmp) / "server", jvm_options=jvm)
        try:
            def once(uri: str | None, n: int, seed: int) -> float:
                if uri is not None:
                    clean_database(uri)
                with tempfile.TemporaryDirectory(prefix="pacte-bench-") as data, \
                        Pacte.init(Path(data) / "d", store_uri=uri) as rt:
                    t0 = time.perf_counter()
                    rt.seed(n, seed=seed)
                    return n / (time.perf_counter() - t0)

            once(server.uri, max(customers // 2, 500), 2)  # warm-up, not counted
            for _ in range(rounds):
                best["sqlite"] = max(best["sqlite"], once(None, customers, 1))
                best["neo4j"] = max(best["neo4j"], once(server.uri, customers, 1))
        finally:
            server.stop()
    return best["neo4j"], best["sqlite"]


def run(quick: bool) -> list[Record]:
    records: list[Record] = []
    cli_size = 5_000 if quick else 100_000
    seconds, peak = seed_cli(cli_size)
    records.append(figure("seed_cli_seconds", seconds, unit="s", size=cli_size,
                          target=None if quick else "< 180"))
    records.append(figure("seed_cli_peak_memory", peak, unit="MiB", size=cli_size,
                          target="< 1024"))
    records.append(figure("seed_cli_throughput", cli_size / seconds, unit="customers/s",
                          size=cli_size))
    size = 3_000 if quick else 20_000
    enc = seed_encrypted(size)
    plain = seed_plain(size)
    records.append(ratio("seed_encrypted_vs_plain", enc, plain,
                         numerator_label="Pacte.seed customers/s (sealed, keyed, audited)",
                         denominator_label="generate -> SQLiteStore.write customers/s (plain)",
                         size=size, target=">= 0.5"))
    both = seed_neo4j_vs_sqlite(2_000 if quick else 10_000)
    if both is not None:
        neo4j_rate, sqlite_rate = both
        n = 2_000 if quick else 10_000
        records += [
            figure("seed_neo4j_throughput", neo4j_rate, unit="customers/s", size=n),
            figure("seed_sqlite_throughput", sqlite_rate, unit="customers/s", size=n),
            ratio("seed_neo4j_vs_sqlite", neo4j_rate, sqlite_rate,
                  numerator_label="Pacte.seed customers/s into Neo4j (local test server, "
                                  "warm, Bolt)",
                  denominator_label="Pacte.seed customers/s into SQLite", size=n,
                  target=">= 0.5"),
        ]
    return records


if __name__ == "__main__":
    for record in run("--quick" in sys.argv):
        print(record)
