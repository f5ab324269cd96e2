"""The GraphQL API over real HTTP on loopback, measured in one run.

A `uvicorn` server runs the app in a subprocess pinned to CPU 0; the load generator
(plain asyncio sockets, HTTP/1.1 keep-alive, a few connections) runs here, pinned to
CPU 1. Each phase is bounded in time and in requests.

- `api_customer360_throughput`: requests/s of the customer-360 query (profile, 20
  latest interactions with their product, products, consents) under `service`, with
  4 connections; `api_customer360_p50_ms` / `_p99_ms`: latency with 1 connection.
- `api_customer360_vs_typename`: that throughput over the same server's
  `{ __typename }` throughput (auth, purpose admission and HTTP included in both):
  what the data work costs next to the fixed cost of a request. Target >= 0.5.
- `api_privacy_on_vs_off`: time per customer-360 request with privacy over the same
  request served by a BENCHMARK-ONLY baseline (see `_BareSession`): the same HTTP
  layer, schema, loaders and store round trips, but no consent or visibility
  check, no field gating, no decryption and no audit. Target <= 1.3.

Sizes: 10k and 100k customers (quick: 1k). Seeded data directories are cached under
`bench/results/` (git-ignored), keyed by size and seed, and shared with the other
benchmarks; seeding 100k customers takes a few minutes the first time.

Run alone with `python -m bench.bench_api [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import Record, figure, ratio, seeded, stop

__all__ = ["run"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
SEED = 11
SERVER_CPU, CLIENT_CPU = 0, 1
CONNECTIONS = 4
SAMPLE_IDS = 2000

QUERY_360 = """query Customer360($id: ID!) {
  customer(id: $id) {
    id name email phone address
    consents { purpose status at until source }
    interactions(first: 20) {
      edges { cursor node { id channel kind occurredAt summary product { id name } } }
      pageInfo { hasNextPage endCursor }
    }
    products { id name category price }
  }
}"""
TYPENAME = "{ __typename }"


@dataclass(frozen=True)
class Phase:
    """One round of one arm: warm up, then measure for `seconds` or `max_requests`."""

    seconds: float
    warmup: float
    max_requests: int
    rounds: int


QUICK = Phase(seconds=1.5, warmup=0.3, max_requests=20_000, rounds=2)
FULL = Phase(seconds=3.0, warmup=0.5, max_requests=100_000, rounds=3)


def run(quick: bool) -> list[Record]:
    sizes = [1_000] if quick else [10_000, 100_000]
    phase = QUICK if quick else FULL
    records: list[Record] = []
    for size in sizes:
        records += _measure(seeded(size, seed=SEED), size, phase)
    return records


# -- data --------------------------------------------------------------------------


def _prepare(data: Path) -> tuple[str, list[str]]:
    """A fresh API key for the run, and a random sample of customer ids."""
    from pacte.runtime import Pacte

    with Pacte.open(data) as rt:
        _, key = rt.create_principal(name=f"bench-api-{uuid.uuid4().hex[:6]}", role="app",
                                     purposes=["service"])
        # Ids only (bench-side): the store is scanned without decrypting anything.
        ids: list[str] = []
        after: str | None = None
        while True:
            page = rt._backend.store.scan_nodes("Customer", after=after, limit=5000)
            if not page:
                break
            ids += [n.id for n in page]
            after = page[-1].id
    rng = random.Random(SEED)
    return key, rng.sample(ids, min(SAMPLE_IDS, len(ids)))


# -- the server --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    port: int
    pid: int


@contextmanager
def _server(data: Path, mode: str) -> Iterator[Server]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_api", "serve", "--data", str(data),
         "--port", str(port), "--mode", mode, "--cpu", str(SERVER_CPU)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"the {mode} server exited: {err[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {mode} server did not start")
            time.sleep(0.1)
        yield Server(port, proc.pid)
    finally:
        stop(proc)


def serve(data: Path, *, port: int, mode: str, cpu: int | None) -> None:
    """The server side of the benchmark (run in its own process)."""
    import uvicorn

    from pacte.api import create_app
    from pacte.api.gc_pauses import freeze_startup_heap
    from pacte.api.server_stack import server_stack
    from pacte.runtime import Pacte

    if cpu is not None and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})
    rt = Pacte.open(data)
    app = create_app(rt if mode == "privacy" else _BareRuntime(rt))  # type: ignore[arg-type]
    freeze_startup_heap()  # as `pacte serve` does
    stack = server_stack()  # as `pacte serve` does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                lifespan="off", server_header=False, http=stack.http, loop=stack.loop)


# -- BENCHMARK ONLY: the same API with privacy off -----------------------------------
#
# Never used by pacte itself: this exists to measure what privacy costs. It answers
# the resolvers' session calls straight from the store with the same round trips as
# the real session's data reads, and skips every consent and visibility check, all
# field gating, all decryption and all audit records.


class _BarePurpose:
    def __init__(self, purpose_id: str) -> None:
        self.id = purpose_id


class _BareSession:
    """BENCHMARK ONLY. Reads the store directly: no consent, no gating, no crypto, no audit."""

    def __init__(self, store: Any, purpose: str, request_id: str, now_us: int,
                 policy: Any) -> None:
        self._store = store
        self._policy = policy
        self.purpose = _BarePurpose(purpose)
        self.request_id = request_id
        self._now_us = now_us

    def flush(self) -> None:
        """Nothing to append: the baseline keeps no audit trail."""

    def read_scope(self) -> Any:
        """The store's read scope, as the Session opens it (on SQLite it does nothing)."""
        from pacte.graph.store import ScopedReads

        store = self._store
        return store.read_scope() if isinstance(store, ScopedReads) else nullcontext()

    def prefetch(self, customer_id: str) -> None:
        """As the Session: a SQLite store has nothing to prefetch."""

    def customers_by_id(self, ids: Sequence[str], *, fields: Any = None) -> dict[str, Any]:
        """The stand-in fields whatever is selected: the baseline decrypts nothing."""
        from pacte.graph.views import CustomerView

        nodes = self._store.get_nodes(list(ids))
        return {i: CustomerView(i, _stand_in(n.props)) for i, n in nodes.items()
                if n.kind == "Customer"}

    def consents(self, customer_id: str) -> list[Any]:
        from pacte.clock import from_micros
        from pacte.graph.consent import consent_states, decisions
        from pacte.graph.views import ConsentView

        # The same answer as the Session's: each purpose as the consent rule decides it.
        states = consent_states(self._store.edges(customer_id, "CONSENTED"), at=self._now_us)
        return [ConsentView(d.purpose, s.status.value, from_micros(s.at),
                            from_micros(s.until) if s.until is not None else None, s.source,
                            s.policy_version, s.purpose)
                for d in decisions(self._policy, states) if (s := d.by) is not None]

    def interactions(self, customer_id: str, *, first: int = 20, after: str | None = None,
                     channel: str | None = None, fields: Any = None) -> Any:
        from pacte.clock import from_micros
        from pacte.graph.store import Cursor, encode_cursor
        from pacte.graph.views import InteractionView, Page

        edges = self._store.edges(customer_id, "HAD", limit=first + 1)
        ids = [e.dst for e in edges]
        nodes = self._store.get_nodes(ids)
        about = self._store.edges_many(ids, "ABOUT")
        views = []
        for e in edges[:first]:
            node = nodes.get(e.dst)
            if node is None:
                continue
            prods = about.get(node.id) or []
            views.append(InteractionView(node.id, customer_id, from_micros(e.at),
                                         _stand_in(node.props),
                                         prods[0].dst if prods else None, (),
                                         encode_cursor(Cursor(e.at, e.id))))
        return Page(views, views[-1].cursor if views else None, len(edges) > first)

    def products_of(self, customer_id: str) -> list[Any]:
        ids = list(dict.fromkeys(e.dst for e in self._store.edges(customer_id, "BOUGHT")))
        nodes = self._store.get_nodes(ids)
        return [_product(nodes[i]) for i in ids if i in nodes]

    def products_by_id(self, product_ids: Sequence[str]) -> dict[str, Any]:
        nodes = self._store.get_nodes(list(product_ids))
        return {i: _product(n) for i, n in nodes.items() if n.kind == "Product"}

    def product(self, product_id: str) -> Any:
        node = self._store.get_nodes([product_id]).get(product_id)
        return _product(node) if node is not None else None


class _BareRuntime:
    """BENCHMARK ONLY. Authenticates like pacte, then hands out `_BareSession`s."""

    def __init__(self, rt: Any) -> None:
        self._rt = rt
        self.policy = rt._backend.policy
        self.metrics = rt.metrics
        self.purpose_ids = rt.purpose_ids

    def authenticate(self, api_key: str | None, *, request_id: str | None = None) -> Any:
        return self._rt.authenticate(api_key, request_id=request_id)

    def session(self, principal: Any, purpose: str | None, *, request_id: str | None = None,
                defer_audit: bool = False) -> _BareSession:
        from pacte.clock import to_micros

        return _BareSession(self._rt._backend.store, purpose or "", request_id or uuid.uuid4().hex,
                            to_micros(self._rt.now()), self._rt._backend.policy)


def _stand_in(props: dict[str, Any]) -> dict[str, Any]:
    """Ciphertext replaced by printable text of about the plaintext's length, so both
    arms send responses of the same size (the baseline stands for a plaintext store)."""
    return {k: v.hex()[: max(len(v) - 40, 4)] if isinstance(v, bytes) else v
            for k, v in props.items()}


def _product(node: Any) -> Any:
    from pacte.graph.views import ProductView

    price = node.props.get("price")
    return ProductView(node.id, str(node.props.get("sku", "")), str(node.props.get("name", "")),
                       str(node.props.get("category", "")),
                       float(price) if isinstance(price, int | float) else None)


# -- the load generator --------------------------------------------------------------


def _request(port: int, key: str, query: str, variables: dict[str, Any] | None) -> bytes:
    body = json.dumps({"query": query, "variables": variables}).encode()
    return (f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nX-Purpose: service\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


@dataclass
class Load:
    requests: int
    seconds: float
    latencies: list[float]
    failures: int

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def _load(port: int, requests: Sequence[bytes], *, connections: int,
                phase: Phase) -> Load:
    start = time.perf_counter() + phase.warmup
    end = start + phase.seconds
    latencies: list[float] = []
    failures = 0
    budget = phase.max_requests

    async def worker(offset: int) -> None:
        nonlocal failures, budget
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            k = offset
            while budget > 0:
                t0 = time.perf_counter()
                if t0 >= end:
                    break
                status, _ = await _exchange(reader, writer, requests[k % len(requests)])
                t1 = time.perf_counter()
                k += connections
                if t0 >= start:
                    budget -= 1
                    latencies.append(t1 - t0)
                    failures += status != 200
        finally:
            writer.close()

    await asyncio.gather(*(worker(i) for i in range(connections)))
    measured = min(time.perf_counter(), end) - start
    return Load(len(latencies), measured, latencies, failures)


@contextmanager
def _pinned(cpu: int) -> Iterator[None]:
    if not hasattr(os, "sched_getaffinity") or (os.cpu_count() or 1) < 2:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _check(port: int, request: bytes) -> None:
    """The query must succeed and return data before it is timed."""
    async def once() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await _exchange(reader, writer, request)
        finally:
            writer.close()

    status, body = asyncio.run(once())
    doc = json.loads(body)
    if status != 200 or "errors" in doc or not doc.get("data"):
        raise RuntimeError(f"benchmark query failed ({status}): {body[:300]!r}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Arm:
    """One kind of request against one server, over several interleaved rounds."""

    name: str
    server: Server
    requests: list[bytes]
    connections: int
    rounds: list[tuple[Load, float]]  # (load, server CPU seconds)

    def round(self, phase: Phase) -> None:
        _check(self.server.port, self.requests[0])
        cpu0 = _cpu_seconds(self.server.pid)
        with _pinned(CLIENT_CPU):
            load = asyncio.run(_load(self.server.port, self.requests,
                                     connections=self.connections, phase=phase))
        cpu = _cpu_seconds(self.server.pid) - cpu0
        if load.failures or not load.requests:
            raise RuntimeError(f"{self.name}: {load.failures} of {load.requests} failed")
        self.rounds.append((load, cpu))

    @property
    def throughput(self) -> float:
        """Best round: noise from other processes only ever lowers it."""
        return max(load.throughput for load, _ in self.rounds)

    @property
    def cpu_per_request(self) -> float:
        """Server CPU seconds per request (best round); what the server can do per core."""
        return min(cpu / load.requests for load, cpu in self.rounds)

    def percentile(self, p: float) -> float:
        best = min((load for load, _ in self.rounds), key=lambda x: x.percentile(0.5))
        return best.percentile(p)


def _measure(data: Path, size: int, phase: Phase) -> list[Record]:
    key, ids = _prepare(data)
    where = f"{size} customers (seed {SEED})"
    with _server(data, "privacy") as on, _server(data, "bare") as off:
        def c360(port: int) -> list[bytes]:
            return [_request(port, key, QUERY_360, {"id": i}) for i in ids]

        arms = [
            Arm("typename", on, [_request(on.port, key, TYPENAME, None)], CONNECTIONS, []),
            Arm("on", on, c360(on.port), CONNECTIONS, []),
            Arm("off", off, c360(off.port), CONNECTIONS, []),
            Arm("latency", on, c360(on.port), 1, []),
        ]
        # Interleaved, so a burst of load from elsewhere hits every arm alike.
        for _ in range(phase.rounds):
            for arm in arms:
                arm.round(phase)
    typename, c_on, c_off, single = arms
    capacity = "requests per server CPU second (1 / server CPU time per request)"
    return [
        figure("api_customer360_throughput", c_on.throughput, unit="req/s", size=size),
        figure("api_customer360_p50_ms", single.percentile(0.50) * 1e3, unit="ms", size=size),
        figure("api_customer360_p99_ms", single.percentile(0.99) * 1e3, unit="ms", size=size),
        figure("api_typename_throughput", typename.throughput, unit="req/s", size=size),
        figure("api_customer360_bare_throughput", c_off.throughput, unit="req/s", size=size),
        ratio("api_customer360_vs_typename", 1 / c_on.cpu_per_request,
              1 / typename.cpu_per_request,
              numerator_label=f"customer-360 {capacity}, {where}",
              denominator_label=f"{{ __typename }} {capacity}, same server and key",
              size=size, target=">= 0.5"),
        ratio("api_customer360_vs_typename_wall", c_on.throughput, typename.throughput,
              numerator_label=f"customer-360 req/s, {CONNECTIONS} connections, {where}",
              denominator_label="{ __typename } req/s, same server and key", size=size),
        ratio("api_privacy_on_vs_off", c_on.cpu_per_request, c_off.cpu_per_request,
              numerator_label=f"server CPU s per customer-360 request with privacy, {where}",
              denominator_label="the same, benchmark-only baseline without consent, gating, "
                                "decryption or audit (same HTTP, schema, round trips)",
              size=size, target="<= 1.3"),
        ratio("api_privacy_on_vs_off_wall", c_off.throughput, c_on.throughput,
              numerator_label="baseline req/s", denominator_label="req/s with privacy",
              size=size),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_api")
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="(internal) the server side of the benchmark")
    s.add_argument("--data", type=Path, required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--mode", choices=("privacy", "bare"), default="privacy")
    s.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.data, port=args.port, mode=args.mode, cpu=args.cpu)
        return 0
    for r in run(args.quick):
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
