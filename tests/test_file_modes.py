"""Every file of a data directory that holds data or keys is readable by its owner alone."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.runtime import Pacte

PUBLIC = {"policy.toml"}  # the policy is not secret: auditors and customers may read it


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default, under which SQLite makes 0644 files
    yield
    os.umask(old)


def _loose(data: Path) -> dict[str, str]:
    return {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in data.iterdir()
            if f.is_file() and f.name not in PUBLIC and f.stat().st_mode & 0o077}


@pytest.mark.usefixtures("umask_022")
def test_databases_are_created_0600(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Pacte.init(data) as rt:
        rt.seed(3, seed=1)
        # While open, with their -wal and -shm files present.
        assert any(f.name.endswith("-wal") for f in data.iterdir())
        assert _loose(data) == {}
    assert _loose(data) == {}


@pytest.mark.usefixtures("umask_022")
def test_an_older_directory_is_tightened_on_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    Pacte.init(data).close()
    for name in ("graph.db", "audit.db"):
        (data / name).chmod(0o644)
    Pacte.open(data).close()
    assert _loose(data) == {}
