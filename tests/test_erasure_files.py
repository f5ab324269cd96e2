"""G8 on disk: after an erasure no file of the data directory holds the customer
(issue 14, item 2).

SQL showed no row, but the raw graph.db still held the customer's id, interaction
rows, ciphertext and blind-index tokens: the deleted pages and the write-ahead log kept
them. Each interface erases here (Python, GraphQL, `pacte erase` in another process)
while other customers exist and other connections to the same files are open, and
every byte of every file (WAL and shared memory included) is scanned, before and after
the handles close.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pacte.graph.codec import event_token
from pacte.graph.model import EDGE_KINDS
from pacte.graph.store import Edge
from pacte.runtime import Pacte
from tests.api.conftest import Api, make_world
from tests.helpers import World

ROOT = Path(__file__).resolve().parent.parent


def _raw(data_dir: Path) -> dict[str, bytes]:
    """Every file of the data directory (WAL and shared memory included), by relative name."""
    return {str(p.relative_to(data_dir)): p.read_bytes()
            for p in sorted(data_dir.rglob("*")) if p.is_file()}


def _traces(world: World, cid: str) -> dict[str, bytes]:
    """Byte strings that only this customer's data contains, named for the report."""
    rt = world.rt
    traces: dict[str, bytes] = {"customer id": cid.encode()}
    owned = rt._backend.store.get_nodes(rt._backend.store.owned_by(cid))
    assert any(n.kind == "Interaction" for n in owned.values())
    for node in owned.values():
        traces[f"node id {node.id}"] = node.id.encode()
        for name, value in node.props.items():
            if isinstance(value, bytes):  # ciphertext, as the store encodes it
                traces[f"{node.kind}.{name} ciphertext"] = base64.b64encode(value)[:40]
            if name == "event_id" and isinstance(value, str):
                traces[f"event token {value}"] = event_token(value)
    edges: list[Edge] = []
    for t in EDGE_KINDS:
        edges += rt._backend.store.edges(cid, t) + rt._backend.store.edges(cid, t, direction="in")
    for e in edges:
        if len(e.id) >= 8:  # the world's hand-made referrals ("r1") are too short to scan
            traces[f"edge id {e.id}"] = e.id.encode()
    for batch in rt._backend.store.iter_index():
        for entry in batch:
            if entry.node_id == cid:  # a blind-index row: name, token, node id
                traces[f"{entry.name} token"] = entry.token + cid.encode()
    with sqlite3.connect(rt.data_dir / "keys.db") as keys:
        for n, (wrapped,) in enumerate(keys.execute(
                "SELECT wrapped FROM deks WHERE customer_id = ?", (cid,))):
            traces[f"wrapped key {n}"] = bytes(wrapped)
    return traces


def _left(data_dir: Path, traces: dict[str, bytes]) -> dict[str, list[str]]:
    """Each trace still found on disk, with the files that hold it (for the report)."""
    raw = _raw(data_dir)
    left = {name: [f for f, data in raw.items() if needle in data]
            for name, needle in sorted(traces.items())}
    return {name: files for name, files in left.items() if files}


def _erase_python(world: World, cid: str) -> None:
    world.rt.operator_session("self_service").erase(cid)


def _erase_graphql(world: World, cid: str) -> None:
    from pacte.api import create_app

    api = Api(create_app(world.rt))
    try:
        data = api.data('mutation($c: ID!) { eraseCustomer(customerId: $c) { signature } }',
                        key=world.keys["app"], purpose="self_service", variables={"c": cid})
    finally:
        api.close()
    assert data["eraseCustomer"]["signature"]


def _erase_cli(world: World, cid: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "pacte", "erase", cid, "--yes", "--data",
                           str(world.rt.data_dir)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("erase", [_erase_python, _erase_graphql, _erase_cli],
                         ids=["python", "graphql", "cli"])
def test_an_erased_customer_is_in_no_file(tmp_path: Path,
                                          erase: Callable[[World, str], None]) -> None:
    world = make_world(tmp_path)
    cid = world.customers["granted"]
    service = world.rt.operator_session("service")
    for n in range(3):  # more of their data, so that it spans pages
        service.record_interaction(customer_id=cid, channel="web", kind="support",
                                   event_id=f"more-{n}", summary="x" * 2000)
    # Another handle on the same files (a second server process), open and used.
    other = Pacte.open(world.rt.data_dir, now=world.clock)
    assert other.operator_session("service").customer(cid) is not None
    survivor = world.customers["none"]
    traces = _traces(world, cid)
    assert len(traces) > 15 and sorted(_left(world.rt.data_dir, traces)) == sorted(traces)
    try:
        erase(world, cid)
        # While every handle is still open, as on a running server...
        assert _left(world.rt.data_dir, traces) == {}
        # ...and the others' data is all there.
        assert other.operator_session("service").customer(survivor) is not None
        assert world.rt.operator_session("service").customer(cid) is None
    finally:
        other.close()
        world.rt.close()
    assert _left(world.rt.data_dir, traces) == {}


def test_an_erased_customer_leaves_no_record_in_any_store(tmp_path: Path,
                                                          store_uri: str | None) -> None:
    """What a client can check on every store (Neo4j's files are the server's: see
    docs/erasure.md): no node, edge or index entry of theirs is left."""
    from tests.helpers import build_world

    world = build_world(tmp_path, store_uri=store_uri)
    rt, cid = world.rt, world.customers["granted"]
    owned = set(rt._backend.store.owned_by(cid))
    events = {event_token(f"ev-{n}") for n in range(6)}
    try:
        rt.operator_session("self_service").erase(cid)
        gone = owned | {cid}
        nodes = [n for batch in rt._backend.store.iter_nodes() for n in batch]
        assert not [n for n in nodes if n.id in gone or n.owner == cid]
        edges = [e for batch in rt._backend.store.iter_edges() for e in batch]
        assert not [e for e in edges if e.src in gone or e.dst in gone]
        index = [i for batch in rt._backend.store.iter_index() for i in batch]
        assert not [i for i in index if i.node_id in gone]
        # The other customers' event tokens are all still there; theirs is not.
        assert len(events & {i.token for i in index}) == len(events) - 1
        assert len(nodes) > 10
    finally:
        rt.close()
