"""A seeded data directory shared by the end-to-end analytics tests, copied when changed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.graph.views import CustomerView
from pacte.runtime import Pacte

SEEDED_CUSTOMERS = 200
SEED = 3


@pytest.fixture(scope="session")
def seeded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("analytics") / "data"
    with Pacte.init(path) as rt:
        rt.seed(SEEDED_CUSTOMERS, seed=SEED)
    return path


@pytest.fixture
def rt(seeded_dir: Path, tmp_path: Path) -> Iterator[Pacte]:
    """A private copy of the seeded directory, opened: tests may change it freely."""
    copy = tmp_path / "data"
    shutil.copytree(seeded_dir, copy)
    with Pacte.open(copy) as opened:
        yield opened


def all_customers(rt: Pacte) -> list[CustomerView]:
    """Every customer, decrypted, through the operator's `service` session."""
    out: list[CustomerView] = []
    after: str | None = None
    while True:
        page = rt.operator_session("service").customers(first=100, after=after)
        out.extend(page.items)
        if not page.has_next:
            return out
        after = page.end_cursor


def consenting(rt: Pacte, purpose: str) -> set[str]:
    """The ids of customers with an active consent covering `purpose`."""
    session = rt.operator_session("service")
    ancestors = set(rt._backend.policy.ancestors(purpose))
    return {c.id for c in all_customers(rt)
            if any(s.purpose in ancestors and s.status == "granted"
                   for s in session.consents(c.id))}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty directory for exports and reports, apart from the data directory."""
    path = tmp_path / "out"
    path.mkdir()
    return path
