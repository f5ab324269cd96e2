from __future__ import annotations

import pytest

from pacte.graph.consent import consent_states, decide, decisions
from pacte.graph.model import ConsentStatus
from pacte.graph.policy import Policy
from pacte.graph.store import Edge

POLICY = Policy.default()
CHILDREN = ("marketing", "marketing.email", "marketing.sms")


def _consent(eid: str, purpose: str, at: int, status: str, until: int | None = None) -> Edge:
    return Edge("CONSENTED", eid, "c1", purpose, at, {"status": status, "until": until,
                                                      "source": "web"})


def _granted(edges: list[Edge], *, at: int) -> set[str]:
    """The marketing purposes the rule lets through at `at`."""
    states = consent_states(edges, at=at)
    return {p for p in CHILDREN if decide(POLICY, p, states).granted}


def test_no_edge_means_no_consent() -> None:
    assert consent_states([], at=100) == {}
    decision = decide(POLICY, "marketing", {})
    assert not decision.granted and decision.by is None


def test_latest_state_wins_and_history_answers_the_past() -> None:
    edges = [_consent("k1", "marketing", 10, "granted"),
             _consent("k2", "marketing", 20, "withdrawn")]
    assert consent_states(edges, at=15)["marketing"].status is ConsentStatus.GRANTED
    assert consent_states(edges, at=20)["marketing"].status is ConsentStatus.WITHDRAWN
    assert consent_states(edges, at=9) == {}


def test_expiry_is_exact_at_the_boundary() -> None:
    edges = [_consent("k1", "analytics", 10, "granted", until=50)]
    assert consent_states(edges, at=49)["analytics"].active
    state = consent_states(edges, at=50)["analytics"]
    assert state.status is ConsentStatus.EXPIRED and not state.active
    assert state.since == 50  # an expiry is a withdrawal at its expiry time


def test_parent_consent_covers_children_but_not_the_reverse() -> None:
    assert _granted([_consent("k1", "marketing", 1, "granted")], at=5) == set(CHILDREN)
    assert _granted([_consent("k1", "marketing.email", 1, "granted")], at=5) == {
        "marketing.email"}


def test_a_later_withdrawal_of_the_child_beats_an_older_grant_of_the_parent() -> None:
    edges = [_consent("k1", "marketing", 1, "granted"),
             _consent("k2", "marketing.email", 2, "withdrawn")]
    assert _granted(edges, at=5) == {"marketing", "marketing.sms"}
    decision = decide(POLICY, "marketing.email", consent_states(edges, at=5))
    assert decision.by is not None and decision.by.purpose == "marketing.email"
    assert decision.by.status is ConsentStatus.WITHDRAWN and decision.by.at == 2
    # The sms child is still decided by the parent's grant.
    sms = decide(POLICY, "marketing.sms", consent_states(edges, at=5))
    assert sms.by is not None and sms.by.purpose == "marketing" and sms.by.at == 1


def test_a_later_withdrawal_of_the_parent_beats_an_older_grant_of_the_child() -> None:
    edges = [_consent("k1", "marketing.email", 1, "granted"),
             _consent("k2", "marketing", 2, "withdrawn")]
    assert _granted(edges, at=5) == set()


def test_a_later_grant_of_the_child_beats_an_older_withdrawal_of_the_parent() -> None:
    edges = [_consent("k1", "marketing", 1, "withdrawn"),
             _consent("k2", "marketing.email", 2, "granted")]
    assert _granted(edges, at=5) == {"marketing.email"}


def test_the_expiry_of_a_parent_grant_withdraws_the_children_at_its_date() -> None:
    # The child was granted before the parent's grant expired: the expiry is later.
    edges = [_consent("k1", "marketing.email", 1, "granted"),
             _consent("k2", "marketing", 2, "granted", until=10)]
    assert _granted(edges, at=9) == set(CHILDREN)
    assert _granted(edges, at=10) == set()
    decision = decide(POLICY, "marketing.email", consent_states(edges, at=10))
    assert decision.by is not None and decision.by.status is ConsentStatus.EXPIRED
    assert decision.by.since == 10
    # A grant of the child after the expiry is the latest choice again.
    later = [*edges, _consent("k3", "marketing.email", 11, "granted")]
    assert _granted(later, at=12) == {"marketing.email"}
    # And a child's expiry does not touch the parent.
    child_expires = [_consent("k1", "marketing", 1, "granted"),
                     _consent("k2", "marketing.email", 2, "granted", until=10)]
    assert _granted(child_expires, at=10) == {"marketing", "marketing.sms"}


def test_a_superseded_grant_does_not_expire() -> None:
    edges = [_consent("k1", "marketing", 1, "granted", until=10),
             _consent("k2", "marketing", 5, "granted")]
    assert _granted(edges, at=20) == set(CHILDREN)


def test_the_rule_answers_the_past_as_it_was() -> None:
    edges = [_consent("k1", "marketing", 1, "granted"),
             _consent("k2", "marketing.email", 5, "withdrawn"),
             _consent("k3", "marketing", 9, "withdrawn"),
             _consent("k4", "marketing.email", 12, "granted")]
    assert _granted(edges, at=0) == set()
    assert _granted(edges, at=4) == set(CHILDREN)
    assert _granted(edges, at=8) == {"marketing", "marketing.sms"}
    assert _granted(edges, at=10) == set()
    assert _granted(edges, at=12) == {"marketing.email"}


@pytest.mark.parametrize("order", [0, 1])
def test_at_an_equal_time_a_withdrawal_wins(order: int) -> None:
    # Choices at the same microsecond (imported histories): whatever order they are
    # read in, the withdrawal wins, across purposes and on one purpose.
    pair = [_consent("k1", "marketing", 3, "granted"),
            _consent("k2", "marketing.email", 3, "withdrawn")]
    edges = pair if order == 0 else pair[::-1]
    assert _granted(edges, at=5) == {"marketing", "marketing.sms"}
    reverse = [_consent("k1", "marketing", 3, "withdrawn"),
               _consent("k2", "marketing.email", 3, "granted")]
    assert _granted(reverse if order == 0 else reverse[::-1], at=5) == set()
    same = [_consent("kz", "marketing", 3, "granted"),
            _consent("ka", "marketing", 3, "withdrawn")]
    assert _granted(same if order == 0 else same[::-1], at=5) == set()
    # An expiry at the very time of a grant of the child is a withdrawal at that time.
    expiry = [_consent("k1", "marketing", 1, "granted", until=3),
              _consent("k2", "marketing.email", 3, "granted")]
    assert _granted(expiry if order == 0 else expiry[::-1], at=5) == set()


def test_at_a_full_tie_the_nearest_purpose_is_named() -> None:
    edges = [_consent("k1", "marketing", 3, "granted"),
             _consent("k2", "marketing.email", 3, "granted")]
    decision = decide(POLICY, "marketing.email", consent_states(edges, at=5))
    assert decision.granted and decision.by is not None
    assert decision.by.purpose == "marketing.email"


def test_decisions_list_every_purpose_a_choice_applies_to() -> None:
    edges = [_consent("k1", "marketing", 1, "granted"),
             _consent("k2", "marketing.email", 2, "withdrawn"),
             _consent("k3", "retired.purpose", 2, "granted")]
    found = {d.purpose: (d.granted, d.by.purpose if d.by else None)
             for d in decisions(POLICY, consent_states(edges, at=5))}
    assert found == {"marketing": (True, "marketing"),
                     "marketing.email": (False, "marketing.email"),
                     "marketing.sms": (True, "marketing"),
                     "retired.purpose": (True, "retired.purpose")}


def test_descendants_are_the_purposes_a_choice_touches() -> None:
    assert POLICY.descendants("marketing") == list(CHILDREN)
    assert POLICY.descendants("marketing.email") == ["marketing.email"]
