"""Fixtures for scale-out: a data directory whose graph and keys live in the test Neo4j,
and the files a server on another machine is given (policy, signing key, the KEK)."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

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
