"""Reports over the audit trail: a subject's trace, the Art. 15 access report, plain
words for customers, and the Art. 30 record of processing.

The policy module belongs to the graph layer, so these functions take a plain
"policy summary" instead of importing it:

    {"version": "...",                                   (optional)
     "purposes": [{"id", "parent", "legal_basis", "categories", "retention_days",
                   "description"}, ...],
     "fields": {"email": "user.contact.email", ...}}     (optional: field -> category)
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pacte.audit.checkpoint import Checkpoint
from pacte.audit.entry import AuditEntry, format_time
from pacte.audit.merkle import leaf_hash, verify_inclusion
from pacte.audit.subjects import check_completeness
from pacte.audit.trail import AuditTrail
from pacte.clock import utcnow
from pacte.errors import InputError, IntegrityError

__all__ = ["access_report", "check_report", "plain_words", "record_of_processing", "trace"]

_PAGE = 1000

# What each action did, as a customer would say it. `{data}` is "your email and
# name" when field names are known, else a phrase for the kind of data.
_VERBS: dict[str, tuple[str, str]] = {
    "read": ("read", "your data"),
    "request": ("used", "your data"),
    "write": ("changed", "your data"),
    "customer.read": ("read", "your profile"),
    "customer.lookup": ("looked you up by", "your contact details"),
    "customer.write": ("changed", "your profile"),
    "customer.export": ("exported", "all your data"),
    "customer.referrals": ("read", "who you referred"),
    "customer.erase": ("erased", "all your data"),
    "erase": ("erased", "all your data"),
    "interaction.list": ("read", "your interactions"),
    "interaction.write": ("recorded", "an interaction with you"),
    "product.list": ("read", "your purchases"),
    "product.buyers": ("read", "your purchases"),
    "device.list": ("read", "your devices"),
    "consent.read": ("read", "your consents"),
    "consent.history": ("read", "your consent history"),
    "recommendations": ("used", "your purchases to recommend products"),
    "analytics.project": ("included in a pseudonymised analysis", "your data"),
    "audit.read": ("read", "the record of uses of your data"),
    "audit.self": ("read", "the record of uses of your data"),
    "audit.trace": ("read", "the record of uses of your data"),
    "audit.lookup": ("looked you up by", "your email, to search the record of uses"),
    "audit.access_report": ("prepared", "your access report"),
    "customer.link": ("made", "a link to your transparency page"),
    "explain": ("explained what it may see of", "your data"),
}
_ROLES = {"app": "the app", "auditor": "the auditor", "analyst": "the analyst",
          "admin": "the administrator"}


def _all_pages(trail: AuditTrail, subject_ref: str) -> Iterable[AuditEntry]:
    after: int | None = None
    while True:
        page = trail.entries(subject=subject_ref, after_seq=after, limit=_PAGE)
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1].seq


def trace(trail: AuditTrail, subject_ref: str) -> list[AuditEntry]:
    """Every entry naming this pseudonymous subject, in seq order (index lookup, no scan)."""
    if not isinstance(subject_ref, str) or not subject_ref:
        raise InputError("a subject reference is required")
    return list(_all_pages(trail, subject_ref))


def _purposes(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    purposes = policy.get("purposes", [])
    if not isinstance(purposes, Sequence) or not all(isinstance(p, Mapping) for p in purposes):
        raise InputError("policy summary 'purposes' must be a list of objects")
    return list(purposes)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def access_report(
    trail: AuditTrail,
    subject_ref: str,
    *,
    policy_summary: Mapping[str, Any],
    fresh_checkpoint: bool = True,
    now: Callable[[], datetime] = utcnow,
) -> dict[str, Any]:
    """The Art. 15 report: each use of the subject's data, its purposes and categories.

    Each use carries its canonical entry, the hash of the entry before it and an
    inclusion proof against the signed checkpoint in the report, so the customer can
    check it was on the record; `completeness` proves against the subject map that
    same checkpoint signs that no use before it is left out (`check_report` does
    both). With `fresh_checkpoint` (and a signing key) the checkpoint is signed now,
    so the most recent uses are covered too; otherwise the latest one that signs a
    subject map is used, and later uses are listed without proofs.
    """
    checkpoint: Checkpoint | None
    if fresh_checkpoint and trail.signer is not None:
        checkpoint = trail.checkpoint(index=True)
    else:
        checkpoint = trail.latest_index_checkpoint()
    field_categories: Mapping[str, str] = policy_summary.get("fields") or {}
    uses = [_use(trail, e, field_categories, checkpoint) for e in trace(trail, subject_ref)]
    ok = [u for u in uses if u["outcome"] == "ok"]
    return {
        "subject": subject_ref,
        "generated_at": format_time(now()),
        "policy_version": policy_summary.get("version"),
        "purposes": _purposes_used(ok, policy_summary),
        "categories": sorted({c for u in ok for c in u["categories"]}),
        "recipients": sorted({str(u["by"]) for u in ok if u["by"] is not None}),
        "uses": uses,
        "checkpoint": checkpoint.to_json() if checkpoint is not None else None,
        "completeness": None if checkpoint is None
        else trail.subject_map(checkpoint.size).proof(subject_ref),
        "proofs": "RFC 9162 inclusion proofs; leaf = SHA-256(0x00 || prev_hash || entry), "
                  "which is also the entry's hash in the chain; completeness against the "
                  "checkpoint's subject map (docs/audit.md)",
    }


def _use(trail: AuditTrail, e: AuditEntry, field_categories: Mapping[str, str],
         checkpoint: Checkpoint | None) -> dict[str, Any]:
    """One use of an access report: what the entry says, and its inclusion proof."""
    r = e.record
    fields = [f for f in r.get("fields") or [] if isinstance(f, str)]
    proof = None
    if checkpoint is not None and e.seq < checkpoint.size:
        proof = [_b64(h) for h in trail.inclusion_proof(e.seq, checkpoint.size)]
    return {
        "seq": e.seq,
        "time": e.time,
        "action": r.get("action"),
        "by": r.get("principal_name") or r.get("principal"),
        "role": r.get("role"),
        "purpose": r.get("purpose"),
        "legal_basis": r.get("legal_basis"),
        "fields": fields,
        "categories": sorted({field_categories[f] for f in fields if f in field_categories}),
        "outcome": r.get("outcome"),
        "entry": e.canonical.decode("utf-8"),
        "prev_hash": _b64(e.prev_hash),
        "inclusion_proof": proof,
    }


def _purposes_used(ok: Sequence[Mapping[str, Any]], policy_summary: Mapping[str, Any]
                   ) -> list[dict[str, Any]]:
    """The purposes the successful uses were made for, with what the policy says of each."""
    purposes = {str(p.get("id")): p for p in _purposes(policy_summary)}
    seen: dict[str, int] = {}
    for u in ok:
        if isinstance(u["purpose"], str):
            seen[u["purpose"]] = seen.get(u["purpose"], 0) + 1
    return [
        {
            "id": pid,
            "uses": n,
            "description": purposes.get(pid, {}).get("description"),
            "legal_basis": purposes.get(pid, {}).get("legal_basis"),
            "categories": list(purposes.get(pid, {}).get("categories") or []),
            "retention_days": purposes.get(pid, {}).get("retention_days"),
        }
        for pid, n in sorted(seen.items())
    ]


def check_report(report: Mapping[str, Any], *, key: str | None = None,
                 public_key: bytes | None = None) -> dict[str, Any]:
    """Check an access report on its own, as its reader would; IntegrityError if it fails.

    `key` (the base64 public key or the SHA-256 fingerprint printed by `pacte audit
    checkpoint --export`) or `public_key` pins who must have signed the report's
    checkpoint. Checked: that signature; each listed use names the subject and is in
    the signed tree (its inclusion proof); and the uses below the checkpoint's size are
    all the subject's uses in the signed subject map. Returns what was proven.
    """
    subject, cp, uses = _signed_parts(report, key=key, public_key=public_key)
    assert cp.index_root is not None and cp.subjects is not None  # _signed_parts checks
    seqs: list[int] = []
    for use in uses:
        seq = _checked_use(use, subject, cp)
        if seq < cp.size:
            seqs.append(seq)
    if seqs != sorted(set(seqs)):
        raise IntegrityError("the report lists a use twice or out of order")
    proof = report.get("completeness")
    problem = "no completeness proof" if not isinstance(proof, Mapping) else \
        check_completeness(subject, seqs, index_root=cp.index_root, subjects=cp.subjects,
                           proof=proof)
    if problem is not None:
        raise IntegrityError(f"the report is not complete as of checkpoint {cp.size}: "
                             f"{problem}")
    return {"subject": subject, "uses": len(seqs), "checkpoint_size": cp.size,
            "checkpoint_time": cp.time, "key_fingerprint": cp.fingerprint}


def _signed_parts(report: Mapping[str, Any], *, key: str | None, public_key: bytes | None
                  ) -> tuple[str, Checkpoint, list[Any]]:
    """The report's subject, checkpoint and uses, once the checkpoint is shown to be
    signed, with a subject map, by the pinned key."""
    from pacte.audit.verify import parse_key

    fingerprint = None
    if key is not None:
        public_key, fingerprint = parse_key(key)
    if public_key is None and fingerprint is None:
        raise InputError("give the key the report must be signed by (key=...)")
    try:
        subject = report["subject"]
        cp = Checkpoint.from_json(report["checkpoint"])
        uses = report["uses"]
        if not isinstance(subject, str) or not isinstance(uses, list):
            raise TypeError("subject and uses")
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise IntegrityError(f"not an access report with a signed checkpoint ({exc})") from exc
    if (public_key is not None and cp.public_key != public_key) or (
            fingerprint is not None and cp.fingerprint != fingerprint):
        raise IntegrityError(f"the report is signed by key {cp.fingerprint[:16]}, not the "
                             "pinned key")
    if not cp.verify(cp.public_key) or cp.index_root is None or cp.subjects is None:
        raise IntegrityError("the report's checkpoint is not validly signed with a subject map")
    return subject, cp, uses


def _checked_use(use: Any, subject: str, cp: Checkpoint) -> int:
    """The seq of one listed use, once it is shown to be on the record."""
    try:
        entry = use["entry"].encode("utf-8")
        doc = json.loads(entry)
        seq = doc["seq"]
        prev = base64.b64decode(use["prev_hash"], validate=True)
        proof = use.get("inclusion_proof")
        if not isinstance(seq, int) or use["seq"] != seq:
            raise ValueError("seq")
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
        raise IntegrityError(f"a use in the report is malformed ({exc})") from exc
    if subject not in (doc.get("subjects") or []):
        raise IntegrityError(f"use {seq} does not name the subject")
    if seq < cp.size:
        try:
            hashes = [base64.b64decode(h, validate=True) for h in proof or []]
        except (TypeError, ValueError, binascii.Error) as exc:
            raise IntegrityError(f"the inclusion proof of use {seq} is malformed") from exc
        if proof is None or not verify_inclusion(leaf_hash(prev + entry), seq, cp.size,
                                                 hashes, cp.root):
            raise IntegrityError(f"use {seq} is not in the signed log")
    return seq


def _words(items: Sequence[str]) -> str:
    names = [i.replace("_", " ") for i in items]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def plain_words(entries: Iterable[AuditEntry]) -> list[str]:
    """One sentence per entry, for the customer whose data it was."""
    return [_sentence(e) for e in entries]


def _sentence(e: AuditEntry) -> str:
    r = e.record
    day = e.time[:10]
    action = str(r.get("action") or "")
    who = _who(r)
    if action in ("consent.grant", "consent.withdraw"):
        verb = "recorded your consent to" if action == "consent.grant" \
            else "recorded the withdrawal of your consent to"
        return f"On {day} {who} {verb} {r.get('consent_purpose') or 'a purpose'}."
    purpose = r.get("purpose")
    why = f" for {purpose}" if isinstance(purpose, str) and purpose else ""
    if r.get("outcome") == "denied":
        return f"On {day} {who} asked to use your data{why} and was refused."
    if r.get("outcome") not in (None, "ok"):
        return f"On {day} {who} tried to use your data{why} ({r.get('outcome')})."
    verb, default = _VERBS.get(action, ("used", "your data"))
    fields = [f for f in r.get("fields") or [] if isinstance(f, str)]
    named = verb in ("read", "changed") or action == "request"
    data = "your " + _words(fields) if fields and named else default
    return f"On {day} {who} {verb} {data}{why}."


def _who(r: Mapping[str, Any]) -> str:
    role = _ROLES.get(str(r.get("role")), "the service")
    return f"{role} '{r.get('principal_name') or r.get('principal') or 'unknown'}'"


def record_of_processing(
    policy: Mapping[str, Any],
    *,
    controller: Mapping[str, str] | None = None,
    now: Callable[[], datetime] = utcnow,
) -> dict[str, Any]:
    """The Art. 30 record of processing activities, one activity per purpose.

    The controller (name, address, contact, DPO, representative), each purpose's
    recipients and transfers come from the policy file (`[controller]`, and
    `recipients` / `transfers` in a purpose); `controller` overrides the policy's.
    """
    activities = []
    for p in _purposes(policy):
        days = p.get("retention_days")
        activities.append({
            "purpose": p.get("id"),
            "parent": p.get("parent"),
            "description": p.get("description"),
            "legal_basis": p.get("legal_basis"),
            "data_subjects": "customers",
            "data_categories": sorted(p.get("categories") or []),
            "recipients": list(p.get("recipients") or []),
            "transfers": list(p.get("transfers") or []),
            "retention_days": days,
            "retention": f"records older than {days} days are not used for this purpose"
                         if days else "no time limit set for this purpose",
            "safeguards": [
                "field-level encryption (AES-256-GCM, per-customer keys)",
                "purpose-bound access with consent checks",
                "tamper-evident audit trail with signed checkpoints",
            ],
        })
    given = controller if controller is not None else policy.get("controller")
    return {
        "controller": dict(given) if given else None,
        "generated_at": format_time(now()),
        "policy_version": policy.get("version"),
        "activities": sorted(activities, key=lambda a: str(a["purpose"])),
    }
