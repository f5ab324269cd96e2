"""`pacte serve --workers N` on SQLite: customer-360 throughput with 2 workers over 1.

The bar of issue #18: >= 1.4x on this 2-core machine, load generator included. The
same data directory, key and customer sample for both; each server is a real `pacte
serve` subprocess (unpinned: the OS spreads its workers over the cores), loaded by
the asyncio generator of bench_api with 8 connections, in interleaved rounds (the
best round of each counts: load from elsewhere only ever lowers a round).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.bench_api import FULL, QUERY_360, QUICK, SEED, Phase, _load, _prepare, _request
from bench.harness import Record, figure, ratio, seeded

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 8


@contextmanager
def _serve(data: Path, workers: int, port: int) -> Iterator[None]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pacte", "serve", "--data", str(data), "--port", str(port),
         "--workers", str(workers)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    up = 0
    for line in proc.stdout:  # each worker says so once it is up
        if "Application startup complete" in line:
            up += 1
            if up == workers:
                break
    # The server's log lines (one per request) are read and dropped: a pipe nobody
    # reads would fill and stop the server.
    threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
    try:
        yield
    finally:
        proc.send_signal(2)
        proc.communicate(timeout=120)


def _best(port: int, requests: list[bytes], phase: Phase) -> float:
    load = asyncio.run(_load(port, requests, connections=CONNECTIONS, phase=phase))
    if load.failures or not load.requests:
        raise RuntimeError(f"{load.failures} of {load.requests} requests failed")
    return load.throughput


def run(quick: bool) -> list[Record]:
    from bench.bench_api import _free_port

    size = 1_000 if quick else 10_000
    phase = QUICK if quick else FULL
    data = seeded(size, seed=SEED)
    key, ids = _prepare(data)
    best = {1: 0.0, 2: 0.0}
    p1, p2 = _free_port(), _free_port()
    with _serve(data, 1, p1), _serve(data, 2, p2):
        arms = {1: (p1, [_request(p1, key, QUERY_360, {"id": i}) for i in ids]),
                2: (p2, [_request(p2, key, QUERY_360, {"id": i}) for i in ids])}
        for _ in range(phase.rounds + 1):
            for workers, (port, requests) in arms.items():
                best[workers] = max(best[workers], _best(port, requests, phase))
    return [
        figure("serve_workers1_customer360", best[1], unit="req/s", size=size),
        figure("serve_workers2_customer360", best[2], unit="req/s", size=size),
        ratio("serve_workers2_over_workers1", best[2], best[1],
              numerator_label=f"customer-360 req/s, --workers 2, {CONNECTIONS} connections",
              denominator_label="the same, --workers 1", size=size, target=">= 1.4"),
    ]


if __name__ == "__main__":
    for record in run("--quick" in sys.argv):
        print(record)
