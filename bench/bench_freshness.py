"""`{ __typename }` on Neo4j against SQLite, with the lease on and off (issue 19, bar:
Neo4j >= 0.8x SQLite).

Before any data is read, a request on Neo4j needed the API-key revocation stamp and the
key vault's state, each a round trip; under the lease (pacte.lease, docs/freshness.md)
both come from one read renewed by one request in many. Three servers, one process each
(`python -m bench.bench_api serve`): pacte on SQLite, pacte on Neo4j with the default
lease, and pacte on Neo4j with `PACTE_LEASE_MS=0` (a read per request, as before). Each
is loaded with wrk (1 thread, 4 keep-alive connections), arms interleaved over rounds,
the best round of each arm kept; beside the throughput, the store round trips per
request read from `/metrics` (`pacte_store_round_trips_total`, the renewals
included: a clean figure on a loaded machine) and the server's CPU time per request.
Needs wrk and Java for the Neo4j test server; else it says why and returns nothing.
Run alone with `python -m bench.bench_freshness [--quick]`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.bench_api import (
    CLIENT_CPU,
    TYPENAME,
    Server,
    _cpu_seconds,
    _request,
    _server,
)
from bench.harness import Record, figure, ratio, wrk_load, wrk_path

__all__ = ["run"]

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 4
JVM_OPTIONS = ("-Xms256m", "-Xmx1g")


@dataclass
class Arm:
    name: str
    server: Server
    key: str
    rounds: list[tuple[float, float, float]] = field(default_factory=list)
    # (requests/s, round trips per request, server CPU ms per request)

    def round(self, seconds: float, warmup: float) -> None:
        request = _request(self.server.port, self.key, TYPENAME, None)
        trips0, cpu0 = _round_trips(self.server.port), _cpu_seconds(self.server.pid)
        load = wrk_load(self.server.port, [request], connections=CONNECTIONS,
                        seconds=seconds, warmup=warmup, cpu=CLIENT_CPU)
        trips1, cpu1 = _round_trips(self.server.port), _cpu_seconds(self.server.pid)
        if load.failures:
            raise RuntimeError(f"{self.name}: {load.failures} requests failed")
        # The warm-up's requests are in the counters too: per request over both runs is
        # not known, so the round trips are taken over the measured run's requests plus
        # the warm-up's estimated at the same rate.
        done = load.requests * (1 + warmup / seconds) if load.requests else 1
        self.rounds.append((load.throughput, (trips1 - trips0) / done,
                            (cpu1 - cpu0) * 1000 / done))

    @property
    def best(self) -> tuple[float, float, float]:
        return max(self.rounds)


def _round_trips(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        body = b""
        while chunk := s.recv(65536):
            body += chunk
    found = re.search(rb"^pacte_store_round_trips_total (\d+)", body, re.M)
    return float(found.group(1)) if found else 0.0


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _data(path: Path, store_uri: str | None) -> str:
    from pacte.runtime import Pacte

    with Pacte.init(path, store_uri=store_uri) as rt:
        _, key = rt.create_principal(name="bench-freshness", role="app", purposes=["service"])
    return key


def run(quick: bool) -> list[Record]:
    if wrk_path() is None:
        print("bench_freshness: skipped, wrk is not installed", file=sys.stderr)
        return []
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.neo4j_fixture import build_server, missing_tools, start_server

    if (reason := missing_tools()) is not None:
        print(f"bench_freshness: skipped, {reason}", file=sys.stderr)
        return []
    seconds, warmup, rounds = (2.0, 1.0, 2) if quick else (5.0, 1.0, 3)
    build_server()
    with tempfile.TemporaryDirectory(prefix="pacte-bench-freshness-") as tmp:
        base = Path(tmp)
        neo = start_server(base / "neo4j", jvm_options=JVM_OPTIONS)
        try:
            sqlite_key = _data(base / "sqlite", None)
            neo_key = _data(base / "neo4j-data", neo.uri)
            with contextlib.ExitStack() as stack:
                arms = [Arm("sqlite", stack.enter_context(_server(base / "sqlite", "privacy")),
                            sqlite_key)]
                with _env(PACTE_LEASE_MS="200"):
                    arms.append(Arm("neo4j, lease 200 ms", stack.enter_context(
                        _server(base / "neo4j-data", "privacy")), neo_key))
                with _env(PACTE_LEASE_MS="0"):
                    arms.append(Arm("neo4j, lease off", stack.enter_context(
                        _server(base / "neo4j-data", "privacy")), neo_key))
                for _ in range(rounds):
                    for arm in arms:
                        arm.round(seconds, warmup)
        finally:
            neo.stop()
    sqlite, leased, off = (a.best for a in arms)
    records: list[Record] = []
    for arm in arms:
        rps, trips, cpu = arm.best
        records += [figure(f"typename req/s, {arm.name}", rps, unit="req/s"),
                    figure(f"store round trips per request, {arm.name}", trips, unit="n"),
                    figure(f"server CPU per request, {arm.name}", cpu, unit="ms")]
    records += [
        ratio("typename Neo4j (lease) / SQLite", leased[0], sqlite[0],
              numerator_label="neo4j, lease", denominator_label="sqlite", target=">= 0.8"),
        ratio("typename Neo4j (lease off) / SQLite", off[0], sqlite[0],
              numerator_label="neo4j, lease off", denominator_label="sqlite"),
    ]
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_freshness")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    for r in run(args.quick):
        value = r["value"]
        print(f"{r['name']:<50} {value:10.3f} {r['unit']}"
              + (f"   (target {r['target']})" if r.get("target") else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
