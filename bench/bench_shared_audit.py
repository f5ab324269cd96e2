"""Audit appends on the shared trail in Neo4j (pacte.audit.shared_trail): one writer
alone, then three at once, each a process of its own (as three servers are).

The bar of issue #18: the aggregate appends/s of 3 concurrent writers >= 2x one
writer's. Each writer appends one request's record per transaction, as a server's
request flush does, for the same wall-clock window after a common start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import Record, figure, ratio

ROOT = Path(__file__).resolve().parents[1]

_WRITER = r"""
import sys, time
from pacte.audit.shared_trail import SharedTrail
from pacte.crypto import SigningKey
from pacte.graph.neo4j_store import Neo4jStore

store = Neo4jStore(sys.argv[1])
trail = SharedTrail.open(store, signer=SigningKey.generate())
seconds = float(sys.argv[2])
record = {"action": "customer.read", "principal": "pr_0123456789ab", "principal_name": "shop",
          "role": "app", "purpose": "service", "legal_basis": "contract",
          "subjects": ["s_0123456789abcdef"], "fields": ["name", "email", "phone"],
          "outcome": "ok", "policy_version": "0" * 16, "request_id": "r" * 32}
for _ in range(20):
    trail.append(record)  # warm up: connections, query plans
print("READY", flush=True)
sys.stdin.readline()
n, start = 0, time.perf_counter()
while time.perf_counter() - start < seconds:
    trail.append(record)
    n += 1
print(n / (time.perf_counter() - start), flush=True)
trail.close()
store.close()
"""


def _writers(uri: str, count: int, seconds: float) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, uri, str(seconds)], cwd=ROOT,
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for _ in range(count)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "READY"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("GO\n")
        p.stdin.flush()
    rates = []
    for p in procs:
        assert p.stdout is not None
        rates.append(float(p.stdout.readline()))
        p.wait()
    return rates


def run(quick: bool) -> list[Record]:
    from tests.neo4j_fixture import build_server, start_server

    seconds = 3.0 if quick else 8.0
    build_server()
    with tempfile.TemporaryDirectory(prefix="pacte-bench-shared-audit-") as tmp:
        server = start_server(Path(tmp))
        try:
            one = _writers(server.uri, 1, seconds)[0]
            three = _writers(server.uri, 3, seconds)
        finally:
            server.stop()
    return [
        figure("shared_audit_append_1_writer", one, unit="appends/s"),
        figure("shared_audit_append_3_writers", sum(three), unit="appends/s"),
        ratio("shared_audit_3_writers_over_1", sum(three), one,
              numerator_label="3 concurrent writers, appends/s (sum)",
              denominator_label="1 writer, appends/s", target=">= 2"),
    ]


if __name__ == "__main__":
    for record in run("--quick" in sys.argv):
        print(record)
