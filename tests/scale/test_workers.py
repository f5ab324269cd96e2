"""Part 4 of scale-out: `pacte serve --workers N`, N processes on one machine sharing
one port, on SQLite (one data directory) and on Neo4j (attached). Whatever worker a
request reaches, an erasure or a revocation made through any holds; each worker
closes its runtime when stopped, and the trail they wrote together verifies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pacte.runtime import Pacte
from tests.helpers import build_world
from tests.scale.conftest import Shared
from tests.scale.servers import Server, start
from tests.scale.test_three_servers import ERASE, READ, UPSERT

REQUESTS = 24  # enough that, spread over the workers, each gets some


def _everywhere(server: Server, key: str, purpose: str, cid: str) -> list[object]:
    """What REQUESTS requests see (spread by the OS over the workers)."""
    out = []
    for _ in range(REQUESTS):
        r = server.graphql(key, purpose, READ, {"id": cid})
        out.append(r.status_code if r.status_code != 200 else r.json()["data"]["customer"])
    return out


def test_two_workers_on_sqlite(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    data = world.rt.data_dir
    _, key = world.rt.create_principal(name="shop", role="app",
                                       purposes=["service", "self_service"])
    world.rt.close()
    server = start(tmp_path / "cwd", env=os.environ, args=["--workers", "2"], data=data)
    try:
        server.data(key, "service", READ, {"id": world.customers["none"]})
        assert len(server.workers()) == 2
        cid = server.data(key, "service", UPSERT, {"i": {
            "name": "Wor Kers", "email": "wor.kers@example.com"}})["upsertCustomer"]["id"]
        assert all(isinstance(v, dict) and v["name"] == "Wor Kers"
                   for v in _everywhere(server, key, "service", cid))
        server.data(key, "self_service", ERASE, {"id": cid})
        assert _everywhere(server, key, "service", cid) == [None] * REQUESTS
        with Pacte.open(data) as rt:
            principal = rt._backend.principals.authenticate(key)
            rt.revoke_principal(principal.id)
        assert _everywhere(server, key, "service", world.customers["none"]) == [401] * REQUESTS
    finally:
        server.stop()
    assert server.process.returncode == 0, "".join(server.log)
    with Pacte.open(data) as rt:
        report = rt.operator_session("legal").audit_verification()
        assert report.ok, report.lines()
        # Each worker signed its final checkpoint on the way out: the whole trail is
        # covered (the open above appended nothing yet).
        checkpoint = rt._backend.audit.latest_checkpoint()
        assert checkpoint is not None and checkpoint.size >= rt._backend.audit.size() - 1


@pytest.mark.neo4j
def test_two_workers_attached_to_neo4j(shared: Shared) -> None:
    _, key = shared.world.rt.create_principal(name="shop", role="app",
                                              purposes=["service", "self_service"])
    args = ["--store", shared.uri, "--policy", str(shared.policy_file),
            "--signing-key", str(shared.signing_key_file), "--workers", "2"]
    server = start(shared.outside / "workers", env=shared.env(), args=args)
    try:
        old = shared.world.customers["granted"]
        assert all(isinstance(v, dict) for v in _everywhere(server, key, "service", old))
        assert len(server.workers()) == 2
        server.data(key, "self_service", ERASE, {"id": old})
        assert _everywhere(server, key, "service", old) == [None] * REQUESTS
        # Through the first machine, as another server.
        assert shared.world.rt.operator_session("service").customer(old) is None
    finally:
        server.stop()
    assert server.process.returncode == 0, "".join(server.log)
