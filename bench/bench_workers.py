"""`pacte serve --workers N` on SQLite: customer-360 throughput with 2 workers over 1.

The bar of issue #18: >= 1.4x on this 2-core machine, load generator included. The
same data directory, key and customer sample for both; each server is a real `pacte
serve` subprocess (unpinned: the OS spreads its workers over the cores), loaded in
interleaved rounds (the best round of each counts: load from elsewhere only ever lowers
a round).

The load generator is wrk (1 thread, 8 connections, a Lua script cycling through the
sample's POST bodies; see `bench.harness.wrk_load`) when it is on the PATH, as in the
issue's own measurements: a C event loop that costs a small part of a core. Install it
with `apt-get install -y wrk` (Debian's 4.1.0). Without it the asyncio generator of
bench_api is used, which itself eats much of a core of the two and so understates what
the second worker brings; the records say which one ran (`generator`).

Run alone with `python -m bench.bench_workers [--quick]`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bench.bench_api import (
    FULL,
    QUERY_360,
    QUICK,
    SEED,
    Phase,
    _check,
    _free_port,
    _load,
    _prepare,
    _request,
)
from bench.harness import Record, figure, ratio, seeded, wrk_load, wrk_path

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 8


@contextmanager
def _serve(data: Path, workers: int, port: int) -> Iterator[int]:
    # The server's log (a JSON line per request) goes to a file, read only to see the
    # workers start: a pipe would need a reader, whose CPU the load would share.
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pacte", "serve", "--data", str(data), "--port", str(port),
             "--workers", str(workers)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log,
            stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 120
            # Each worker says so once it is up.
            while _read(log).count("Application startup complete") < workers:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {_read(log)[-2000:]}")
                time.sleep(0.1)
            yield proc.pid
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)


def _read(log: IO[str]) -> str:
    log.seek(0)
    return log.read()


def _cpu_seconds(root: int) -> float:
    """User + system CPU time so far of process `root` and its children (Linux /proc)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == root or int(fields[1]) == root:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _round(port: int, key: str, bodies: list[bytes], phase: Phase, *, use_wrk: bool
           ) -> tuple[float, int]:
    """Requests/s of one round against the server on `port`, and the requests sent."""
    requests = [_request(port, key, QUERY_360, {"id": i}) for i in _ids(bodies)]
    if use_wrk:
        timed = wrk_load(port, requests, connections=CONNECTIONS, seconds=phase.seconds,
                         warmup=phase.warmup)
        if timed.failures or not timed.requests:
            raise RuntimeError(f"wrk: {timed.failures} of {timed.requests} requests failed")
        throughput = timed.throughput
    else:
        load = asyncio.run(_load(port, requests, connections=CONNECTIONS, phase=phase))
        if load.failures or not load.requests:
            raise RuntimeError(f"{load.failures} of {load.requests} requests failed")
        throughput = load.throughput
    # The warm-up's requests are not counted: estimated at the same rate.
    return throughput, round(throughput * (phase.seconds + phase.warmup))


def _ids(bodies: list[bytes]) -> list[str]:
    return [json.loads(b)["variables"]["id"] for b in bodies]


def run(quick: bool) -> list[Record]:
    size = 1_000 if quick else 10_000
    phase = QUICK if quick else FULL
    data = seeded(size, seed=SEED)
    key, ids = _prepare(data)
    bodies = [json.dumps({"query": QUERY_360, "variables": {"id": i}}).encode() for i in ids]
    use_wrk = wrk_path() is not None
    generator = "wrk" if use_wrk else "asyncio"
    best = {1: 0.0, 2: 0.0}
    # CPU time of the server's processes per request, over all rounds: unlike the
    # throughput, load from elsewhere on the machine hardly moves it, and what the
    # workers would spend contending (retries, lock traffic) shows in it.
    cpu = {1: 0.0, 2: 0.0}
    served = {1: 0, 2: 0}
    ports = {1: _free_port(), 2: _free_port()}
    with _serve(data, 1, ports[1]) as pid1, _serve(data, 2, ports[2]) as pid2:
        pids = {1: pid1, 2: pid2}
        for port in ports.values():
            _check(port, _request(port, key, QUERY_360, {"id": ids[0]}))
        for r in range(phase.rounds + 1):
            # Which arm goes first alternates, so a slow spell falls on both alike.
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                before = _cpu_seconds(pids[workers])
                throughput, sent = _round(ports[workers], key, bodies, phase, use_wrk=use_wrk)
                cpu[workers] += _cpu_seconds(pids[workers]) - before
                served[workers] += sent
                best[workers] = max(best[workers], throughput)
    label = f"customer-360 req/s, {CONNECTIONS} connections, {generator} load generator"
    return [
        figure(f"serve_workers1_customer360_{generator}", best[1], unit="req/s", size=size),
        figure(f"serve_workers2_customer360_{generator}", best[2], unit="req/s", size=size),
        figure("serve_workers1_cpu_ms_per_request", 1000 * cpu[1] / served[1], unit="ms",
               size=size),
        figure("serve_workers2_cpu_ms_per_request", 1000 * cpu[2] / served[2], unit="ms",
               size=size),
        ratio("serve_workers2_over_workers1", best[2], best[1],
              numerator_label=f"{label}, --workers 2", denominator_label=f"{label}, --workers 1",
              size=size, target=">= 1.4"),
    ]

if __name__ == "__main__":
    for record in run("--quick" in sys.argv):
        print(record)
