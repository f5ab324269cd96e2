"""The consent rule through the session, on every store: the latest explicit choice on
the purpose or on any of its ancestors decides (pacte.graph.consent.decide).

The role x purpose x state matrix (tests/graph/test_session.py, states in
tests.helpers) covers visibility for each sequence; here are the answers of the
writes, `consents(at=...)`, `explain`, the paged lists and the single rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path

import pytest

import pacte.graph.session as session_module
from pacte.errors import NotFound
from pacte.graph.consent import ConsentState, Decision
from pacte.graph.views import ConsentView
from tests.helpers import World, build_world

MARKETING = ("marketing", "marketing.email", "marketing.sms")


def _effective(views: tuple[ConsentView, ...] | list[ConsentView]
               ) -> dict[str, tuple[str, str | None]]:
    return {v.purpose: (v.status, v.decided_by) for v in views}


def _visible_under(world: World, cid: str) -> set[str]:
    app = world.principals["app"]
    return {p for p in MARKETING if world.rt.session(app, p).customer(cid) is not None}


@pytest.fixture
def world(tmp_path: Path, store_uri: str | None) -> Iterator[World]:
    w = build_world(tmp_path, store_uri=store_uri)
    yield w
    w.rt.close()


def test_a_change_answers_with_every_purpose_it_touched(world: World) -> None:
    cid = world.customers["none"]
    ss = world.rt.session(world.principals["app"], "self_service")
    granted = ss.grant_consent(cid, "marketing", source="web")
    assert (granted.recorded.purpose, granted.recorded.status) == ("marketing", "granted")
    assert _effective(granted.effective) == {p: ("granted", "marketing") for p in MARKETING}
    # In the same microsecond: the later-recorded choice is stamped after the first one.
    withdrawn = ss.withdraw_consent(cid, "marketing.email")
    assert withdrawn.recorded.at > granted.recorded.at
    assert _effective(withdrawn.effective) == {
        "marketing.email": ("withdrawn", "marketing.email")}
    world.clock.advance(seconds=1)
    assert _visible_under(world, cid) == {"marketing", "marketing.sms"}
    again = world.rt.session(world.principals["app"], "self_service").withdraw_consent(
        cid, "marketing")
    assert _effective(again.effective) == {p: ("withdrawn", "marketing") for p in MARKETING}
    world.clock.advance(seconds=1)
    assert _visible_under(world, cid) == set()


def test_consents_and_consents_at_follow_the_rule(world: World) -> None:
    cid = world.customers["none"]
    app = world.principals["app"]
    start = world.clock.now
    world.rt.session(app, "self_service").grant_consent(cid, "marketing", source="web")
    world.clock.advance(days=1)
    world.rt.session(app, "self_service").withdraw_consent(cid, "marketing.email")
    world.clock.advance(days=1)
    world.rt.session(app, "self_service").withdraw_consent(cid, "marketing")
    world.clock.advance(days=1)
    world.rt.session(app, "self_service").grant_consent(cid, "marketing.email", source="app")
    world.clock.advance(seconds=1)
    ss = world.rt.session(app, "self_service")

    def at(days: float) -> dict[str, tuple[str, str | None]]:
        return _effective(ss.consents(cid, at=start + timedelta(days=days, seconds=1)))

    assert _effective(ss.consents(cid, at=start - timedelta(seconds=1))) == {}
    assert at(0) == {p: ("granted", "marketing") for p in MARKETING}
    assert at(1) == {"marketing": ("granted", "marketing"),
                     "marketing.email": ("withdrawn", "marketing.email"),
                     "marketing.sms": ("granted", "marketing")}
    assert at(2) == {p: ("withdrawn", "marketing") for p in MARKETING}
    now = _effective(ss.consents(cid))
    assert now == at(3) == {"marketing": ("withdrawn", "marketing"),
                            "marketing.email": ("granted", "marketing.email"),
                            "marketing.sms": ("withdrawn", "marketing")}
    assert _visible_under(world, cid) == {"marketing.email"}
    # The history keeps every choice as it was made, newest first.
    history = ss.consent_history(cid)
    assert [(c.purpose, c.status) for c in history] == [
        ("marketing.email", "granted"), ("marketing", "withdrawn"),
        ("marketing.email", "withdrawn"), ("marketing", "granted")]


def test_an_expiring_parent_grant_withdraws_the_children_at_its_date(world: World) -> None:
    cid = world.customers["none"]
    app = world.principals["app"]
    ss = world.rt.session(app, "self_service")
    ss.grant_consent(cid, "marketing.email", source="web")
    world.clock.advance(seconds=1)
    ends = world.clock.now + timedelta(days=1)
    ss.grant_consent(cid, "marketing", source="web", until=ends)
    world.clock.advance(hours=1)
    assert _visible_under(world, cid) == set(MARKETING)
    world.clock.now = ends
    assert _visible_under(world, cid) == set()
    consents = world.rt.session(app, "self_service").consents(cid)
    assert {(c.purpose, c.status, c.decided_by, c.until) for c in consents} == {
        (p, "expired", "marketing", ends) for p in MARKETING}


def test_explain_names_the_choice_that_decided(world: World) -> None:
    app = world.principals["app"]
    parent = world.customers["parent_then_child_withdrawn"]
    ex = world.rt.session(app, "marketing.sms").explain(customer_id=parent)
    assert ex.subject_visible and ex.consent is not None
    assert (ex.consent.purpose, ex.consent.status, ex.consent.decided_by) == (
        "marketing.sms", "granted", "marketing")
    history = world.rt.session(app, "self_service").consent_history(parent)
    assert ex.consent.at == history[-1].at  # the time of the grant of `marketing`
    child = world.rt.session(app, "marketing.email").explain(
        customer_id=world.customers["parent_withdrawn_then_child"])
    assert child.consent is not None and child.consent.decided_by == "marketing.email"
    # Of a hidden customer nothing is said, as of an absent one (G3).
    hidden = world.rt.session(app, "marketing.email").explain(customer_id=parent)
    assert hidden.subject_visible is False and hidden.consent is None
    # Without consent to decide, there is no deciding choice.
    service = world.rt.session(app, "service").explain(customer_id=parent)
    assert service.subject_visible and service.consent is None


def test_a_withdrawn_child_is_not_listed_under_a_granted_parent(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Candidates come from the consents to the purpose and to its parents; each one is
    # then checked with the whole rule, in small rounds as in large.
    app = world.principals["app"]
    world.rt.seed(30, seed=5)
    everyone = [c.id for c in world.rt.operator_session("service").customers(first=100).items]
    for n, cid in enumerate(everyone):
        ss = world.rt.session(app, "self_service")
        ss.grant_consent(cid, "marketing", source="test")
        if n % 3 == 0:
            ss.withdraw_consent(cid, "marketing.email")
        elif n % 3 == 1:
            ss.grant_consent(cid, "marketing.email", source="test")
            ss.withdraw_consent(cid, "marketing")
    world.clock.advance(seconds=1)
    expected = sorted(c for n, c in enumerate(everyone) if n % 3 == 2)
    for page, bulk in ((1, 4), (64, 5000)):
        monkeypatch.setattr(session_module, "_CONSENT_PAGE", page)
        monkeypatch.setattr(session_module, "_CONSENT_BULK", bulk)
        listed: list[str] = []
        after = None
        while True:
            got = world.rt.session(app, "marketing.email").customers(first=4, after=after)
            listed += [v.id for v in got.items]
            if not got.has_next:
                break
            after = got.end_cursor
        assert listed == expected
        assert world.rt.session(app, "marketing.email").count_customers() == len(expected)
    sms = {v.id for v in world.rt.session(app, "marketing.sms").customers(first=100).items}
    assert sms == {c for n, c in enumerate(everyone) if n % 3 != 1}


def test_one_rule_decides_for_every_reader(world: World,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Lists, counts, single reads, recommendations and analyst projections all ask
    `decide`: replaced by a rule that refuses everyone, none of them sees anybody."""
    app, analyst = world.principals["app"], world.principals["analyst"]
    ss = world.rt.session(app, "self_service")
    for cid in world.customers.values():
        ss.grant_consent(cid, "analytics", source="test")
        ss.grant_consent(cid, "personalization", source="test")
    world.clock.advance(seconds=1)
    target = world.customers["granted"]
    everyone = set(world.customers.values())

    def projected() -> set[str]:
        session = world.rt.session(analyst, "analytics")
        return {p.id for batch in session.project() for p in batch}

    assert projected() == everyone
    assert world.rt.session(app, "personalization").count_customers() == len(everyone)
    asked: list[str] = []

    def rule(*, refuse: bool) -> Callable[[object, str, Mapping[str, ConsentState]], Decision]:
        def spy(policy: object, purpose: str, states: Mapping[str, ConsentState]) -> Decision:
            asked.append(purpose)
            return Decision(purpose, None if refuse else states.get("personalization"))
        return spy

    monkeypatch.setattr(session_module, "decide", rule(refuse=True))
    assert projected() == set()
    personal = world.rt.session(app, "personalization")
    assert personal.count_customers() == 0
    assert personal.customers().items == []
    assert personal.customer(target) is None
    with pytest.raises(NotFound):
        personal.recommendations(target)
    assert world.rt.session(app, "marketing.email").buyers(world.product) == []
    assert {"analytics", "personalization", "marketing.email"} <= set(asked)
    # Recommendations ask it for the customer and for each co-buyer (all bought the lamp).
    monkeypatch.setattr(session_module, "decide", rule(refuse=False))
    asked.clear()
    assert world.rt.session(app, "personalization").recommendations(target) == []
    assert asked == ["personalization"] * len(everyone)


def test_imported_choices_at_an_equal_time_resolve_to_the_withdrawal(world: World) -> None:
    # Histories written otherwise than through the session (imports, seeding) may hold
    # choices at the very same microsecond; whatever order a store returns them in, the
    # withdrawal wins, across purposes and on one purpose.
    from pacte.clock import to_micros
    from pacte.graph.store import Edge, WriteBatch

    t = to_micros(world.clock.now) - 1
    a, b, c = (world.customers[s] for s in ("none", "withdrawn", "expired"))

    def choice(eid: str, cid: str, purpose: str, status: str) -> Edge:
        return Edge("CONSENTED", eid, cid, purpose, t, {"status": status, "source": "import"})

    world.rt.operator_session("service").ingest(WriteBatch(edges=[
        choice("k_tie_1", a, "marketing", "granted"),
        choice("k_tie_2", a, "marketing.email", "withdrawn"),
        choice("k_tie_3", b, "marketing", "withdrawn"),
        choice("k_tie_4", b, "marketing.email", "granted"),
        choice("k_tie_z", c, "marketing", "granted"),
        choice("k_tie_a", c, "marketing", "withdrawn"),
    ]))
    assert _visible_under(world, a) == {"marketing", "marketing.sms"}
    assert _visible_under(world, b) == set()
    assert _visible_under(world, c) == set()
    consents = world.rt.session(world.principals["app"], "self_service").consents(b)
    assert _effective(consents) == {p: ("withdrawn", "marketing") for p in MARKETING}
