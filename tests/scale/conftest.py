"""Fixtures for scale-out: a data directory whose graph and keys live in the test Neo4j,
and the files a server on another machine is given (policy, signing key, the KEK)."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pacte.graph.neo4j_store import Neo4jStore
from tests.helpers import World, build_world
from tests.neo4j_fixture import clean_database


@dataclass
class Shared:
    """A world made on one machine, and what any other server is handed."""

    world: World
    uri: str
    master_key: str  # PACTE_MASTER_KEY, the same on every server
    policy_file: Path
    signing_key_file: Path
    outside: Path  # where the other servers' working directories go

    def env(self) -> dict[str, str]:
        return {**os.environ, "PACTE_MASTER_KEY": self.master_key}


@pytest.fixture
def master_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = base64.b64encode(os.urandom(32)).decode("ascii")
    monkeypatch.setenv("PACTE_MASTER_KEY", key)
    return key


@pytest.fixture
def shared(tmp_path: Path, neo4j_uri: str, master_key: str) -> Iterator[Shared]:
    clean_database(neo4j_uri)
    world = build_world(tmp_path / "first", store_uri=neo4j_uri)
    handed = tmp_path / "handed"
    handed.mkdir()
    policy = shutil.copy(world.rt.data_dir / "policy.toml", handed / "policy.toml")
    signing = shutil.copy(world.rt.data_dir / "signing.key", handed / "signing.key")
    outside = tmp_path / "servers"
    outside.mkdir()
    try:
        yield Shared(world, neo4j_uri, master_key, Path(policy), Path(signing), outside)
    finally:
        world.rt.close()


def rewrite_consistently(store: Neo4jStore, chain: str, n: int) -> None:
    """Entry n of a shared trail's `chain` changed (a use put under another purpose),
    and every hash from it on recomputed, as a careful attacker with write access to
    Neo4j (and not the signing key) would: only a signed checkpoint tells."""
    from pacte.audit.merkle import chained_leaf_hash
    from pacte.audit.shared_trail import genesis

    rows = store.run_read("test", "MATCH (e:PacteAuditEntry {chain: $c}) "
                                  "RETURN e.n, e.body ORDER BY e.n", c=chain)
    link, changed = genesis(chain), []
    for at, body in rows:
        if at == n:
            body = body.replace('"purpose":"service"', '"purpose":"legal"')
        link = chained_leaf_hash(link, body.encode())
        changed.append({"k": f"{chain}/{at}", "b": body, "h": link})

    def work(tx: Any) -> None:
        tx.run("UNWIND $rows AS r MATCH (e:PacteAuditEntry {key: r.k}) "
               "SET e.body = r.b, e.hash = r.h", rows=changed).consume()

    store.run_write("test", work)
