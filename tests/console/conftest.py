"""A world on SQLite and a client of its app, for the console's page tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.api import create_app
from tests.api.conftest import Api
from tests.helpers import World, build_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = build_world(tmp_path)
    yield w
    w.rt.close()


@pytest.fixture
def api(world: World) -> Iterator[Api]:
    client = Api(create_app(world.rt))
    yield client
    client.close()
