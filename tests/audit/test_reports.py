"""Reports over the trail, and signed erasure receipts."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pacte.audit import (
    AuditTrail,
    Checkpoint,
    access_report,
    erasure_receipt,
    leaf_hash,
    plain_words,
    record_of_processing,
    trace,
    verify_inclusion,
    verify_receipt,
)
from pacte.crypto.signing import SigningKey
from pacte.errors import InputError

from .conftest import Clock, record

Factory = Callable[..., AuditTrail]

POLICY = {
    "version": "p_test",
    "purposes": [
        {"id": "service", "parent": None, "legal_basis": "contract",
         "categories": ["user.contact.email", "user.name"], "retention_days": 3650,
         "description": "Serving customers who bought"},
        {"id": "marketing.email", "parent": "marketing", "legal_basis": "consent",
         "categories": ["user.name", "user.contact.email"], "retention_days": 730,
         "description": "Newsletters"},
    ],
    "fields": {"email": "user.contact.email", "name": "user.name"},
}


def _fill(trail: AuditTrail) -> None:
    for i in range(30):
        trail.append(record(i, subjects=["s_alice"] if i % 3 == 0 else ["s_bob"],
                            purpose="service" if i % 2 else "marketing.email"))
    trail.append({**record(30, subjects=["s_alice"]), "outcome": "denied",
                  "reason": "PURPOSE_NOT_GRANTED", "fields": []})


def test_trace_is_every_entry_of_one_subject(trail_factory: Factory) -> None:
    trail = trail_factory()
    _fill(trail)
    assert [e.seq for e in trace(trail, "s_alice")] == [*range(0, 30, 3), 30]
    assert trace(trail, "s_nobody") == []
    with pytest.raises(InputError):
        trace(trail, "")


def test_access_report_with_verifiable_proofs(trail_factory: Factory) -> None:
    trail = trail_factory()
    _fill(trail)
    report = access_report(trail, "s_alice", policy_summary=POLICY, now=Clock())
    assert json.dumps(report)
    assert [u["seq"] for u in report["uses"]] == [*range(0, 30, 3), 30]
    assert {p["id"]: p["uses"] for p in report["purposes"]} == {"marketing.email": 5,
                                                               "service": 5}
    assert report["categories"] == ["user.contact.email", "user.name"]
    assert report["recipients"] == ["crm"]
    cp = Checkpoint.from_json(report["checkpoint"])
    assert cp.verify() and cp.size == 31
    for use in report["uses"]:
        proof = [base64.b64decode(h) for h in use["inclusion_proof"]]
        leaf = leaf_hash(base64.b64decode(use["prev_hash"]) + use["entry"].encode())
        assert verify_inclusion(leaf, use["seq"], cp.size, proof, cp.root)
        assert not verify_inclusion(leaf_hash(use["entry"].encode()), use["seq"], cp.size,
                                    proof, cp.root)
        assert json.loads(use["entry"])["subjects"] == ["s_alice"]
    assert "s_bob" not in json.dumps(report)


def test_plain_words_for_customers(tmp_path: Path) -> None:
    trail = AuditTrail.open(tmp_path / "a.db", signer=None, now=Clock())
    entries = [
        trail.append(record(0)),
        trail.append({**record(1), "action": "customer.write", "fields": ["phone"]}),
        trail.append({**record(2), "outcome": "denied", "purpose": "marketing"}),
        trail.append({**record(3), "action": "consent.withdraw", "fields": [],
                      "consent_purpose": "marketing.email"}),
        trail.append({**record(4), "action": "interaction.list", "fields": []}),
        trail.append({"action": "something.new", "role": "analyst", "principal": "pr_x"}),
    ]
    assert plain_words(entries) == [
        "On 2026-11-01 the app 'crm' read your email and name for service.",
        "On 2026-11-01 the app 'crm' changed your phone for service.",
        "On 2026-11-01 the app 'crm' asked to use your data for marketing and was refused.",
        "On 2026-11-01 the app 'crm' recorded the withdrawal of your consent to "
        "marketing.email.",
        "On 2026-11-01 the app 'crm' read your interactions for service.",
        "On 2026-11-01 the analyst 'pr_x' used your data.",
    ]
    trail.close()


def test_record_of_processing() -> None:
    ropa = record_of_processing(POLICY, controller="Example SA", now=Clock())
    assert ropa["controller"] == "Example SA" and ropa["policy_version"] == "p_test"
    by_purpose = {a["purpose"]: a for a in ropa["activities"]}
    assert by_purpose["marketing.email"]["legal_basis"] == "consent"
    assert by_purpose["marketing.email"]["parent"] == "marketing"
    assert by_purpose["service"]["data_categories"] == ["user.contact.email", "user.name"]
    assert by_purpose["service"]["retention_days"] == 3650
    with pytest.raises(InputError):
        record_of_processing({"purposes": ["not an object"]})


def test_erasure_receipts_are_signed_and_hold_no_personal_data() -> None:
    key = SigningKey.generate()
    receipt = erasure_receipt(key, subject_ref="s_ab12", destroyed={"Customer": 1,
                                                                    "Interaction": 12},
                              requested_by="crm", audit_seq=41, now=Clock())
    assert json.loads(json.dumps(receipt)) == receipt
    assert set(receipt) == {"type", "subject", "destroyed", "requested_by", "audit_seq",
                            "time", "key_id", "public_key", "signature"}
    assert verify_receipt(receipt)
    assert verify_receipt(receipt, public_key=key.public_key)
    assert not verify_receipt(receipt, public_key=SigningKey.generate().public_key)
    for k, v in (("destroyed", {"Customer": 0}), ("audit_seq", 40), ("subject", "s_other"),
                 ("time", "2020-01-01T00:00:00.000000Z")):
        assert not verify_receipt({**receipt, k: v})
    assert not verify_receipt({**receipt, "name": "Alice"})  # nothing may be added
    assert not verify_receipt({**receipt, "signature": "not base64!"})
    assert not verify_receipt({})
    with pytest.raises(InputError):
        erasure_receipt(key, subject_ref="", destroyed={}, requested_by="crm", audit_seq=1)
    with pytest.raises(InputError):
        erasure_receipt(key, subject_ref="s_1", destroyed={"Customer": -1},
                        requested_by="crm", audit_seq=1)


def test_public_api_is_exactly_all() -> None:
    import pacte.audit as audit

    public = {n for n in dir(audit) if not n.startswith("_")} - {
        "canonical", "checkpoint", "merkle", "receipts", "reports", "rotation", "subjects", "trail",
        "verify", "wal"}
    assert set(audit.__all__) >= public - {"annotations"}
    for name in audit.__all__:
        assert hasattr(audit, name)
