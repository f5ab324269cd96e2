"""How many statements the customer-360 features cost on SQLite (one read each where
the store can join; none for what the request has read already). Not timed: counted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pacte.graph.session import Session
from tests.helpers import World, build_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = build_world(tmp_path)
    yield w
    w.rt.close()


def _statements(session: Session, read: Callable[[], Any]) -> tuple[Any, int]:
    """What `read` returns, and how many statements it ran on the graph store (not
    counting the read cache's check of the file's version, which reads no row)."""
    db = session._b.store._db  # type: ignore[attr-defined]
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    try:
        return read(), len([s for s in statements if s != "PRAGMA data_version"])
    finally:
        db.set_trace_callback(None)


def test_a_page_of_interactions_and_the_purchases_are_one_read_each(world: World) -> None:
    """A customer's interactions page with the products they are about is one
    statement, and so are the products the customer bought (they were three and two)."""
    cid = world.customers["granted"]
    session = world.rt.session(world.principals["app"], "service")
    assert session.customer(cid) is not None  # visibility settled: read once per request
    page, n_page = _statements(session, lambda: session.interactions(cid, first=20))
    bought, n_bought = _statements(session, lambda: session.products_of(cid))
    assert [v.product_id for v in page.items] == [world.product]
    assert [p.id for p in bought] == [world.product]
    assert (n_page, n_bought) == (1, 1)


def test_consents_under_a_consent_purpose_reuse_what_visibility_read(world: World) -> None:
    cid = world.customers["granted"]
    session = world.rt.session(world.principals["app"], "marketing.email")
    assert session.customer(cid) is not None  # visible: its consents were read for that
    consents, n = _statements(session, lambda: session.consents(cid))
    assert [(c.purpose, c.status) for c in consents] == [("marketing.email", "granted")]
    assert n == 0
    # The same answer as a fresh request reading them itself.
    fresh = world.rt.session(world.principals["app"], "service")
    assert fresh.consents(cid) == consents
