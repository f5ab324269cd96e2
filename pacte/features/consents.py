"""Consents: a customer's choices as the rule decides them, their history, what a read
would reveal (`explain`), and the customer's own grants and withdrawals (G3, G5)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime

from pacte.clock import from_micros, input_micros
from pacte.errors import InputError
from pacte.features.door import Door
from pacte.graph.checks import check_id, check_text
from pacte.graph.consent import ConsentState, Decision, consent_states, decide, decisions
from pacte.graph.model import NODE_KINDS, ConsentStatus
from pacte.graph.operations import Action
from pacte.graph.store import Edge, Value, WriteBatch
from pacte.graph.views import ConsentChange, ConsentView, Explanation

__all__ = ["consent_history", "consent_view", "consents", "explain",
           "grant_consent", "withdraw_consent"]

# How far ahead of the clock a customer's consent stamps may run (a burst of choices
# takes one microsecond each); a choice dated further ahead does not move the next one.
_STAMP_SLACK_US = 1_000_000


def consents(door: Door, customer_id: str, *, at: datetime | None = None
             ) -> list[ConsentView]:
    """The customer's consent per purpose, now or at a past time, as the rule decides it.

    Every purpose some explicit choice applies to, each with the choice that decided
    it (`decided_by`: the purpose itself or an ancestor, see pacte.graph.consent).

    Not cut by retention: consents are the record of the legal basis itself
    (Art. 7(1)), kept and shown as long as the customer is.
    """
    door._gate(Action.CONSENT_READ)
    door._require_visible(Action.CONSENT_READ, customer_id)
    if at is None:
        # As of this request: the states its visibility checks read (or now read once).
        states = door._consent_states(customer_id)
    else:
        states = consent_states(door._edges(customer_id, "CONSENTED"),
                                at=input_micros(at, "at"))
    door._note(Action.CONSENT_READ, [customer_id])
    # As the rule decides each purpose then: a child follows a later choice on its parent.
    # (`_decision_views`, inline: every customer-360 reads consents.)
    return [ConsentView(d.purpose, st.status.value, from_micros(st.at),
                        None if st.until is None else from_micros(st.until), st.source,
                        st.policy_version, st.purpose)
            for d in decisions(door._policy, states) if (st := d.by) is not None]


def consent_history(door: Door, customer_id: str) -> list[ConsentView]:
    """Every consent change of a customer, newest first."""
    door._gate(Action.CONSENT_HISTORY)
    door._require_visible(Action.CONSENT_HISTORY, customer_id)
    edges = door._edges(customer_id, "CONSENTED")
    door._audit(door._record(Action.CONSENT_HISTORY, subjects=[customer_id]))
    return [consent_view(s) for e in edges
            for s in consent_states([e], at=door._now_us).values()]


def explain(door: Door, *, kind: str = "Customer", customer_id: str | None = None
            ) -> Explanation:
    """What a read of `kind` would reveal and withhold, decrypting nothing."""
    if kind not in NODE_KINDS:
        raise InputError("unknown kind")
    allowed, withheld = door._split(NODE_KINDS[kind])
    visible: bool | None = None
    consent: ConsentView | None = None
    purpose = door.purpose
    if customer_id is not None:
        check_id(customer_id)
        visible = bool(door._visible_customers([customer_id]))
        if visible and purpose.needs_consent:
            # Only for a visible customer: of a hidden one, nothing is said (G3).
            states = door._consent_map([customer_id])[customer_id]
            consent = _decision_views([decide(door._policy, purpose.id, states)])[0]
    door._audit(door._record(Action.EXPLAIN, subjects=[customer_id] if customer_id else [],
                             extra={"kind": kind}))
    return Explanation(
        purpose=purpose.id,
        legal_basis=purpose.legal_basis,
        consent_required=purpose.needs_consent,
        retention_days=purpose.retention_days,
        revealed=list(allowed),
        withheld=list(withheld),
        subject_visible=visible,
        consent=consent,
    )


def grant_consent(door: Door, customer_id: str, purpose: str, *, source: str,
                  proof: str | None = None, until: datetime | None = None) -> ConsentChange:
    """Record an opt-in; requested under a purpose that may manage consent (in the
    default policy `self_service`, the customer's own request).

    The answer holds the choice and the consent it leaves to the purpose and to each
    purpose below it.
    """
    return _change(door, customer_id, purpose, ConsentStatus.GRANTED,
                   source=source, proof=proof, until=until)


def withdraw_consent(door: Door, customer_id: str, purpose: str, *, source: str = "customer"
                     ) -> ConsentChange:
    """Record an opt-out, for the purpose and every purpose below it, whatever they
    were granted before; it holds from the next request on (G5)."""
    return _change(door, customer_id, purpose, ConsentStatus.WITHDRAWN,
                   source=source, proof=None, until=None)


def _change(door: Door, customer_id: str, purpose_id: str, status: ConsentStatus, *,
            source: str, proof: str | None, until: datetime | None) -> ConsentChange:
    granted = status is ConsentStatus.GRANTED
    action = Action.CONSENT_GRANT if granted else Action.CONSENT_WITHDRAW
    door._gate(action)
    policy = door._policy
    if policy.get(purpose_id) is None:
        raise InputError(f"unknown purpose; one of {', '.join(policy.purposes)}")
    if not source or len(source) > 200:
        raise InputError("source must be 1 to 200 characters")
    check_text("source", source)
    if proof is not None:
        check_text("proof", proof)
    until_us = input_micros(until, "until") if until is not None else None
    door._require_visible(action, customer_id)
    now_us = door._now_us
    if until_us is not None and until_us <= now_us:
        raise InputError("until must be in the future")
    # Each choice of a customer is stamped after their previous one, on any purpose, so
    # the later-recorded choice is the later one even within one microsecond: the rule
    # then lets it decide over older choices on the purpose's ancestors.
    history = door._edges(customer_id, "CONSENTED")
    # The stamps of a burst of choices run a few microseconds ahead of the clock and
    # count; a choice dated further ahead (another server's clock) must not push this
    # one, a withdrawal above all, past now: it is left out.
    ahead = now_us + _STAMP_SLACK_US
    at = max([now_us, *(e.at + 1 for e in history if e.at <= ahead)])
    props: dict[str, Value] = {
        "status": status.value, "until": until_us, "source": source,
        "policy_version": policy.version,
        "proof": hashlib.sha256(proof.encode("utf-8")).hexdigest() if proof else None,
    }
    edge = Edge("CONSENTED", "k_" + secrets.token_hex(8), customer_id, purpose_id, at, props)
    door._commit(WriteBatch(edges=[edge]), door._record(
        action, subjects=[customer_id],
        extra={"consent_purpose": purpose_id, "source": source}))
    door._forget(customer_id)
    states = consent_states([*history, edge], at=at)
    return ConsentChange(
        recorded=consent_view(states[purpose_id]),
        effective=tuple(_decision_views(decide(policy, p, states)
                                        for p in policy.descendants(purpose_id))))


def consent_view(state: ConsentState, *, purpose: str | None = None) -> ConsentView:
    """The view of `state` as the consent to `purpose` (default: the state's own)."""
    return ConsentView(
        purpose=purpose or state.purpose,
        status=state.status.value,
        at=from_micros(state.at),
        until=from_micros(state.until) if state.until is not None else None,
        source=state.source,
        policy_version=state.policy_version,
        decided_by=state.purpose,
    )


def _decision_views(found: Iterable[Decision]) -> list[ConsentView]:
    """The consent to each decision's purpose: the choice that decided it, if any."""
    return [consent_view(d.by, purpose=d.purpose) for d in found if d.by is not None]
