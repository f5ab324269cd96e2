"""The door's hands: the audit steps of a request, and the reads and writes made once
the session has decided (see pacte.graph.session, which holds the decisions).

`Access` is the base of `Session`. It records each step of a request and appends it to
the trail (G6: writes on record before they commit, denials at once, reads by the end
of the request), and it carries out the plain reads and writes the features need. It
decides nothing: which customers, fields and purposes may be used is the session's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from pacte.audit.request_entry import record
from pacte.errors import PacteError
from pacte.graph.codec import EVENT_INDEX, Codec, event_token, index_name
from pacte.graph.policy import Policy, Purpose
from pacte.graph.principals import Principal
from pacte.graph.steps import Step
from pacte.graph.store import (
    BulkLookups,
    Cursor,
    Direction,
    Edge,
    IndexEntry,
    Node,
    Reached,
    Store,
    Value,
    WriteBatch,
    reach,
)

__all__ = ["Access", "Backend"]


class Backend(Protocol):
    """What a session needs from the opened data directory (see pacte.runtime)."""

    store: Store
    codec: Codec
    policy: Policy

    def now(self) -> datetime: ...
    def begin_request(self) -> None: ...
    def subject_ref(self, customer_id: str) -> str: ...
    def ensure_keys(self, customer_ids: Sequence[str]) -> None: ...
    def shredding(self, customer_id: str) -> AbstractContextManager[None]: ...
    def audit_append(self, records: Sequence[Mapping[str, object]]) -> int: ...
    def audit_entries(self, *, subject: str | None, after_seq: int | None, limit: int,
                      **filters: Any) -> list[Any]: ...
    def audit_exclusive(self) -> contextlib.AbstractContextManager[None]: ...
    def audit_verify(self, *, progress: Callable[[int, int], object] | None = None
                     ) -> Any: ...
    def audit_trace(self, subject: str) -> list[Any]: ...
    def audit_access_report(self, subject: str, policy_summary: Mapping[str, Any]
                            ) -> dict[str, Any]: ...
    def audit_record_of_processing(self, policy_summary: Mapping[str, Any]
                                   ) -> dict[str, Any]: ...
    def sign_receipt(self, *, subject_ref: str, destroyed: Mapping[str, int],
                     requested_by: str, audit_seq: int) -> dict[str, Any]: ...


class Access:
    """A request's audit steps and plain store access; `Session` sets the state."""

    _b: Backend
    principal: Principal
    request_id: str
    _defer: bool
    _pending: list[Step]
    _refs: dict[str, str]
    _claimed: str | None
    _purpose: Purpose | None
    # Decrypts the named fields of a node: the codec's own `open`, set by the session.
    _open: Callable[[Node, Sequence[str]], dict[str, Value]]

    # -- the audit steps of a request -------------------------------------------

    def _record(self, action: str, *, outcome: str = "ok", subjects: Iterable[str] = (),
                fields: Iterable[str] = (), reason: str | None = None,
                extra: Mapping[str, object] | None = None) -> Step:
        """One step of this request, to be written into its audit entry (see `_entry`)."""
        # str(): an `Action` is a str subclass, and the trail keeps plain JSON values.
        return Step(str(action), outcome, tuple(subjects), tuple(fields), reason, extra)


    def _note(self, action: str, subjects: Sequence[str], fields: Iterable[str] = (), *,
              outcome: str = "ok") -> None:
        """`_audit(_record(...))` of a read, in one step: every read notes one."""
        step = Step(str(action), outcome, tuple(subjects), tuple(fields), None, None)
        if self._defer:
            self._pending.append(step)
        else:
            self._b.audit_append([self._entry([step])])

    def _entry(self, steps: Sequence[Step]) -> dict[str, object]:
        """The audit record of these steps: one step as it is, several merged (see
        pacte.audit.request_entry), under the request's principal, purpose and policy."""
        p = self._purpose
        principal = self.principal
        return record({
            "principal": principal.id,
            "principal_name": principal.name,
            "role": principal.role,
            "purpose": p.id if p is not None else self._claimed,
            "legal_basis": p.legal_basis if p is not None else None,
            "policy_version": self._b.policy.version,
            "request_id": self.request_id,
        }, steps, self._ref)

    def _ref(self, customer_id: str) -> str:
        ref = self._refs.get(customer_id)
        if ref is None:
            ref = self._refs[customer_id] = self._b.subject_ref(customer_id)
        return ref

    def _audit(self, step: Step) -> int | None:
        if self._defer:
            self._pending.append(step)
            return None
        return self._b.audit_append([self._entry([step])])

    def flush(self) -> None:
        """Append the deferred audit records; the response may leave only after this.

        A request's records become one entry listing each operation: one append per
        request keeps the audit off the critical path, and the entry still names
        every subject, field and outcome.
        """
        if not self._pending:
            return
        # Cleared only once appended: a failed flush leaves them for the next try.
        self._b.audit_append([self._entry(self._pending)])
        self._pending = []

    def _commit(self, batch: WriteBatch, step: Step) -> None:
        """Write `batch` once `step`, its audit record, is in the trail (G6).

        Audit before commit: the request's pending records and this one are appended
        first, and a failed append writes nothing. The reverse order could commit a
        write and then fail to record it (a pseudonym that could not be computed, a
        full disk), and nothing can take a committed write back in a store without
        a shared transaction with the trail. Should the write fail after its record,
        a second record says so: the trail may name a write that did not happen,
        never miss one that did.
        """
        self._on_record(step)
        try:
            self._b.store.write(batch)
        except BaseException as exc:
            self._failed(step, exc)
            raise

    def _on_record(self, step: Step) -> int:
        """Append the pending records and `step` as one entry now; its sequence number."""
        self._pending.append(step)
        try:
            seq = self._b.audit_append([self._entry(self._pending)])
        except BaseException:
            self._pending.pop()  # the write will not happen: its record must not follow
            raise
        self._pending = []
        return seq

    def _failed(self, step: Step, exc: BaseException, *, outcome: str = "failed") -> None:
        """Record that the write `step` announced did not happen (best effort), or with
        another `outcome`, did not fully happen."""
        code = exc.code if isinstance(exc, PacteError) else type(exc).__name__
        with contextlib.suppress(Exception):
            self._b.audit_append([self._entry([self._record(
                step.action, outcome=outcome, subjects=step.subjects, reason=code)])])

    def _deny(self, action: str, error: PacteError, *, subjects: Iterable[str] = ()) -> None:
        step = self._record(action, outcome="denied", reason=error.code, subjects=subjects)
        # Denials are appended at once, even when the request defers its audit: the
        # request is about to fail, and its refusal must be on record.
        self._pending.append(step)
        self.flush()
        raise error

    # -- reads and writes past the decisions, for the features ---------------------
    # Each is a plain read or write; the feature asks the decisions above first.

    @property
    def _policy(self) -> Policy:
        return self._b.policy

    def _read_nodes(self, ids: Sequence[str]) -> dict[str, Node]:
        return self._b.store.get_nodes(ids)

    def _edges(self, node_id: str, type: str, *, direction: Direction = "out",
               limit: int | None = None, before: Cursor | None = None) -> list[Edge]:
        return self._b.store.edges(node_id, type, direction=direction, limit=limit,
                                   before=before)

    def _edges_many(self, node_ids: Sequence[str], type: str) -> dict[str, list[Edge]]:
        return self._b.store.edges_many(node_ids, type)

    def _reach(self, node_id: str, type: str, *, limit: int | None = None,
               before: Cursor | None = None, since: int | None = None,
               then: str | None = None) -> list[Reached]:
        return reach(self._b.store, node_id, type, limit=limit, before=before, since=since,
                     then=then)

    def _index_token(self, field: str, value: str) -> bytes:
        """The blind-index token of a customer's `field` (email, phone) for `value`."""
        return self._b.codec.token("Customer", field, value)

    def _index_owners(self, field: str, token: bytes) -> list[str]:
        """The customers whose `field` has `token`: candidates, to confirm by decrypting."""
        return self._b.store.lookup(index_name("Customer", field), token)

    def _same_indexed(self, field: str, stored: Value, given: str) -> bool:
        """Whether a decrypted `field` is `given`, both normalised as the index has them."""
        return self._b.codec.same(field, stored, given)

    def _keyed_tokens(self, namespace: str, values: Sequence[str]) -> list[bytes]:
        token = self._b.codec.keyed_token
        return [token(namespace, v) for v in values]

    def _lookup_many(self, index: str, tokens: Sequence[bytes]) -> dict[bytes, list[str]]:
        return self._b.store.lookup_many(index, tokens)

    def _bulk_lookups(self) -> BulkLookups | None:
        """The store's bulk lookups, where it offers them (Neo4j: see BulkLookups)."""
        store = self._b.store
        return store if isinstance(store, BulkLookups) else None

    def _index_entries(self) -> Iterator[list[IndexEntry]]:
        return self._b.store.iter_index()

    # Merges (pacte.identity.merge): a part keeps resolving to its survivor.

    def _survivors(self, ids: Sequence[str]) -> dict[str, str]:
        """Each merged part among `ids` -> the customer it is now part of (chains
        followed: a survivor may since have been merged in turn)."""
        out: dict[str, str] = {}
        for start in ids:
            cid, seen = start, {start}
            while edges := self._b.store.edges(cid, "SAME_AS", limit=1):
                cid = edges[0].dst
                if cid in seen:
                    break  # never written so; no loop may hang a read
                seen.add(cid)
            if cid != start:
                out[start] = cid
        return out

    def _merged_parts(self, customer_id: str) -> list[str]:
        """Every part merged into the customer, directly or through another part."""
        parts: list[str] = []
        todo = [customer_id]
        while todo:
            found = [e.src for e in self._b.store.edges(todo.pop(), "SAME_AS",
                                                           direction="in")]
            new = [p for p in found if p not in parts and p != customer_id]
            parts.extend(new)
            todo.extend(new)
        return parts

    def _products_page(self, after: str | None, limit: int) -> list[Node]:
        """Catalogue products in id order after `after` (no personal data)."""
        return self._b.store.scan_nodes("Product", after=after, limit=limit)

    def _event_owners(self, event_id: str) -> list[str]:
        return self._b.store.lookup(EVENT_INDEX, event_token(event_id))

    def _event_entry(self, event_id: str, node_id: str) -> IndexEntry:
        return IndexEntry(EVENT_INDEX, event_token(event_id), node_id)

    def _owned_by(self, customer_id: str) -> list[str]:
        return self._b.store.owned_by(customer_id)

    def _counts(self) -> dict[str, int]:
        return {**self._b.store.count_nodes(), **self._b.store.count_edges()}

    def _write(self, batch: WriteBatch, step: Step, *, keys: Sequence[str]) -> None:
        """Seal `batch` under the keys of the customers `keys` and commit it (`_commit`)."""
        self._b.ensure_keys(keys)
        self._commit(self._b.codec.seal_batch(batch), step)

    def _commit_stream(self, batches: Iterable[tuple[WriteBatch, Step]], *,
                       on_batch: Callable[[WriteBatch], object] | None) -> None:
        """Seal and commit plaintext batches, each on record before its write starts.

        Batch k+1 is sealed while batch k is being written: the store's writes release
        the GIL, so the two overlap on a second core. A failed write is recorded.
        """
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pacte-ingest") as writer:
            pending: tuple[Future[None], WriteBatch, Step] | None = None
            try:
                for batch, step in batches:
                    self._b.ensure_keys([n.id for n in batch.nodes if n.kind == "Customer"])
                    sealed = self._b.codec.seal_batch(batch)
                    if pending is not None:
                        done, pending = pending, None
                        self._written(*done, on_batch)
                    self._on_record(step)
                    pending = (writer.submit(self._b.store.write, sealed), batch, step)
            except BaseException:
                # Producing the next batch failed: the one in flight is still settled,
                # so a failed write is recorded and is the error the caller sees.
                if pending is not None:
                    self._written(*pending, on_batch)
                raise
            if pending is not None:
                self._written(*pending, on_batch)

    def _written(self, write: Future[None], batch: WriteBatch, step: Step,
                 on_batch: Callable[[WriteBatch], object] | None) -> None:
        try:
            write.result()  # re-raises the store's error here
        except BaseException as exc:
            self._failed(step, exc)
            raise
        if on_batch is not None:
            on_batch(batch)

    def _shred(self, customer_id: str, owned: Sequence[str], step: Step, *,
               parts: Sequence[str] = ()) -> int:
        """Destroy a customer's keys (and those of the `parts` merged into it) and delete
        `owned`, once `step` is on record in an entry of its own (see `_commit`); that
        entry's sequence number."""
        self.flush()
        seq = self._on_record(step)
        deleted = False
        try:
            # Keys first: once they are gone every ciphertext of this customer, including
            # copies in backups, is unreadable, even if the deletion below is interrupted.
            # Until the files are scrubbed on leaving the block, the erasure is pending
            # and an open after a crash or failure finishes it.
            with contextlib.ExitStack() as shredding:
                for cid in (customer_id, *parts):
                    shredding.enter_context(self._b.shredding(cid))
                self._b.store.write(WriteBatch(delete_nodes=list(owned)))
                deleted = True
        except Exception as exc:
            if not deleted:
                self._failed(step, exc)
                raise
            # Deleted, keys gone; only rewriting the files failed (readers kept them
            # busy): on record as such, not as a failed erasure, and retried on open.
            self._failed(step, exc, outcome="scrub_pending")
        except BaseException as exc:
            if not deleted:
                self._failed(step, exc)
            raise
        return seq

    def _sign_receipt(self, *, subject_ref: str, destroyed: Mapping[str, int],
                      requested_by: str, audit_seq: int) -> dict[str, Any]:
        return self._b.sign_receipt(subject_ref=subject_ref, destroyed=destroyed,
                                    requested_by=requested_by, audit_seq=audit_seq)

    def _audit_now(self, step: Step) -> None:
        """Append `step` with the pending records at once, even when deferring."""
        self._pending.append(step)
        self.flush()

    def _trail_entries(self, *, subject: str | None, after_seq: int | None, limit: int,
                       **filters: Any) -> list[Any]:
        return self._b.audit_entries(subject=subject, after_seq=after_seq, limit=limit,
                                     **filters)

    def _trail_exclusive(self) -> AbstractContextManager[None]:
        return self._b.audit_exclusive()

    def _trail_verify(self, *, progress: Callable[[int, int], object] | None = None
                      ) -> Any:
        return self._b.audit_verify(progress=progress)

    def _trail_trace(self, subject: str) -> list[Any]:
        return self._b.audit_trace(subject)

    def _trail_access_report(self, subject: str, policy_summary: Mapping[str, Any]
                             ) -> dict[str, Any]:
        return self._b.audit_access_report(subject, policy_summary)

    def _trail_processing(self, policy_summary: Mapping[str, Any]) -> dict[str, Any]:
        return self._b.audit_record_of_processing(policy_summary)
