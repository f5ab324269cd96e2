"""Kill -9 in the middle of a file, run the same command again: the graph equals that of
an uninterrupted run (counts and a digest of every node, edge and index entry)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pacte.runtime import Pacte
from tests.conftest import BACKENDS, backend_uri
from tests.ingest.util import graph_digest

ROOT = Path(__file__).resolve().parents[2]
ROWS = 3000

# Ingests FILE into DATA and, once two batches are committed, says so and waits to be
# killed (stdin never closes), so the kill lands mid-file without any sleep.
CHILD = """
import sys
from pacte.runtime import Pacte
calls = 0
def progress(name, rows):
    global calls
    calls += 1
    if calls == 2:
        print("COMMITTED", rows, flush=True)
        sys.stdin.read()
with Pacte.open(sys.argv[1]) as rt:
    rt.ingest([sys.argv[2]], progress=progress, batch_rows=1000)
"""


def _source(path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(ROWS):
            k = i // 3
            if i % 3 == 0:
                f.write(json.dumps({"type": "customer", "customer_id": f"C{k}",
                                    "name": f"Person {k}", "email": f"p{k}@example.com",
                                    "created_at": 1_767_225_600 + k}) + "\n")
            else:
                f.write(json.dumps({"type": "event", "email": f"P{k}@example.com",
                                    "channel": "web", "kind": "visit",
                                    "occurred_at": 1_767_225_600 + i}) + "\n")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> tuple[str | None, Callable[[], None]]:
    """The store URI (None: SQLite in the data directory) and how to empty it."""
    uri = backend_uri(request)
    if uri is None:
        return None, lambda: None

    def clean() -> None:
        # The graph only: the key vault lives in the database too, and both runs share
        # it (as they share a copied keys.db on SQLite).
        import neo4j

        with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
            driver.execute_query("MATCH (n) WHERE n:PacteNode OR n:PacteIndex OR n:PacteMeta "
                                 "DETACH DELETE n")

    return uri, clean


@pytest.mark.parametrize("checkpoint", ["kept", "lost"])
def test_kill_9_then_resume_equals_an_uninterrupted_run(
        tmp_path: Path, checkpoint: str, backend: tuple[str | None, Callable[[], None]]
) -> None:
    uri, clean = backend
    src = tmp_path / "mixed.jsonl"
    _source(src)
    Pacte.init(tmp_path / "empty", store_uri=uri).close()
    # Both runs start from the same keys, so the same tokens and ids; on Neo4j they use
    # the one database in turn.
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    shutil.copytree(tmp_path / "empty", whole)
    shutil.copytree(tmp_path / "empty", killed)
    cli = [sys.executable, "-m", "pacte", "ingest", str(src), "--data"]
    subprocess.run([*cli, str(whole)], check=True, cwd=ROOT, env=_env(),
                   capture_output=True)
    with Pacte.open(whole) as a:
        expected = graph_digest(a)
        assert a._backend.store.count_nodes()["Customer"] == ROWS // 3
    clean()
    with Pacte.open(killed) as rt:
        rt._backend.sync_purposes()  # as `pacte init` left the emptied database

    child = subprocess.Popen([sys.executable, "-c", CHILD, str(killed), str(src)],
                             cwd=ROOT, env=_env(), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("COMMITTED")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    if checkpoint == "lost":
        # As if the kill fell between a batch's commit and its checkpoint.
        shutil.rmtree(killed / "ingest-progress")
    with Pacte.open(killed) as rt:
        partial = rt._backend.store.count_nodes().get("Interaction", 0)
    assert 0 < partial < ROWS * 2 // 3

    resumed = subprocess.run([*cli, str(killed)], cwd=ROOT, env=_env(), capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "rejected 0" in resumed.stdout
    with Pacte.open(killed) as b:
        assert graph_digest(b) == expected
    assert not list((killed / "ingest-progress").glob("*.json"))
