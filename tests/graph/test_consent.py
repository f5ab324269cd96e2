from __future__ import annotations

from pacte.graph.consent import active_purposes, consent_states, covered
from pacte.graph.model import ConsentStatus
from pacte.graph.policy import Policy
from pacte.graph.store import Edge


def _consent(eid: str, purpose: str, at: int, status: str, until: int | None = None) -> Edge:
    return Edge("CONSENTED", eid, "c1", purpose, at, {"status": status, "until": until,
                                                      "source": "web"})


def test_no_edge_means_no_consent() -> None:
    assert consent_states([], at=100) == {}
    assert not covered(Policy.default(), "marketing", active_purposes([], at=100))


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


def test_parent_consent_covers_children_but_not_the_reverse() -> None:
    policy = Policy.default()
    parent = active_purposes([_consent("k1", "marketing", 1, "granted")], at=5)
    assert covered(policy, "marketing.email", parent)
    assert covered(policy, "marketing.sms", parent)
    child = active_purposes([_consent("k1", "marketing.email", 1, "granted")], at=5)
    assert covered(policy, "marketing.email", child)
    assert not covered(policy, "marketing", child)
    assert not covered(policy, "marketing.sms", child)
