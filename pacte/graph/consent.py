"""Consent as history, and the one rule that reads it.

Each change is a new CONSENTED edge, none is ever overwritten. Opt-in: no edge means
no consent. The state of a (customer, purpose) pair at time t is its newest edge at or
before t; a grant whose `until` has passed reads as expired.

The rule (`decide`, the only place it is written): **the latest explicit choice on the
purpose or on any of its ancestors decides.** A grant of `marketing` covers
`marketing.email` until the customer withdraws `marketing.email` (or `marketing`); a
later grant of `marketing.email` lets it through again, whatever `marketing` said
before. An expiry is a withdrawal at its expiry time. Ties: a session stamps each choice
of a customer strictly after their previous one, so the later-recorded choice wins; at
an equal time (imported histories) a withdrawal or expiry wins over a grant, and among
equal choices the nearest purpose is named as the one that decided.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pacte.graph.model import ConsentStatus
from pacte.graph.policy import Policy
from pacte.graph.store import Edge

__all__ = ["LISTED_SOURCES", "ConsentState", "Decision", "consent_states", "decide",
           "decisions"]

# Customer lists under consent page through who consented to a purpose (the sources of
# the purpose's CONSENTED edges, `Store.edge_sources`): the store is asked to keep
# them listable page by page when it is opened (`pacte.graph.stores.open_store`).
LISTED_SOURCES = ("CONSENTED",)


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

    @property
    def since(self) -> int:
        """When this state took hold: the choice's time, or for an expired grant its expiry."""
        if self.status is ConsentStatus.EXPIRED and self.until is not None:
            return self.until
        return self.at


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a customer's data may be used for `purpose`, and the choice that decided.

    `by` is the latest explicit choice on the purpose or an ancestor (None: the customer
    never chose, which under opt-in means no).
    """

    purpose: str
    by: ConsentState | None

    @property
    def granted(self) -> bool:
        return self.by is not None and self.by.active


def consent_states(edges: Iterable[Edge], *, at: int) -> dict[str, ConsentState]:
    """The state per purpose at time `at` (microseconds), from a customer's CONSENTED edges."""
    latest: dict[str, Edge] = {}
    for e in edges:
        if e.at > at:
            continue
        seen = latest.get(e.dst)
        if seen is None or _order(e) > _order(seen):
            latest[e.dst] = e
    states: dict[str, ConsentState] = {}
    for purpose, e in latest.items():
        until = e.props.get("until")
        until_i = int(until) if isinstance(until, int) else None
        status = _status(e)
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


def decide(policy: Policy, purpose: str, states: Mapping[str, ConsentState]) -> Decision:
    """The rule: the latest explicit choice on `purpose` or one of its ancestors decides.

    `states` is one customer's state per purpose (`consent_states`): the newest choice
    per purpose is all the rule needs, since an older choice on a purpose is never later
    than the newest one, nor is its expiry once superseded.
    """
    chain = policy.ancestors(purpose) if purpose in policy.purposes else [purpose]
    best: ConsentState | None = None
    for p in chain:  # nearest first, so that on a full tie the nearest purpose is named
        s = states.get(p)
        if s is not None and (best is None or _rank(s) > _rank(best)):
            best = s
    return Decision(purpose, best)


def decisions(policy: Policy, states: Mapping[str, ConsentState]) -> list[Decision]:
    """The decision for every purpose some choice applies to, by purpose id.

    The policy's purposes decided by a choice on themselves or an ancestor, and purposes
    no longer in the policy that were chosen (their own choice, kept on record).
    """
    wanted = sorted(set(policy.purposes) | set(states))
    found = [decide(policy, p, states) for p in wanted]
    return [d for d in found if d.by is not None]


def _status(e: Edge) -> ConsentStatus:
    return ConsentStatus(str(e.props.get("status", "withdrawn")))


def _order(e: Edge) -> tuple[int, bool, str]:
    # Same purpose, same time: the withdrawal wins, then the edge id (deterministic).
    return e.at, _status(e) is not ConsentStatus.GRANTED, e.id


def _rank(s: ConsentState) -> tuple[int, bool]:
    # The later choice wins; at an equal time a withdrawal or expiry wins over a grant.
    return s.since, not s.active
