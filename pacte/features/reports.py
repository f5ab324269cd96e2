"""What the trail and the policy tell: the trail for auditors, verification, traces,
Art. 15 access reports, the Art. 30 record, a customer's own data uses, the purposes
and the operators' counts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pacte.clock import input_micros
from pacte.errors import InputError
from pacte.features.door import Door
from pacte.graph.checks import check_id, check_text, page_size
from pacte.graph.model import NODE_KINDS
from pacte.graph.operations import Action, Capability
from pacte.graph.policy import Purpose

__all__ = ["access_report", "audit_lookup", "audit_trail", "audit_verification",
           "my_data_uses", "purposes", "record_of_processing", "stats", "trace"]


def purposes(door: Door) -> list[Purpose]:
    """The policy's purposes (no personal data; the read is audited like any other)."""
    door._audit(door._record(Action.POLICY_READ))
    return list(door._policy.purposes.values())


def stats(door: Door) -> dict[str, int]:
    """Counts per node kind and edge type, sorted by name (operators only)."""
    door._gate(Action.STATS)
    counts = door._counts()
    door._audit(door._record(Action.STATS))
    return dict(sorted(counts.items()))


def audit_trail(door: Door, *, customer_id: str | None = None, first: int = 50,
                after: int | None = None, principal: str | None = None,
                purpose: str | None = None, action: str | None = None,
                outcome: str | None = None, since: datetime | None = None,
                until: datetime | None = None) -> list[Any]:
    """Audit entries, optionally for one customer and filtered by principal id,
    purpose, action, outcome and period (`until` exclusive); auditors and admins."""
    door._gate(Action.AUDIT_READ)
    if customer_id:
        check_id(customer_id)
    for what, text in (("principal", principal), ("purpose", purpose),
                       ("action", action), ("outcome", outcome)):
        if text is not None:
            check_text(what, text)
            if len(text) > 200:
                raise InputError(f"{what} must be at most 200 characters")
    for what, moment in (("since", since), ("until", until)):
        if moment is not None:
            input_micros(moment, what)
    subject = door._ref(customer_id) if customer_id else None
    entries = door._trail_entries(subject=subject, after_seq=after, limit=page_size(first),
                                  principal=principal, purpose=purpose, action=action,
                                  outcome=outcome, since=since, until=until)
    door._audit(door._record(Action.AUDIT_READ, subjects=[customer_id] if customer_id else []))
    return entries


def audit_lookup(door: Door, email: str) -> list[str]:
    """The customers whose email has this blind-index token, so that an auditor can
    search the trail by email (auditors and admins). No field is opened: the purpose
    of an auditor (`legal`) may not read emails, so the rare token collision is not
    resolved and every candidate is returned (and named in the entry)."""
    door._gate(Action.AUDIT_LOOKUP)
    check_text("email", email)
    found = sorted(door._index_owners("email", door._index_token("email", email)))
    door._audit(door._record(Action.AUDIT_LOOKUP, subjects=found,
                             outcome="ok" if found else "not_found"))
    return found


def audit_verification(door: Door, *,
                       progress: Callable[[int, int], object] | None = None) -> Any:
    """The verification of the whole trail (auditors and admins); `progress(checked,
    total)` after each batch of entries."""
    door._gate(Action.AUDIT_VERIFY)
    report = door._trail_verify(progress=progress)
    door._audit(door._record(Action.AUDIT_VERIFY, outcome="ok" if report.ok else "invalid"))
    return report


def trace(door: Door, customer_id: str) -> list[Any]:
    """Every use of one customer's data, in order (auditors and admins)."""
    door._gate(Action.AUDIT_TRACE)
    check_id(customer_id)
    entries = door._trail_trace(door._ref(customer_id))
    door._audit(door._record(Action.AUDIT_TRACE, subjects=[customer_id]))
    return entries


def access_report(door: Door, customer_id: str) -> dict[str, Any]:
    """The Art. 15 report for one customer, with inclusion proofs (auditors, admins,
    or the customer's own request, under a purpose that may show it: `own_audit`)."""
    if not door._may(Capability.OWN_AUDIT):
        door._gate(Action.AUDIT_ACCESS_REPORT)
    else:
        door._require_visible(Action.AUDIT_ACCESS_REPORT, customer_id)
    check_id(customer_id)
    report = door._trail_access_report(door._ref(customer_id), _policy_summary(door))
    door._audit(door._record(Action.AUDIT_ACCESS_REPORT, subjects=[customer_id]))
    return report


def record_of_processing(door: Door) -> dict[str, Any]:
    """The Art. 30 record of processing activities, generated from the policy."""
    door._gate(Action.AUDIT_PROCESSING_RECORD)
    record = door._trail_processing(_policy_summary(door))
    door._audit(door._record(Action.AUDIT_PROCESSING_RECORD))
    return record


def _policy_summary(door: Door) -> dict[str, Any]:
    summary = dict(door._policy.summary())
    summary["fields"] = {f.name: f.category for kind in NODE_KINDS.values()
                         for f in kind.fields if f.category is not None}
    return summary


def my_data_uses(door: Door, customer_id: str, *, first: int = 50, after: int | None = None
                 ) -> list[Any]:
    """The uses of one customer's data, for that customer (under a purpose that may
    show it, `own_audit`: in the default policy `self_service`).

    Each entry is shown as it concerns this customer alone: an entry naming many
    customers (a list page) names only them, and operations of a request that
    concern only others are left out. `entry_hash` is still the recorded entry's.
    """
    door._gate(Action.AUDIT_SELF)
    door._require_visible(Action.AUDIT_SELF, customer_id)
    ref = door._ref(customer_id)
    entries = door._trail_entries(subject=ref, after_seq=after, limit=page_size(first))
    door._audit(door._record(Action.AUDIT_SELF, subjects=[customer_id]))
    return [dataclasses.replace(e, record=_concerning(e.record, ref)) for e in entries]


def _concerning(record: Mapping[str, Any], ref: str) -> dict[str, Any]:
    """An audit record as it concerns the customer `ref`: other customers left out."""
    out = dict(record)
    if "subjects" in out:
        out["subjects"] = [ref]
    operations = out.get("operations")
    if isinstance(operations, list):
        kept = []
        for op in operations:
            subjects = op.get("subjects") if isinstance(op, dict) else None
            if isinstance(subjects, list):
                if ref not in subjects:
                    continue
                op = {**op, "subjects": [ref]}
            kept.append(op)
        out["operations"] = kept
    return out
