"""Shared fixtures: stores (SQLite always, Neo4j when the test server can run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.graph.sqlite_store import SQLiteStore
from pacte.graph.store import Store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "graph.db", create=True)
    yield store
    store.close()


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest) -> Store:
    """Every backend, for the conformance suite."""
    result: Store = request.getfixturevalue(f"{request.param}_store")
    return result
