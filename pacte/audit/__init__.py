"""The tamper-evident audit trail: hash chain, Merkle checkpoints, verification, reports.

    trail = AuditTrail.open(data_dir / "audit.db", signer=SigningKey.load(key_file))
    trail.append({"action": "customer.read", "principal": "pr_crm", "purpose": "service",
                  "subjects": ["s_ab12..."], "fields": ["email"], "outcome": "ok"})
    report = verify(trail, trusted=Checkpoint.from_json(exported))
"""

from __future__ import annotations

from pacte.audit.canonical import canonical_bytes
from pacte.audit.checkpoint import Checkpoint
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
from pacte.audit.reports import access_report, plain_words, record_of_processing, trace
from pacte.audit.trail import GENESIS, AuditEntry, AuditTrail
from pacte.audit.verify import CheckedRange, VerificationReport, verify

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditTrail",
    "CheckedRange",
    "Checkpoint",
    "CompactRange",
    "MerkleTree",
    "VerificationReport",
    "access_report",
    "canonical_bytes",
    "erasure_receipt",
    "leaf_hash",
    "node_hash",
    "plain_words",
    "record_of_processing",
    "root_of",
    "trace",
    "verify",
    "verify_consistency",
    "verify_inclusion",
    "verify_receipt",
]
