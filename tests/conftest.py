"""Shared fixtures: stores (SQLite always, a real Neo4j server started by the suite)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.graph.sqlite_store import SQLiteStore
from pacte.graph.store import Store
from tests.helpers import Attached
from tests.neo4j_fixture import neo4j_server, neo4j_store, neo4j_uri  # noqa: F401

# Every backend, for tests that must hold on each. Neo4j test ids contain "neo4j".
BACKENDS = ["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)]
# Every way of serving the data, for the guarantees: a data directory on each backend,
# and a server attached to shared infrastructure (`Pacte.attach`: graph, wrapped keys and
# audit trail in Neo4j, no data directory; tests.helpers.Attached). Its test ids
# contain "attached"; it is marked neo4j, so `-m neo4j` runs it too.
ATTACHED = pytest.param("attached", marks=pytest.mark.neo4j)
MODES = [*BACKENDS, ATTACHED]


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
    """For a fixture parametrised over BACKENDS or MODES: where a data directory keeps
    its graph, None for the SQLite default, else a freshly emptied Neo4j database; for
    "attached", that database as an `Attached` URI (tests.helpers builds worlds and
    opens runtimes on it as attached servers), with a KEK in PACTE_MASTER_KEY for as
    long as the requesting fixture lives, as every server of a deployment has it."""
    if request.param == "sqlite":
        return None
    from tests.neo4j_fixture import clean_database

    uri: str = request.getfixturevalue("neo4j_uri")
    clean_database(uri)
    if request.param != "attached":
        return uri
    env = pytest.MonkeyPatch()  # any fixture scope: undone when the fixture ends
    request.addfinalizer(env.undo)
    env.setenv("PACTE_MASTER_KEY", base64.b64encode(os.urandom(32)).decode("ascii"))
    return Attached(uri)


@pytest.fixture(params=MODES)
def store_uri(request: pytest.FixtureRequest) -> str | None:
    """Each backend in turn, as the store URI a data directory is initialised with, and
    the attached mode (tests.helpers.Attached): build worlds and open runtimes on it
    with tests.helpers (`build_world`, `init_runtime`, `World.another`)."""
    return backend_uri(request)


@pytest.fixture(params=BACKENDS)
def directory_store_uri(request: pytest.FixtureRequest) -> str | None:
    """Each backend, for tests about a data directory itself (migrating it)."""
    return backend_uri(request)
