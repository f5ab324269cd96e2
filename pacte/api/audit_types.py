"""GraphQL types over the audit trail: entries, verification reports, erasure receipts.

Audit entries hold no personal data by construction (pseudonymous subject references,
field names), so they are returned as recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import strawberry
from strawberry.scalars import JSON

from pacte.api.enums import Outcome, Role, enum_value

__all__ = ["AuditEntry", "AuditVerification", "ErasureReceipt"]


class _Entry(Protocol):
    seq: int
    time: str
    record: Mapping[str, Any]
    entry_hash: bytes
    prev_hash: bytes


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _json(value: object) -> JSON:
    return cast(JSON, value)


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(0, tz=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@strawberry.type(description="One use of data (or a refusal), as the audit trail recorded it.")
class AuditEntry:
    seq: int
    at: datetime
    action: str
    outcome: Outcome
    principal: str | None = strawberry.field(description="The principal's id.")
    principal_name: str | None = strawberry.field(description="The app or person, by name.")
    role: Role | None
    purpose: str | None
    legal_basis: str | None
    subjects: list[str] = strawberry.field(
        description="Pseudonymous references of the customers concerned.")
    fields: list[str] = strawberry.field(description="Names of the fields used.")
    reason: str | None
    policy_version: str | None
    request_id: str | None
    entry_hash: str = strawberry.field(
        description="Hex SHA-256(0x00 || previousHash || the canonical entry): the entry's "
                    "link in the hash chain and its leaf in the Merkle tree.")
    previous_hash: str = strawberry.field(description="Hex hash of the entry before this one.")
    record: JSON = strawberry.field(description="The whole recorded entry.")

    @classmethod
    def from_entry(cls, entry: _Entry) -> AuditEntry:
        r = entry.record
        return cls(
            seq=entry.seq, at=_time(entry.time),
            action=_str(r.get("action")) or "",
            outcome=enum_value(Outcome, r.get("outcome"), default=Outcome.other) or Outcome.other,
            principal=_str(r.get("principal")), principal_name=_str(r.get("principal_name")),
            role=enum_value(Role, r.get("role")), purpose=_str(r.get("purpose")),
            legal_basis=_str(r.get("legal_basis")), subjects=_strings(r.get("subjects")),
            fields=_strings(r.get("fields")), reason=_str(r.get("reason")),
            policy_version=_str(r.get("policy_version")), request_id=_str(r.get("request_id")),
            entry_hash=entry.entry_hash.hex(), previous_hash=entry.prev_hash.hex(),
            record=_json(dict(r)),
        )


class _Report(Protocol):
    ok: bool
    size: int
    entries_checked: int
    checkpoints_valid: int
    checkpoints_total: int
    first_bad: int | None
    reason: str | None

    def lines(self) -> list[str]: ...
    def to_json(self) -> dict[str, Any]: ...


@strawberry.type(description="The result of verifying the whole audit trail.")
class AuditVerification:
    ok: bool
    size: int
    entries_checked: int
    checkpoints_valid: int
    checkpoints_total: int
    first_bad: int | None = strawberry.field(description="The first entry that fails, if any.")
    reason: str | None
    lines: list[str] = strawberry.field(
        description="The report, as `pacte audit verify` prints it.")
    report: JSON

    @classmethod
    def from_report(cls, report: _Report) -> AuditVerification:
        return cls(ok=report.ok, size=report.size, entries_checked=report.entries_checked,
                   checkpoints_valid=report.checkpoints_valid,
                   checkpoints_total=report.checkpoints_total, first_bad=report.first_bad,
                   reason=report.reason, lines=list(report.lines()),
                   report=_json(report.to_json()))


@strawberry.type(description="Signed proof that a customer was erased; holds no personal data.")
class ErasureReceipt:
    subject: str = strawberry.field(
        description="The pseudonymous reference of the erased customer.")
    destroyed: JSON = strawberry.field(description="How many records of each kind.")
    requested_by: str
    audit_seq: int
    time: datetime
    key_id: str | None
    signature: str | None = strawberry.field(description="Ed25519, base64.")
    receipt: JSON = strawberry.field(description="The whole receipt, as signed.")

    @classmethod
    def from_receipt(cls, receipt: Mapping[str, Any]) -> ErasureReceipt:
        seq = receipt.get("audit_seq")
        return cls(subject=_str(receipt.get("subject")) or "",
                   destroyed=_json(receipt.get("destroyed") or {}),
                   requested_by=_str(receipt.get("requested_by")) or "",
                   audit_seq=seq if isinstance(seq, int) else -1,
                   time=_time(_str(receipt.get("time")) or ""),
                   key_id=_str(receipt.get("key_id")), signature=_str(receipt.get("signature")),
                   receipt=_json(dict(receipt)))
