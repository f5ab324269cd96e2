"""Consent as history: each change is a new CONSENTED edge, none is ever overwritten.

Opt-in: no edge means no consent. The state of a (customer, purpose) pair at time t
is its newest edge at or before t; a grant whose `until` has passed reads as
expired. Consent to a parent purpose covers its children.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pacte.graph.model import ConsentStatus
from pacte.graph.policy import Policy
from pacte.graph.store import Edge

__all__ = ["ConsentState", "active_purposes", "consent_states", "covered"]


@dataclass(frozen=True, slots=True)
class ConsentState:
    purpose: str
    status: ConsentStatus
    at: int
    until: int | None
    source: str | None
    policy_version: str | None

    @property
    def active(self) -> bool:
        return self.status is ConsentStatus.GRANTED


def consent_states(edges: Iterable[Edge], *, at: int) -> dict[str, ConsentState]:
    """The state per purpose at time `at` (microseconds), from a customer's CONSENTED edges."""
    latest: dict[str, Edge] = {}
    for e in edges:
        if e.at > at:
            continue
        seen = latest.get(e.dst)
        if seen is None or (e.at, e.id) > (seen.at, seen.id):
            latest[e.dst] = e
    states: dict[str, ConsentState] = {}
    for purpose, e in latest.items():
        until = e.props.get("until")
        until_i = int(until) if isinstance(until, int) else None
        status = ConsentStatus(str(e.props.get("status", "withdrawn")))
        if status is ConsentStatus.GRANTED and until_i is not None and until_i <= at:
            status = ConsentStatus.EXPIRED
        source = e.props.get("source")
        version = e.props.get("policy_version")
        states[purpose] = ConsentState(
            purpose=purpose,
            status=status,
            at=e.at,
            until=until_i,
            source=source if isinstance(source, str) else None,
            policy_version=version if isinstance(version, str) else None,
        )
    return states


def active_purposes(edges: Iterable[Edge], *, at: int) -> frozenset[str]:
    return frozenset(p for p, s in consent_states(edges, at=at).items() if s.active)


def covered(policy: Policy, purpose: str, active: frozenset[str]) -> bool:
    """Whether consent to `purpose` or to one of its ancestors is active."""
    return any(p in active for p in policy.ancestors(purpose))
