"""pacte against @neo4j/graphql: the same customer-360 from the same Neo4j (issue 19).

The peer is the official `@neo4j/graphql` library on Apollo Server and Node, at the
versions pinned in `bench/peer/package.json` and `package-lock.json`, installed with
`npm ci` into `bench/results/peer-node/` (git-ignored; reinstalled only when the lock
changes). It is a benchmark tool, never a dependency of pacte or of its tests. It
serves the world in its natural model: typed labels in plaintext (`Customer`,
`Interaction`, `Product`, `Consent` nodes; `HAD`, `ABOUT`, `BOUGHT`, `CONSENTED`
relationships), with no encryption, consent, retention or audit at request time.

One run:

1. one Neo4j 5.26 server (tests/neo4j_fixture.py) holds both pacte's graph and the
   peer's (different labels, same database);
2. the same generator and seed (2,000 customers) are loaded three times: pacte on
   SQLite, pacte on Neo4j, and the peer's plaintext model. What pacte's `service`
   purpose shows is what the peer is given: interactions and purchases within the
   purpose's retention, one `BOUGHT` per product, and one `Consent` node per purpose
   as pacte's consent rule decides it (the peer only stores the answer); times as
   fixed-width ISO strings (see server.mjs);
3. the three servers listen on 127.0.0.1 (the two pacte servers are
   `python -m bench.bench_api serve`, one process each; the peer is one Node
   process), app servers on CPU 0, the load generator on CPU 1, Neo4j unpinned;
4. for sampled customers, every server must return the same numbers of interactions,
   products and consents, or the run stops;
5. the customer-360 and `{ __typename }` are timed on every server, arms interleaved,
   over several rounds; the best round of each arm counts;
6. meanwhile the CPU each request costs is taken from /proc, for the arm's app server
   and for the Neo4j server (`*_server_cpu_ms`, `*_neo4j_cpu_ms`; the least over the
   rounds): what load from other processes changes least, where req/s on a shared
   machine is noise. `peer_pacte_neo4j_cpu_vs_peer` compares the two sums.

The load generator is wrk (1 thread, 4 keep-alive connections, as the issue measured)
when it is installed (Debian: `apt-get install wrk`), else bench_api's (Python asyncio,
HTTP/1.1 keep-alive, 4 connections), which says so: its own cost per request is about
the same for every arm, but several times wrk's, on a core the servers may want.

Without node/npm (Node 20+), a reachable npm registry, or Java for Neo4j, it prints
why and returns no records. Run alone with `python -m bench.bench_peer [--quick]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.bench_api import (
    CLIENT_CPU,
    QUERY_360,
    TYPENAME,
    Arm,
    Phase,
    Server,
    _check,
    _cpu_seconds,
    _exchange,
    _free_port,
    _request,
    _server,
)
from bench.harness import Record, figure, ratio, stop, wrk_load, wrk_path

__all__ = ["run"]

ROOT = Path(__file__).resolve().parent.parent
PEER_SOURCES = Path(__file__).resolve().parent / "peer"
CACHE = Path(__file__).resolve().parent / "results" / "peer-node"
CUSTOMERS = 2_000
SEED = 11
CONNECTIONS = 4
CHECKED = 100  # customers whose counts must agree on every server
TRIPS_SAMPLE = 50  # requests whose store round trips are counted (pacte on Neo4j)
SAMPLE_IDS = 2_000
SERVER_CPU = 0
NODE_MAJOR = 20  # @neo4j/graphql 7 and Apollo Server 5 need Node 20+
# A JVM for a small graph, with the full JIT (C2): the test suite's C1-only JVM would
# slow both sides' Neo4j alike, but that is not how anyone runs it.
JVM_OPTIONS = ("-Xms1g", "-Xmx1g", "-XX:+UseParallelGC", "-XX:+ExitOnOutOfMemoryError",
               f"-Dpacte.pagecache={2**30}", "-Djava.awt.headless=true")

QUICK = Phase(seconds=3.0, warmup=1.0, max_requests=50_000, rounds=2)
FULL = Phase(seconds=10.0, warmup=2.0, max_requests=500_000, rounds=2)
# Every arm is loaded this long, unmeasured, before the first round, quick or not: the
# peer (V8's and Neo4j's JIT) keeps getting faster for several seconds, so a quick run's
# one-second warm-up measured it cold (313-400 req/s against 618 warm) and flattered
# pacte's ratios.
PRIME_SECONDS = 8.0

PEER_360 = """query Customer360($id: ID!) {
  customers(where: {id: {eq: $id}}) {
    id name email phone address
    consents { purpose status at until source }
    interactionsConnection(first: 20, sort: [{node: {occurredAt: DESC}}]) {
      edges { cursor node { id channel kind occurredAt summary product { id name } } }
      pageInfo { hasNextPage endCursor }
    }
    products { id name category price }
  }
}"""


class Skip(Exception):
    """This machine cannot run the peer: why, in one line."""


def _log(message: str) -> None:
    print(f"  bench_peer: {message}", file=sys.stderr, flush=True)


# -- the peer's installation -------------------------------------------------------------


def _node_tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise Skip("node and npm are needed for the peer (@neo4j/graphql); not on PATH")
    version = subprocess.run([node, "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    try:
        major = int(version.lstrip("v").split(".")[0])
    except ValueError:
        raise Skip(f"cannot tell node's version ({version!r})") from None
    if major < NODE_MAJOR:
        raise Skip(f"node {version} is too old for the peer (needs {NODE_MAJOR}+)")
    return node, npm


def _install(npm: str) -> Path:
    """The cache directory with the pinned packages and server.mjs; `npm ci` if needed."""
    CACHE.mkdir(parents=True, exist_ok=True)
    lock = (PEER_SOURCES / "package-lock.json").read_bytes()
    stamp = CACHE / ".installed"
    digest = hashlib.sha256(lock + (PEER_SOURCES / "package.json").read_bytes()).hexdigest()
    for name in ("package.json", "package-lock.json", "server.mjs"):
        shutil.copyfile(PEER_SOURCES / name, CACHE / name)
    if stamp.exists() and stamp.read_text() == digest and (CACHE / "node_modules").is_dir():
        return CACHE
    _log("installing the peer with npm ci (pinned versions)")
    try:
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                              cwd=CACHE, capture_output=True, text=True, timeout=600,
                              check=False)
    except subprocess.TimeoutExpired:
        raise Skip("npm ci took over 10 minutes (is the npm registry reachable?)") from None
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).split()[-40:])
        raise Skip(f"npm ci failed (registry unreachable?): {tail}")
    stamp.write_text(digest)
    return CACHE


# -- the world, three times ----------------------------------------------------------------


@contextlib.contextmanager
def _neo4j(base: Path) -> Iterator[Any]:
    if str(ROOT) not in sys.path:  # `tests` is a package at the repository root
        sys.path.insert(0, str(ROOT))
    from tests.neo4j_fixture import build_server, missing_tools, start_server

    reason = missing_tools()
    if reason is not None:
        raise Skip(reason)
    build_server()
    server = start_server(base / "neo4j", jvm_options=JVM_OPTIONS)
    _log(f"Neo4j on {server.uri}, ready in {server.started_in:.1f} s")
    try:
        yield server
    finally:
        server.stop()


def _seed_pacte(data: Path, now: datetime, *, store_uri: str | None) -> tuple[str, float]:
    """Seed a pacte data directory; a `service` API key and the seconds seeding took."""
    from pacte.runtime import Pacte

    with Pacte.init(data, store_uri=store_uri, now=lambda: now) as rt:
        t0 = time.perf_counter()
        rt.seed(CUSTOMERS, seed=SEED)
        seconds = time.perf_counter() - t0
        _, key = rt.create_principal(name="bench-peer", role="app", purposes=["service"])
    return key, seconds


_PEER_SCHEMA = (
    "CREATE CONSTRAINT peer_customer IF NOT EXISTS FOR (c:Customer) REQUIRE c.id IS UNIQUE",
    "CREATE CONSTRAINT peer_interaction IF NOT EXISTS "
    "FOR (i:Interaction) REQUIRE i.id IS UNIQUE",
    "CREATE CONSTRAINT peer_product IF NOT EXISTS FOR (p:Product) REQUIRE p.id IS UNIQUE",
)
_PEER_WRITE = """
UNWIND $products AS p MERGE (x:Product {id: p.id})
  SET x.name = p.name, x.category = p.category, x.price = p.price
WITH count(*) AS done
UNWIND $customers AS c CREATE (x:Customer {id: c.id})
  SET x.name = c.name, x.email = c.email, x.phone = c.phone, x.address = c.address
WITH count(*) AS done
UNWIND $interactions AS i MATCH (c:Customer {id: i.customer})
  CREATE (c)-[:HAD]->(x:Interaction {id: i.id, channel: i.channel, kind: i.kind,
                                     occurredAt: i.at, summary: i.summary})
  WITH x, i WHERE i.product IS NOT NULL MATCH (p:Product {id: i.product})
  CREATE (x)-[:ABOUT]->(p)
WITH count(*) AS done
UNWIND $bought AS b MATCH (c:Customer {id: b.customer}) MATCH (p:Product {id: b.product})
  CREATE (c)-[:BOUGHT]->(p)
WITH count(*) AS done
UNWIND $consents AS k MATCH (c:Customer {id: k.customer})
  CREATE (c)-[:CONSENTED]->(:Consent {purpose: k.purpose, status: k.status, at: k.at,
                                      until: k.until, source: k.source})
"""


def _iso(micros: int) -> str:
    """A fixed-width UTC time, so that the peer's sort on text is the sort on time."""
    from pacte.clock import from_micros

    return from_micros(micros).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _peer_world(uri: str, now: datetime) -> list[str]:
    """The same seeded world as the peer's plaintext model; returns the customer ids."""
    import neo4j

    from pacte.clock import to_micros
    from pacte.graph.consent import consent_states, decisions
    from pacte.graph.policy import DEFAULT_POLICY_TOML, Policy
    from pacte.seed import generate

    policy = Policy.parse(DEFAULT_POLICY_TOML)
    service = policy.purposes["service"]
    now_us = to_micros(now)
    horizon = now_us - service.retention_days * 86_400_000_000
    ids: list[str] = []
    with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        for statement in _PEER_SCHEMA:
            driver.execute_query(statement)
        for batch in generate(CUSTOMERS, seed=SEED, now=now):
            nodes = {n.id: n for n in batch.nodes}
            about = {e.src: e.dst for e in batch.edges if e.type == "ABOUT"}
            customers = [{"id": n.id, **{f: n.props.get(f) for f in
                                         ("name", "email", "phone", "address")}}
                         for n in batch.nodes if n.kind == "Customer"]
            ids += [n.id for n in batch.nodes if n.kind == "Customer"]
            interactions = []
            for e in batch.edges:
                if e.type == "HAD" and e.at >= horizon:
                    props = nodes[e.dst].props
                    interactions.append({"customer": e.src, "id": e.dst, "at": _iso(e.at),
                                         "channel": props.get("channel"),
                                         "kind": props.get("kind"),
                                         "summary": props.get("summary"),
                                         "product": about.get(e.dst)})
            bought = [{"customer": c, "product": p} for c, p in dict.fromkeys(
                (e.src, e.dst) for e in batch.edges if e.type == "BOUGHT" and e.at >= horizon)]
            consents = []
            for c in customers:
                edges = [e for e in batch.edges if e.type == "CONSENTED" and e.src == c["id"]]
                for d in decisions(policy, consent_states(edges, at=now_us)):
                    if (s := d.by) is not None:
                        consents.append({"customer": c["id"], "purpose": d.purpose,
                                         "status": s.status.value, "at": _iso(s.at),
                                         "until": _iso(s.until) if s.until else None,
                                         "source": s.source})
            products = [{"id": n.id, **{f: n.props.get(f) for f in ("name", "category",
                                                                      "price")}}
                        for n in batch.nodes if n.kind == "Product"]
            driver.execute_query(_PEER_WRITE, products=products, customers=customers,
                                 interactions=interactions, bought=bought, consents=consents)
    return ids


# -- the servers -----------------------------------------------------------------------------


@contextlib.contextmanager
def _peer_server(node: str, cache: Path, neo4j_uri: str) -> Iterator[Server]:
    port = _free_port()
    cpu = {SERVER_CPU} if (os.cpu_count() or 1) > 1 else None
    proc = subprocess.Popen(
        [node, "server.mjs"], cwd=cache, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PORT": str(port), "NEO4J_URI": neo4j_uri, "NODE_ENV": "production"},
        preexec_fn=(lambda: os.sched_setaffinity(0, cpu)) if cpu else None)
    try:
        stdout = proc.stdout
        assert stdout is not None
        ready: list[bytes] = []
        # readline() cannot time out, so a thread reads and the join below can.
        reader = threading.Thread(target=lambda: ready.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=120)
        if not ready or not ready[0].startswith(b"READY"):
            proc.kill()
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"the peer did not start: {err[-2000:]}")
        yield Server(port, proc.pid)
    finally:
        stop(proc)


def _post(port: int, request: bytes) -> dict[str, Any]:
    async def once() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await _exchange(reader, writer, request)
        finally:
            writer.close()

    status, body = asyncio.run(once())
    doc: dict[str, Any] = json.loads(body)
    if status != 200 or doc.get("errors") or not doc.get("data"):
        raise RuntimeError(f"query failed ({status}): {body[:400]!r}")
    return doc


def _round_trips(port: int) -> int:
    """pacte's count of store round trips so far (/metrics), on a Neo4j store."""
    async def once() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await _exchange(reader, writer, (
                f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").encode())
        finally:
            writer.close()

    status, body = asyncio.run(once())
    for line in body.decode().splitlines():
        if line.startswith("pacte_store_round_trips_total "):
            return int(line.split()[1])
    raise RuntimeError(f"no store round trips in /metrics ({status})")


def _trips_per_request(server: Server, requests: Sequence[bytes]) -> float:
    """Store round trips per request, over `requests` sent one after the other: the
    figure that does not depend on how loaded the machine is."""
    before = _round_trips(server.port)
    for request in requests:
        _post(server.port, request)
    return (_round_trips(server.port) - before) / len(requests)


def _counts(doc: dict[str, Any]) -> tuple[int, int, int]:
    """(interactions, products, consents) in a customer-360 answer of either side."""
    data = doc["data"]
    if "customer" in data:
        c = data["customer"]
        return len(c["interactions"]["edges"]), len(c["products"]), len(c["consents"])
    (c,) = data["customers"]
    return len(c["interactionsConnection"]["edges"]), len(c["products"]), len(c["consents"])


def _check_same(servers: dict[str, tuple[Server, str, str]], ids: Sequence[str]) -> int:
    """Every server returns the same counts for `ids`; the number of items compared."""
    items = 0
    for cid in ids:
        seen = {name: _counts(_post(s.port, _request(s.port, key, query, {"id": cid})))
                for name, (s, key, query) in servers.items()}
        if len(set(seen.values())) != 1:
            raise RuntimeError(f"customer {cid}: (interactions, products, consents) differ "
                               f"between the servers: {seen}")
        items += sum(next(iter(seen.values())))
    return items


# -- the run ------------------------------------------------------------------------------


class _PyArm(Arm):
    """An arm timed by bench_api's load generator; also takes the Neo4j server's CPU.

    CPU per request is what a loaded machine changes least: an arm's app server and the
    Neo4j server it reads, added, are what one request costs the machine."""

    neo4j_pid = 0
    neo4j_cpu: list[float]  # seconds per request, per round

    def round(self, phase: Phase) -> None:
        cpu0 = _cpu_seconds(self.neo4j_pid)
        super().round(phase)  # its warm-up included, as in the app server's own figure
        self._neo4j(cpu0)

    def _neo4j(self, cpu0: float) -> None:
        load = self.rounds[-1][0]
        self.neo4j_cpu.append((_cpu_seconds(self.neo4j_pid) - cpu0) / load.requests)


class _WrkArm(_PyArm):
    """An arm whose rounds are timed by wrk (see `bench.harness.wrk_load`)."""

    def round(self, phase: Phase) -> None:
        _check(self.server.port, self.requests[0])
        wrk_load(self.server.port, self.requests, connections=self.connections,
                 seconds=phase.warmup, warmup=0, cpu=CLIENT_CPU)
        cpu0, neo4j0 = _cpu_seconds(self.server.pid), _cpu_seconds(self.neo4j_pid)
        load = wrk_load(self.server.port, self.requests, connections=self.connections,
                        seconds=phase.seconds, warmup=0, cpu=CLIENT_CPU)
        cpu = _cpu_seconds(self.server.pid) - cpu0
        if load.failures or not load.requests:
            raise RuntimeError(f"{self.name}: {load.failures} of {load.requests} failed")
        self.rounds.append((load, cpu))  # type: ignore[arg-type]  # same interface as Load
        self._neo4j(neo4j0)


def run(quick: bool) -> list[Record]:
    try:
        node, npm = _node_tools()
        cache = _install(npm)
        with tempfile.TemporaryDirectory(prefix="pacte-bench-peer-") as tmp:
            return _measure(Path(tmp), node, cache, QUICK if quick else FULL)
    except Skip as exc:
        _log(f"SKIPPED: {exc}")
        return []


def _measure(base: Path, node: str, cache: Path, phase: Phase) -> list[Record]:
    now = datetime.now(UTC).replace(microsecond=0)
    with _neo4j(base) as neo:
        key_sqlite, seed_sqlite = _seed_pacte(base / "sqlite", now, store_uri=None)
        # bolt://, as the peer connects: one server, so no routing table to consult
        # (neo4j:// costs the driver about 20 us more per query).
        key_neo4j, seed_neo4j = _seed_pacte(base / "neo4j-data", now, store_uri=neo.bolt_uri)
        t0 = time.perf_counter()
        ids = _peer_world(neo.bolt_uri, now)
        seed_peer = time.perf_counter() - t0
        _log(f"seeded {CUSTOMERS} customers: pacte SQLite {seed_sqlite:.1f} s, pacte Neo4j "
             f"{seed_neo4j:.1f} s, peer (plaintext, typed labels) {seed_peer:.1f} s")
        rng = random.Random(SEED)
        sample = rng.sample(ids, min(SAMPLE_IDS, len(ids)))
        with _server(base / "sqlite", "privacy") as sqlite, \
                _server(base / "neo4j-data", "privacy") as pacte_neo4j, \
                _peer_server(node, cache, neo.bolt_uri) as peer:
            servers = {"peer": (peer, "", PEER_360), "sqlite": (sqlite, key_sqlite, QUERY_360),
                       "neo4j": (pacte_neo4j, key_neo4j, QUERY_360)}
            items = _check_same(servers, sample[:CHECKED])
            _log(f"the three servers agree on {CHECKED} customers ({items} items)")
            # Customers not asked for yet (so not in any cache), then the same again.
            fresh = [_request(pacte_neo4j.port, key_neo4j, QUERY_360, {"id": i})
                     for i in sample[CHECKED:CHECKED + TRIPS_SAMPLE]]
            trips = {"360_cold": _trips_per_request(pacte_neo4j, fresh),
                     "360_warm": _trips_per_request(pacte_neo4j, fresh),
                     "typename": _trips_per_request(pacte_neo4j, [_request(
                         pacte_neo4j.port, key_neo4j, TYPENAME, None)] * TRIPS_SAMPLE)}
            _log("pacte on Neo4j, store round trips per request: customer-360 "
                 f"{trips['360_cold']:.2f} (customers seen for the first time), "
                 f"{trips['360_warm']:.2f} (seen before), {{ __typename }} "
                 f"{trips['typename']:.2f}")
            kind: type[_PyArm] = _WrkArm if wrk_path() else _PyArm
            _log("load generator: " + ("wrk (1 thread)" if wrk_path() else
                                       "Python asyncio (wrk is not installed)"))
            arms: dict[str, _PyArm] = {}
            for name, (s, key, query) in servers.items():
                arms[f"{name}_360"] = kind(f"{name} customer-360", s, [
                    _request(s.port, key, query, {"id": i}) for i in sample], CONNECTIONS, [])
                arms[f"{name}_typename"] = kind(f"{name} typename", s, [
                    _request(s.port, key, TYPENAME, None)], CONNECTIONS, [])
            for arm in arms.values():
                arm.neo4j_pid, arm.neo4j_cpu = neo.process.pid, []
                arm.round(replace(phase, seconds=PRIME_SECONDS))
                arm.rounds.clear()
                arm.neo4j_cpu.clear()
            _log(f"every arm primed for {PRIME_SECONDS:.0f} s")
            for r in range(phase.rounds):  # interleaved: a burst elsewhere hits every arm
                for arm in arms.values():
                    arm.round(phase)
                    load, cpu = arm.rounds[-1]
                    _log(f"round {r + 1} {arm.name}: {load.throughput:,.0f} req/s, p50 "
                         f"{load.percentile(0.5) * 1e3:.1f} ms, p99 "
                         f"{load.percentile(0.99) * 1e3:.1f} ms; CPU per request: server "
                         f"{cpu / load.requests * 1e3:.2f} ms, Neo4j "
                         f"{arm.neo4j_cpu[-1] * 1e3:.2f} ms")
    return _records(arms, phase, seed={"sqlite": seed_sqlite, "neo4j": seed_neo4j,
                                       "peer": seed_peer}, trips=trips)


def _records(arms: dict[str, _PyArm], phase: Phase, *, seed: dict[str, float],
             trips: dict[str, float]) -> list[Record]:
    size = CUSTOMERS
    where = (f"{CUSTOMERS} customers, {CONNECTIONS} connections, {phase.seconds:.0f} s x "
             f"{phase.rounds} interleaved rounds (best)")
    records: list[Record] = []
    for name, arm in arms.items():
        best = max((load for load, _ in arm.rounds), key=lambda x: x.throughput)
        records += [
            figure(f"peer_{name}_throughput", best.throughput, unit="req/s", size=size),
            figure(f"peer_{name}_p50_ms", best.percentile(0.5) * 1e3, unit="ms", size=size),
            figure(f"peer_{name}_p99_ms", best.percentile(0.99) * 1e3, unit="ms", size=size),
            # The least CPU per request over the rounds: what load elsewhere only raises.
            figure(f"peer_{name}_server_cpu_ms", arm.cpu_per_request * 1e3, unit="ms",
                   size=size),
            figure(f"peer_{name}_neo4j_cpu_ms", min(arm.neo4j_cpu) * 1e3, unit="ms",
                   size=size),
        ]
    for name, seconds in seed.items():
        records.append(figure(f"peer_seed_{name}_throughput", CUSTOMERS / seconds,
                              unit="customers/s", size=size))

    for name, value in trips.items():
        records.append(figure(f"peer_pacte_neo4j_{name}_round_trips", value,
                              unit="round trips/request", size=size))

    def p99(name: str) -> float:
        best = max((load for load, _ in arms[name].rounds), key=lambda x: x.throughput)
        return best.percentile(0.99)

    peer = arms["peer_360"].throughput

    def machine_cpu(name: str) -> float:
        return arms[name].cpu_per_request + min(arms[name].neo4j_cpu)

    records += [
        ratio("peer_pacte_sqlite_vs_peer", arms["sqlite_360"].throughput, peer,
              numerator_label=f"pacte on SQLite, customer-360 req/s, {where}",
              denominator_label="@neo4j/graphql 7.6.3 on Apollo Server 5, same query shape "
                                "and data, plaintext", size=size, target=">= 1.5"),
        ratio("peer_pacte_sqlite_p99_vs_peer", p99("sqlite_360"), p99("peer_360"),
              numerator_label="pacte on SQLite, customer-360 p99",
              denominator_label="the peer's p99", size=size, target="<= 1.0"),
        ratio("peer_pacte_neo4j_vs_peer", arms["neo4j_360"].throughput, peer,
              numerator_label=f"pacte on Neo4j, customer-360 req/s, {where}",
              denominator_label="the peer on the same Neo4j", size=size, target=">= 1.0"),
        ratio("peer_pacte_neo4j_cpu_vs_peer", machine_cpu("neo4j_360"), machine_cpu("peer_360"),
              numerator_label="pacte on Neo4j, CPU per customer-360: its process and Neo4j's",
              denominator_label="the peer's, its Node process and Neo4j's", size=size),
        ratio("peer_pacte_typename_neo4j_vs_sqlite", arms["neo4j_typename"].throughput,
              arms["sqlite_typename"].throughput,
              numerator_label="pacte on Neo4j, { __typename } req/s",
              denominator_label="pacte on SQLite, { __typename } req/s", size=size,
              target=">= 0.8"),
    ]
    return records


if __name__ == "__main__":
    for record in run("--quick" in sys.argv):
        print(json.dumps(record))
