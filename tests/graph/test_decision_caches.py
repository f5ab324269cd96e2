"""The session's decision caches answer by value: a cached answer is never handed to
another question, and they are bounded (issue #16, part 4)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import pacte.graph.session as session_module
from pacte.errors import PurposeNotGranted
from pacte.graph import grants
from pacte.graph.model import NODE_KINDS, Field, NodeKind
from pacte.graph.policy import Policy
from tests.helpers import World, build_world


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path)


@pytest.fixture
def session(world: World) -> session_module.Session:
    return world.rt.session(world.principals["app"], "marketing.email")


def test_a_kind_that_only_shares_a_name_gets_its_own_answer(
        session: session_module.Session) -> None:
    customer = NODE_KINDS["Customer"]
    cached = session._split(customer)
    # Same name, other fields (as a kind rebuilt by a plugin or a test would be): the
    # catalogue's cached answer must not be handed to it.
    other = NodeKind("Customer", (Field("email", category="user.contact.email"),
                                  Field("mood", category="user.sensor")))
    allowed, withheld = session._split(other)
    assert allowed == ("email",)
    assert [w.field for w in withheld] == ["mood"]
    assert (allowed, withheld) != cached
    # An equal kind (another object, same value) gets the catalogue's answer.
    assert session._split(replace(customer)) == cached


def test_a_grant_is_keyed_by_the_policy_version(world: World) -> None:
    rt, app = world.rt, world.principals["app"]
    before = rt.session(app, "marketing.email")._split(NODE_KINDS["Customer"])
    assert "email" in before[0]
    # The same purpose id under an edited policy (a new version) that withholds email.
    old = rt._backend.policy
    edited = Policy([replace(p, categories=("user.name",)) if p.id == "marketing.email"
                     else p for p in old.purposes.values()], version=old.version + "-edited")
    rt._backend.policy = edited
    try:
        allowed, withheld = rt.session(app, "marketing.email")._split(NODE_KINDS["Customer"])
    finally:
        rt._backend.policy = old
    assert "email" not in allowed
    assert "email" in {w.field for w in withheld}


def test_the_grant_cache_is_bounded(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grants, "_GRANTS", {})
    monkeypatch.setattr(grants, "MAX_GRANTS", 3)
    rt, app = world.rt, world.principals["app"]
    old = rt._backend.policy
    try:
        for n in range(20):
            rt._backend.policy = Policy(old.purposes.values(), version=f"v{n}")
            session = rt.session(app, "service")
            assert len(grants._GRANTS) <= 3
            assert session._split(NODE_KINDS["Customer"]) == grants.split_fields(
                NODE_KINDS["Customer"].fields, session.purpose, app.role)
    finally:
        rt._backend.policy = old


def test_a_grant_admits_only_principals_that_hold_the_purpose(world: World) -> None:
    rt, app = world.rt, world.principals["app"]
    rt.session(app, "marketing.email")  # the grant of (version, app, marketing.email)
    other = replace(app, id="p_other", purposes=("service",))
    with pytest.raises(PurposeNotGranted):
        rt.session(other, "marketing.email")
    with pytest.raises(PurposeNotGranted):
        rt.session(replace(app, revoked=True), "marketing.email")
