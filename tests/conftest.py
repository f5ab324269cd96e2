"""Shared fixtures: stores (SQLite always, a real Neo4j server started by the suite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.graph.sqlite_store import SQLiteStore
from pacte.graph.store import Store
from tests.neo4j_fixture import neo4j_server, neo4j_store, neo4j_uri  # noqa: F401

# Every backend, for tests that must hold on each. Neo4j test ids contain "neo4j".
BACKENDS = ["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "graph.db", create=True)
    yield store
    store.close()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> Store:
    """Every backend, for the conformance suite."""
    result: Store = request.getfixturevalue(f"{request.param}_store")
    return result


def backend_uri(request: pytest.FixtureRequest) -> str | None:
    """For a fixture parametrised over BACKENDS: where a data directory keeps its graph,
    None for the SQLite default, else a freshly emptied Neo4j database."""
    if request.param == "sqlite":
        return None
    from tests.neo4j_fixture import clean_database

    uri: str = request.getfixturevalue("neo4j_uri")
    clean_database(uri)
    return uri


@pytest.fixture(params=BACKENDS)
def store_uri(request: pytest.FixtureRequest) -> str | None:
    """Each backend in turn, as the store URI a data directory is initialised with."""
    return backend_uri(request)
