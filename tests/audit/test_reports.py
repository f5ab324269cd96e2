"""Reports over the trail, and signed erasure receipts."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pacte.audit import (
    AuditTrail,
    Checkpoint,
    access_report,
    check_report,
    erasure_receipt,
    key_fingerprint,
    leaf_hash,
    plain_words,
    record_of_processing,
    trace,
    verify,
    verify_inclusion,
    verify_receipt,
)
from pacte.crypto.signing import SigningKey
from pacte.errors import InputError, IntegrityError

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
    ropa = record_of_processing(POLICY, controller={"name": "Example SA"}, now=Clock())
    assert ropa["controller"] == {"name": "Example SA"} and ropa["policy_version"] == "p_test"
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
    import types

    import pacte.audit as audit

    # Submodules are not exports (`verify` is both: the function shadows the module).
    public = {n for n in dir(audit) if not n.startswith("_")
              and not isinstance(getattr(audit, n), types.ModuleType)}
    assert set(audit.__all__) >= public - {"annotations"}
    for name in audit.__all__:
        assert hasattr(audit, name)


# -- completeness: the report proves no use was left out ---------------------------

def _complete_report(trail: AuditTrail, subject: str) -> dict[str, Any]:
    return json.loads(json.dumps(access_report(trail, subject, policy_summary=POLICY,
                                               now=Clock())))


def test_an_access_report_is_provably_complete(trail_factory: Factory,
                                               signer: SigningKey) -> None:
    trail = trail_factory()
    _fill(trail)
    for subject, uses in (("s_alice", 11), ("s_bob", 20), ("s_nobody", 0), ("s_zzzz", 0),
                          ("s_0", 0)):
        report = _complete_report(trail, subject)
        result = check_report(report, public_key=signer.public_key)
        assert result["uses"] == uses and result["checkpoint_size"] == 31
        assert check_report(report, key=key_fingerprint(signer.public_key))["uses"] == uses


def test_a_report_with_a_use_left_out_fails(trail_factory: Factory, signer: SigningKey
                                            ) -> None:
    trail = trail_factory()
    _fill(trail)
    report = _complete_report(trail, "s_alice")
    for i in (0, 5, len(report["uses"]) - 1):
        cut = {**report, "uses": report["uses"][:i] + report["uses"][i + 1:]}
        with pytest.raises(IntegrityError, match="not complete"):
            check_report(cut, public_key=signer.public_key)
    # Claiming the subject is absent, with another report's neighbours, fails too.
    absent = _complete_report(trail, "s_nobody")
    with pytest.raises(IntegrityError):
        check_report({**report, "uses": [], "completeness": absent["completeness"]},
                     public_key=signer.public_key)


def test_a_report_built_on_a_tampered_index_fails(tmp_path: Path, signer: SigningKey
                                                  ) -> None:
    """The attack of issue 15: one index row deleted hides uses from the report."""
    import sqlite3

    path = tmp_path / "audit.db"
    trail = AuditTrail.open(path, signer=signer, now=Clock())
    for i in range(1100):
        trail.append(record(i, subjects=["s_alice" if i % 10 == 0 else "s_bob"]))
    honest = _complete_report(trail, "s_alice")
    assert check_report(honest, public_key=signer.public_key)["uses"] == 110
    db = sqlite3.connect(path)
    db.execute("DELETE FROM subject_blocks WHERE block = 0 AND subject = 's_alice'")
    db.commit()
    db.close()
    trail.append(record(1100, subjects=["s_alice"]))
    # The map is signed from the entries, not from the damaged index: the report the
    # index gives now is short, and its reader sees it.
    short = _complete_report(trail, "s_alice")
    assert len(short["uses"]) == 8
    with pytest.raises(IntegrityError, match="not complete"):
        check_report(short, public_key=signer.public_key)
    report = verify(trail)
    assert (report.ok, report.table, report.block) == (False, "subject_blocks", 0)
    trail.close()


def test_a_report_signed_by_another_key_or_altered_fails(trail_factory: Factory,
                                                         signer: SigningKey) -> None:
    trail = trail_factory()
    _fill(trail)
    report = _complete_report(trail, "s_alice")
    with pytest.raises(IntegrityError, match="not the pinned key"):
        check_report(report, public_key=SigningKey.generate().public_key)
    with pytest.raises(InputError):
        check_report(report)
    with pytest.raises(InputError):
        check_report(report, key="not a key")
    bad_cp = {**report["checkpoint"], "subjects": report["checkpoint"]["subjects"] + 1}
    with pytest.raises(IntegrityError, match="validly signed"):
        check_report({**report, "checkpoint": bad_cp}, public_key=signer.public_key)
    other = _complete_report(trail, "s_bob")
    with pytest.raises(IntegrityError, match="does not name the subject"):
        check_report({**report, "uses": other["uses"]}, public_key=signer.public_key)
    with pytest.raises(IntegrityError, match="not an access report"):
        check_report({"subject": "s_alice"}, public_key=signer.public_key)


def test_check_report_from_the_command_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pacte.cli import app
    from pacte.runtime import Pacte

    data = tmp_path / "data"
    Pacte.init(data).close()
    runner = CliRunner()
    assert runner.invoke(app, ["seed", "--customers", "6", "--data", str(data)]).exit_code == 0
    with Pacte.open(data) as rt:
        cid = rt.operator_session("service").customers(first=1).items[0].id
        fingerprint = key_fingerprint(rt._backend.signer.public_key)
    out = runner.invoke(app, ["audit", "access-report", "--customer", cid, "--data", str(data)])
    assert out.exit_code == 0, out.output
    path = tmp_path / "report.json"
    path.write_text(out.stdout, encoding="utf-8")
    result = runner.invoke(app, ["audit", "check-report", str(path), "--key", fingerprint])
    assert result.exit_code == 0 and result.stdout.startswith("complete: "), result.output
    result = runner.invoke(app, ["audit", "check-report", str(path), "--data", str(data)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.stdout)
    report["uses"] = report["uses"][1:]
    path.write_text(json.dumps(report), encoding="utf-8")
    result = runner.invoke(app, ["audit", "check-report", str(path), "--key", fingerprint])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert "not complete" in result.stderr
    help_text = runner.invoke(app, ["audit", "check-report", "--help"]).stdout
    assert "Example" in help_text
