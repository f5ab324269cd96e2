"""The tamper-evident audit trail: hash chain, Merkle checkpoints, verification, reports.

    trail = AuditTrail.open(data_dir / "audit.db", signer=SigningKey.load(key_file))
    trail.append({"action": "customer.read", "principal": "pr_crm", "purpose": "service",
                  "subjects": ["s_ab12..."], "fields": ["email"], "outcome": "ok"})
    report = verify(trail, trusted=Checkpoint.from_json(exported), key=fingerprint)
    check_report(access_report(trail, "s_ab12...", policy_summary=...), key=fingerprint)
"""

from __future__ import annotations

from pacte.audit.canonical import canonical_bytes
from pacte.audit.checkpoint import Checkpoint, key_fingerprint
from pacte.audit.entry import GENESIS, AuditEntry
from pacte.audit.merkle import (
    CompactRange,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from pacte.audit.receipts import erasure_receipt, verify_receipt
from pacte.audit.reports import (
    access_report,
    check_report,
    plain_words,
    record_of_processing,
    trace,
)
from pacte.audit.subjects import SubjectMap, check_completeness
from pacte.audit.trail import AuditTrail
from pacte.audit.verify import CheckedRange, VerificationReport, parse_key, verify

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditTrail",
    "CheckedRange",
    "Checkpoint",
    "CompactRange",
    "MerkleTree",
    "SubjectMap",
    "VerificationReport",
    "access_report",
    "canonical_bytes",
    "check_completeness",
    "check_report",
    "erasure_receipt",
    "key_fingerprint",
    "leaf_hash",
    "node_hash",
    "parse_key",
    "plain_words",
    "record_of_processing",
    "root_of",
    "trace",
    "verify",
    "verify_consistency",
    "verify_inclusion",
    "verify_receipt",
]
