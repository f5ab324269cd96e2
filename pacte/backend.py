"""What sessions need of an opened data directory, below the door: the store, the codec,
the key vault, the audit trail (pacte.trails), the policy, and the bookkeeping of
erasures under way.

Private to `Pacte` (pacte.runtime): callers get sessions and the audited operations of
`pacte.admin`, never this (G10); tests reach it as `rt._backend`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pacte.audit import AuditTrail, erasure_receipt, record_of_processing
from pacte.clock import Clock
from pacte.crypto import BlindIndex, FieldCipher, KeyVault, SigningKey
from pacte.erasing import erasure_locks
from pacte.erasure_log import LOG_FILE as ERASURE_LOG_FILE
from pacte.erasure_log import ErasureLog, applied, restored
from pacte.errors import KeyVaultError, StorageError
from pacte.graph.codec import Codec
from pacte.graph.key_cache import STAMP_FILE as REVOCATION_STAMP_FILE
from pacte.graph.key_cache import revocation_stamp
from pacte.graph.operations import Role
from pacte.graph.policy import Policy
from pacte.graph.principals import Principal, PrincipalRegistry
from pacte.graph.store import Node, Store, WriteBatch
from pacte.metrics import Metrics
from pacte.trails import Trail

if TYPE_CHECKING:
    from pacte.audit.shared_trail import SharedTrail

__all__ = ["OPERATOR", "Backend"]

# The command line acts as this built-in administrator: operators are on the machine
# that holds the key file, and their actions are audited under this name. It may claim
# every purpose of the policy (`operator_session`), a purpose added to it included.
OPERATOR = Principal(id="pr_operator", name="operator", role=Role.ADMIN.value, purposes=())


class Backend:
    """The `Backend` protocol of pacte.graph.access, over one opened data directory."""

    def __init__(self, data_dir: Path, *, store: Store, vault: KeyVault, audit: Trail,
                 signer: SigningKey, policy: Policy, now: Clock, metrics: Metrics,
                 erasure_log: Path | None = None) -> None:
        self.data_dir = data_dir
        # Kept apart from the store and the vault, applied again on open (pacte.erasure_log).
        self.erasure_log = ErasureLog(erasure_log or data_dir / ERASURE_LOG_FILE, vault)
        self.metrics = metrics
        self.store = store
        self.vault = vault
        self.trail = audit
        self.signer = signer
        self.policy = policy
        self._now = now
        self.cipher = FieldCipher(vault)
        self.codec = Codec(self.cipher, BlindIndex(vault),
                           today=lambda: self._now().date().isoformat())
        # Every process reads the stamp per request; revocations move it. A file in the
        # data directory where one is shared (SQLite: one machine); in the store itself
        # otherwise, since servers on other machines have directories of their own.
        self.principals = PrincipalRegistry(store, policy, stamp=revocation_stamp(
            store, data_dir / REVOCATION_STAMP_FILE))
        self.erasures = erasure_locks(store, data_dir)

    @property
    def audit(self) -> AuditTrail | SharedTrail:
        """The trail itself (audit.db, or this process's writer of the shared one)."""
        trail: AuditTrail | SharedTrail = cast(Any, self.trail).raw
        return trail

    def sync_purposes(self) -> None:
        """Mirror the policy's purposes as Purpose nodes, the targets of consent edges."""
        nodes = [
            Node("Purpose", p.id, {"parent": p.parent, "legal_basis": p.legal_basis,
                                   "description": p.description})
            for p in self.policy.purposes.values()
        ]
        self.store.write(WriteBatch(nodes=nodes))

    def now(self) -> datetime:
        return self._now()

    def begin_request(self) -> None:
        self.vault.sync()

    def subject_ref(self, customer_id: str) -> str:
        return self.vault.subject_ref(customer_id)

    def ensure_keys(self, customer_ids: Sequence[str]) -> None:
        if customer_ids:
            self.vault.data_keys(list(customer_ids), create=True)

    @contextlib.contextmanager
    def shredding(self, customer_id: str) -> Iterator[None]:
        """Destroy the customer's keys; the body deletes their nodes; then scrub the files.

        The vault notes the erasure as pending in the same transaction as the
        destruction, and the note goes once both files are rewritten, so an erasure
        interrupted anywhere (a crash, a failed deletion, files that readers kept
        busy) is finished on a later open. From before the destruction until then,
        this process holds the erasure's lock: that is how an open tells an erasure
        under way from one whose process is gone (pacte.erasing).
        """
        with self.erasures.erasing(customer_id):
            self.erasure_log.append([self.subject_ref(customer_id)], at=self._now())
            self.vault.destroy(customer_id, pending=True)
            yield
            self._scrub(customer_id)

    def _scrub(self, customer_id: str) -> None:
        scrub = getattr(self.store, "scrub", None)  # a file store (SQLite); not Neo4j
        if scrub is not None:
            scrub()
        self.vault.erasure_finished(customer_id)

    def finish_erasures(self) -> None:
        """Finish erasures whose process is gone (a crash, or a failure it left pending).

        Their nodes could no longer be decrypted, so every list page holding them
        failed; they are deleted now, the files rewritten, and the completion audited.
        An erasure's process holds its lock while it runs, and loses it when it dies
        (pacte.erasing): an erasure whose lock cannot be taken is under way, and left
        to its process (or a later open). Files that still cannot be rewritten
        (readers keep them busy) leave the erasure pending and the directory usable.
        """
        for customer_id in self.vault.erasures_pending():
            with self.erasures.abandoned(customer_id) as abandoned:
                # Asked again under the lock: its process may have finished meanwhile.
                if abandoned and customer_id in self.vault.erasures_pending():
                    self._resume(customer_id)

    def _resume(self, customer_id: str) -> None:
        owned = self.store.owned_by(customer_id)
        if owned:
            self.store.write(WriteBatch(delete_nodes=owned))
        try:
            self._scrub(customer_id)
        except (StorageError, KeyVaultError):
            return
        self.audit_append([self.system_record(
            "customer.erase", outcome="resumed",
            extra={"subjects": [self.subject_ref(customer_id)], "deleted_nodes": len(owned)})])

    def reapply_erasures(self) -> None:
        """Erase again the customers of the erasure log that a restore of an older store
        or vault brought back (pacte.erasure_log), each audited as `reapplied`. Like
        `finish_erasures`, left to a later open while an erasure is under way."""
        with self.erasures.quiet() as held:
            if not held:
                return
            customers, count = restored(self.erasure_log, vault=self.vault,
                                        store=self.store, now=self._now())
            # A pending erasure is under way (its log line written, its nodes not yet
            # deleted), or left to `finish_erasures`: not one a restore brought back.
            pending = set(self.vault.erasures_pending())
            for customer_id in (c for c in customers if c not in pending):
                owned = self.store.owned_by(customer_id)
                self.audit_append([self.system_record(  # on record first (G6)
                    "customer.erase", outcome="reapplied",
                    extra={"subjects": [self.subject_ref(customer_id)],
                           "deleted_nodes": len(owned)})])
                self.vault.destroy(customer_id, pending=True)
                if owned:
                    self.store.write(WriteBatch(delete_nodes=owned))
                try:
                    self._scrub(customer_id)
                except (StorageError, KeyVaultError):
                    # Keys and nodes are gone; left pending, `finish_erasures` rewrites
                    # the files later. The next restored customer must not wait for it.
                    continue
            applied(self.store, count)

    def audit_append(self, records: Sequence[Mapping[str, object]]) -> int:
        """Append records in one transaction; the sequence number of the last one."""
        start = time.perf_counter()
        try:
            return self.trail.append(records)
        finally:
            self.metrics.audit_append(time.perf_counter() - start)

    def audit_entries(self, *, subject: str | None, after_seq: int | None, limit: int,
                      **filters: Any) -> list[Any]:
        return self.trail.entries(subject=subject, after_seq=after_seq, limit=limit, **filters)

    def audit_exclusive(self) -> contextlib.AbstractContextManager[None]:
        return self.trail.exclusive()

    def audit_verify(self, *, progress: Callable[[int, int], object] | None = None) -> Any:
        # Pinned to this server's signing key.
        report = self.trail.verify(public_key=self.signer.public_key, progress=progress)
        self.metrics.verified(report.ok)
        return report

    def audit_trace(self, subject: str) -> list[Any]:
        return self.trail.trace(subject)

    def audit_access_report(self, subject: str, policy_summary: Mapping[str, Any]
                            ) -> dict[str, Any]:
        return self.trail.access_report(subject, policy_summary, now=self._now)

    def audit_record_of_processing(self, policy_summary: Mapping[str, Any]) -> dict[str, Any]:
        return record_of_processing(policy_summary, now=self._now)

    def sign_receipt(self, *, subject_ref: str, destroyed: Mapping[str, int],
                     requested_by: str, audit_seq: int) -> dict[str, Any]:
        return erasure_receipt(self.signer, subject_ref=subject_ref, destroyed=destroyed,
                               requested_by=requested_by, audit_seq=audit_seq, now=self._now)

    def system_record(self, action: str, *, outcome: str = "ok", reason: str | None = None,
                       extra: Mapping[str, object] | None = None) -> dict[str, object]:
        rec: dict[str, object] = {
            "action": action, "principal": OPERATOR.id, "principal_name": OPERATOR.name,
            "role": OPERATOR.role, "purpose": None, "legal_basis": None, "subjects": [],
            "fields": [], "outcome": outcome, "policy_version": self.policy.version,
            "request_id": None,
        }
        if reason is not None:
            rec["reason"] = reason
        if extra:
            rec.update(extra)
        return rec
