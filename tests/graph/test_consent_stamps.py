"""A choice dated in the future must not postpone the choices made after it (review of
issue 13): ingestion refuses it, and the session stamps a new choice after the choices
already in force only."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pacte.clock import to_micros
from pacte.errors import InputError
from pacte.graph.store import Edge, WriteBatch
from tests.helpers import World, build_world


@pytest.fixture
def world(tmp_path: Path, store_uri: str | None) -> World:
    return build_world(tmp_path, store_uri=store_uri)


def _future_grant(world: World, cid: str) -> Edge:
    return Edge("CONSENTED", "k_future0000001", cid, "personalization",
                to_micros(world.clock.now + timedelta(days=365)),
                {"status": "granted", "until": None, "source": "import",
                 "policy_version": world.rt._backend.policy.version})


def test_ingest_refuses_a_consent_choice_dated_in_the_future(world: World) -> None:
    cid = world.customers["granted"]
    with pytest.raises(InputError, match="future"):
        world.rt.operator_session("service").ingest(WriteBatch(edges=[_future_grant(world, cid)]))
    assert not [e for e in world.rt._backend.store.edges(cid, "CONSENTED")
                if e.id == "k_future0000001"]


def test_a_future_choice_already_stored_does_not_postpone_a_withdrawal(world: World) -> None:
    cid = world.customers["granted"]
    app = world.principals["app"]
    # As another server with a fast clock, or an older import, could have left it.
    world.rt._backend.store.write(WriteBatch(edges=[_future_grant(world, cid)]))
    change = world.rt.operator_session("self_service").withdraw_consent(cid, "marketing.email")
    assert change.recorded.at == world.clock.now
    world.clock.advance(seconds=1)
    assert world.rt.session(app, "marketing.email").customer(cid) is None


def test_choices_made_within_one_microsecond_keep_their_order(world: World) -> None:
    """The stamps a burst of choices takes (one microsecond apart, ahead of a clock that
    has not moved) count as choices in force: the third choice is not stamped beside the
    second."""
    cid = world.customers["none"]
    ss = world.rt.operator_session("self_service")
    ss.grant_consent(cid, "marketing", source="web")
    ss.withdraw_consent(cid, "marketing.email")
    last = ss.grant_consent(cid, "marketing.email", source="web")
    stamps = sorted(e.at for e in world.rt._backend.store.edges(cid, "CONSENTED"))
    assert len(set(stamps)) == 3 and to_micros(last.recorded.at) == max(stamps)
    world.clock.advance(seconds=1)
    app = world.principals["app"]
    assert world.rt.session(app, "marketing.email").customer(cid) is not None
