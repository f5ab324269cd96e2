"""The purpose-bound session: the one door to customer data (G2-G6, G10).

A `Session` is bound to one principal and one declared purpose for one request. It
refuses what the policy refuses, hides customers without an active consent from
everything (lookups, lists, counts, traversals, error texts), decrypts only the
fields the purpose may use, cuts interactions at the purpose's retention, and
writes an audit entry for every read, write and denial before returning.

Nothing is cached across sessions: consent is read from the store on each request,
so a withdrawal holds from the next request on, on every process (G5). Within one
session, consent states are memoised, since a session is one request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from pacte.clock import (
    EARLIEST,
    LATEST,
    check_micros,
    from_micros,
    input_micros,
    to_micros,
)
from pacte.errors import (
    Conflict,
    Forbidden,
    InputError,
    NotFound,
    PacteError,
    PrivacyBudgetSpent,
    PurposeNotGranted,
    PurposeRequired,
)
from pacte.graph.codec import EVENT_INDEX, Codec, event_token, index_name
from pacte.graph.consent import ConsentState, Decision, consent_states, decide, decisions
from pacte.graph.model import (
    CHANNELS,
    INTERACTION_KINDS,
    MERGED_PART,
    NODE_KINDS,
    PART_CONSENT,
    ConsentStatus,
    Field,
    NodeKind,
)
from pacte.graph.policy import Policy, Purpose
from pacte.graph.principals import Principal
from pacte.graph.store import (
    Cursor,
    Edge,
    Hop,
    IndexEntry,
    Node,
    Store,
    Value,
    WriteBatch,
    decode_cursor,
    encode_cursor,
)
from pacte.graph.views import (
    ConsentChange,
    ConsentView,
    CustomerView,
    DeviceView,
    Explanation,
    InteractionView,
    Page,
    ProductView,
    ProjectedCustomer,
    Withheld,
)

__all__ = ["Backend", "MergeGraph", "Session"]

_DAY_US = 86_400 * 1_000_000
_MAX_PAGE = 100
# Recommendations and other aggregates rest on at least this many people (k-anonymity).
MIN_SUPPORT = 5
# The purpose recommendations serve, and how many recent buyers per product they read.
RECOMMENDATIONS = "personalization"
_NEIGHBOURHOOD = 200
_MAX_ID = 100


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
    def audit_entries(self, *, subject: str | None, after_seq: int | None, limit: int
                      ) -> list[Any]: ...
    def audit_exclusive(self) -> contextlib.AbstractContextManager[None]: ...
    def audit_verify(self) -> Any: ...
    def audit_trace(self, subject: str) -> list[Any]: ...
    def audit_access_report(self, subject: str, policy_summary: Mapping[str, Any]
                            ) -> dict[str, Any]: ...
    def audit_record_of_processing(self, policy_summary: Mapping[str, Any]
                                   ) -> dict[str, Any]: ...
    def sign_receipt(self, *, subject_ref: str, destroyed: Mapping[str, int],
                     requested_by: str, audit_seq: int) -> dict[str, Any]: ...


_CUSTOMER = NODE_KINDS["Customer"]
_INTERACTION = NODE_KINDS["Interaction"]
_DEVICE = NODE_KINDS["Device"]
# The field names a caller may ask for by name (`fields=`), per kind.
_KNOWN = {kind.name: frozenset(f.name for f in kind.fields) for kind in NODE_KINDS.values()}
# The categories that relations carry: purchases are financial, devices are device data.
_PURCHASES = "user.financial"
_BEHAVIOUR = "user.behavior"
_DEVICES = "user.device"
_CONSENT_WRITERS = ("app", "admin")


class Session:
    """One request's access to the graph, bound to a principal and a purpose.

    Create it through `Pacte.session(principal, purpose)`. With `defer_audit=True`
    the audit records of the request are kept and appended by `flush()`, which the
    caller must run before the response leaves (the GraphQL app does this).
    """

    def __init__(
        self,
        backend: Backend,
        principal: Principal,
        purpose: str | None,
        *,
        request_id: str | None = None,
        defer_audit: bool = False,
    ) -> None:
        self._b = backend
        # Drops key caches another process invalidated (an erasure elsewhere), so no
        # cache outlives it (G5).
        backend.begin_request()
        self.principal = principal
        self.request_id = request_id or secrets.token_hex(16)
        self._defer = defer_audit
        self._pending: list[_Step] = []
        self._consents: dict[str, dict[str, ConsentState]] = {}
        # Customer nodes read in this request (None: absent); a request touches the
        # same customer from several resolvers, and one read serves them all.
        self._nodes: dict[str, Node | None] = {}
        # Ids read in this request that are parts of a merged customer (issue #17).
        self._parts: set[str] = set()
        # Customers found visible under this purpose in this request (consent is read
        # once per request; a write to a customer drops it, see _forget).
        self._visible: dict[str, Node] = {}
        self._refs: dict[str, str] = {}
        self._now_us = to_micros(backend.now())
        # What the caller claimed, as the trail and messages may repeat it: anything
        # but a short purpose-like name is recorded as its hash (see _claim).
        self._claimed = _claim(purpose)
        self._purpose: Purpose | None = None
        self._purpose = self._admit(purpose)

    @property
    def purpose(self) -> Purpose:
        assert self._purpose is not None  # set by __init__, or __init__ raised
        return self._purpose

    # -- admission and audit --------------------------------------------------

    def _admit(self, purpose_id: str | None) -> Purpose:
        policy = self._b.policy
        if not purpose_id:
            self._deny("session.open", PurposeRequired("a purpose is required"))
        assert purpose_id is not None
        purpose = policy.get(purpose_id)
        if purpose is None or not self.principal.may_claim(purpose_id) or self.principal.revoked:
            # One message for unknown and not granted: which purposes exist is not a secret,
            # but the refusal should not differ in shape.
            self._deny("session.open", PurposeNotGranted(
                f"purpose {self._claimed!r} is not granted to this principal"))
        assert purpose is not None
        if purpose.analysts_only and self.principal.role not in ("analyst", "admin"):
            self._deny("session.open", PurposeNotGranted(
                f"purpose {self._claimed!r} is for analysts only"))
        return purpose

    def _record(self, action: str, *, outcome: str = "ok", subjects: Iterable[str] = (),
                fields: Iterable[str] = (), reason: str | None = None,
                extra: Mapping[str, object] | None = None) -> _Step:
        """One step of this request, to be written into its audit entry (see `_entry`)."""
        return _Step(action, outcome, tuple(subjects), tuple(fields), reason, extra)

    def _entry(self, steps: Sequence[_Step]) -> dict[str, object]:
        """The audit record of these steps: one step as it is, several merged.

        Merged, the record holds the union of subjects and fields and lists each step
        with only what the request as a whole does not already say: its action, its
        fields, and its subjects or outcome where they differ. The entry stays short,
        and every step is still on record.
        """
        p = self._purpose
        principal = self.principal
        rec: dict[str, object] = {
            "principal": principal.id,
            "principal_name": principal.name,
            "role": principal.role,
            "purpose": p.id if p is not None else self._claimed,
            "legal_basis": p.legal_basis if p is not None else None,
            "policy_version": self._b.policy.version,
            "request_id": self.request_id,
        }
        ref = self._ref
        if len(steps) == 1:
            step = steps[0]
            rec["action"] = step.action
            rec["subjects"] = sorted({ref(c) for c in step.subjects})
            rec["fields"] = _names(step.fields)
            rec["outcome"] = step.outcome
            if step.reason is not None:
                rec["reason"] = step.reason
            if step.extra:
                rec.update(step.extra)
            return rec
        ids = {c for step in steps for c in step.subjects}
        subjects = sorted({ref(c) for c in ids})
        operations: list[dict[str, object]] = []
        outcome = "ok"
        for step in steps:
            op: dict[str, object] = {"action": step.action}
            if step.fields:
                op["fields"] = _names(step.fields)
            if step.subjects and set(step.subjects) != ids:
                op["subjects"] = sorted({ref(c) for c in step.subjects})
            if step.outcome != "ok":
                op["outcome"] = step.outcome
                if outcome == "ok":
                    outcome = step.outcome
            if step.reason is not None:
                op["reason"] = step.reason
            if step.extra:
                op.update(step.extra)
            operations.append(op)
        rec["action"] = "request"
        rec["operations"] = operations
        rec["subjects"] = subjects
        rec["fields"] = _names(tuple(f for step in steps for f in step.fields))
        rec["outcome"] = outcome
        return rec

    def _ref(self, customer_id: str) -> str:
        ref = self._refs.get(customer_id)
        if ref is None:
            ref = self._refs[customer_id] = self._b.subject_ref(customer_id)
        return ref

    def _audit(self, step: _Step) -> int | None:
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

    def _commit(self, batch: WriteBatch, step: _Step) -> None:
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

    def _on_record(self, step: _Step) -> int:
        """Append the pending records and `step` as one entry now; its sequence number."""
        self._pending.append(step)
        try:
            seq = self._b.audit_append([self._entry(self._pending)])
        except BaseException:
            self._pending.pop()  # the write will not happen: its record must not follow
            raise
        self._pending = []
        return seq

    def _failed(self, step: _Step, exc: BaseException) -> None:
        """Record that the write `step` announced did not happen (best effort)."""
        code = exc.code if isinstance(exc, PacteError) else type(exc).__name__
        with contextlib.suppress(Exception):
            self._b.audit_append([self._entry([self._record(
                step.action, outcome="failed", subjects=step.subjects, reason=code)])])

    def _deny(self, action: str, error: PacteError, *, subjects: Iterable[str] = ()) -> None:
        step = self._record(action, outcome="denied", reason=error.code, subjects=subjects)
        # Denials are appended at once, even when the request defers its audit: the
        # request is about to fail, and its refusal must be on record.
        self._pending.append(step)
        self.flush()
        raise error

    def _require_role(self, action: str, *roles: str) -> None:
        if self.principal.role not in roles:
            self._deny(action, Forbidden(
                f"role {self.principal.role!r} may not {action.replace('.', ' ')}"))

    def _require_purpose(self, action: str, *purposes: str) -> None:
        if self.purpose.id not in purposes:
            self._deny(action, PurposeNotGranted(
                f"{action.replace('.', ' ')} must be requested under "
                + " or ".join(repr(p) for p in purposes)))

    # -- consent and visibility -----------------------------------------------

    def _consent_map(self, customer_ids: Sequence[str]) -> dict[str, dict[str, ConsentState]]:
        missing = [c for c in customer_ids if c not in self._consents]
        if missing:
            edges = self._b.store.edges_many(missing, "CONSENTED")
            for cid in missing:
                self._consents[cid] = consent_states(edges[cid], at=self._now_us)
        return {c: self._consents[c] for c in customer_ids}

    def _covered(self, states: Mapping[str, ConsentState]) -> bool:
        # The one rule (pacte.graph.consent.decide): every visibility check asks it.
        return decide(self._b.policy, self.purpose.id, states).granted

    def _visible_ids(self, customer_ids: Sequence[str]) -> list[str]:
        """The ids, in order, of customers this purpose may see (opt-in, G3)."""
        if not self.purpose.needs_consent:
            return list(customer_ids)
        states = self._consent_map(customer_ids)
        return [c for c in customer_ids if self._covered(states[c])]

    def _customer_nodes(self, ids: Sequence[str], *, memo: bool = True) -> dict[str, Node]:
        missing = [i for i in ids if i not in self._nodes] if memo else list(ids)
        if missing:
            found = self._b.store.get_nodes(missing)
            if not memo:
                return {i: n for i, n in found.items() if n.kind == "Customer"}
            for i in missing:
                n = found.get(i)
                self._nodes[i] = n if n is not None and n.kind == "Customer" else None
                if n is not None and n.kind == MERGED_PART:
                    self._parts.add(i)
        return {i: n for i in ids if (n := self._nodes.get(i)) is not None}

    def _forget(self, customer_id: str) -> None:
        """Drop what this request remembers of a customer it has just changed."""
        self._nodes.pop(customer_id, None)
        self._visible.pop(customer_id, None)
        self._consents.pop(customer_id, None)

    def _visible_customers(self, ids: Sequence[str]) -> list[Node]:
        if len(ids) == 1 and (seen := self._visible.get(ids[0])) is not None:
            return [seen]  # the common case: one customer, already read in this request
        nodes = self._customer_nodes(ids)
        absent = next((i for i in ids if i not in nodes), None)
        present = [i for i in ids if i in nodes]
        keep = self._visible_ids(present)
        if self.purpose.needs_consent:
            if absent is not None:
                self._decoy_read(absent)
            elif len(keep) < len(present):
                # A hidden customer pays the other reads an absent one costs: a failed
                # read and a scan (see `_decoy_read`).
                self._b.store.get_nodes([_NO_CUSTOMER])
                self._b.store.scan_nodes("Customer", after=present[0], limit=1)
        found = [nodes[i] for i in keep]
        for node in found:
            self._visible[node.id] = node
        return found

    def _decoy_read(self, absent: str) -> None:
        """For an id that does not exist, the reads a hidden customer costs (G3, timing).

        A customer who did not opt in costs a node read and a read of their consents;
        one who does not exist would cost a failed read only, and the difference shows
        in response times. So the next customer in id order (or the first) is read in
        its place, node and consents, and nothing of it is used or returned; a hidden
        customer pays the failed read and the scan in turn (see `_visible_customers`),
        so both make the same reads.
        """
        store = self._b.store
        decoy = store.scan_nodes("Customer", after=absent, limit=1) \
            or store.scan_nodes("Customer", limit=1)
        if decoy:
            # The same reads and checks as for a hidden one, results unused.
            store.get_nodes([decoy[0].id])
            self._visible_ids([decoy[0].id])

    def _no_single_records(self, action: str) -> None:
        if self.principal.role == "analyst":
            self._deny(action, Forbidden("analysts receive projections, never single records"))

    # -- field gating ---------------------------------------------------------

    def _reason(self, f: Field) -> str | None:
        """Why `f` is withheld under this session, or None when it may be returned."""
        if f.category is None:
            return None
        if self.principal.role == "auditor":
            return "auditors never receive personal fields"
        if not self.purpose.may_use(f.category):
            return f"purpose {self.purpose.id} may not use {f.category}"
        return None

    def _split(self, fields: tuple[Field, ...]) -> tuple[list[str], tuple[Withheld, ...]]:
        """The names of `fields` this session may return, and the withheld ones with why."""
        # The answer depends only on the policy version, role, purpose and kind, so it is
        # shared by every request with the same ones.
        # Keyed by the tuple's id for speed (hashing the fields costs ten times more); the
        # entry keeps the tuple itself, so while it is cached its id cannot be reused by
        # another tuple, and the identity check refuses any other tuple all the same.
        key = (self._b.policy.version, self.principal.role, self.purpose.id, id(fields))
        known = _SPLITS.get(key)
        if known is not None and known[0] is fields:
            return known[1]
        answer = self._compute_split(fields)
        if len(_SPLITS) < _MAX_NAMES:
            _SPLITS[key] = (fields, answer)
        return answer

    def _compute_split(self, fields: tuple[Field, ...]) -> tuple[list[str], tuple[Withheld, ...]]:
        allowed: list[str] = []
        withheld: list[Withheld] = []
        for f in fields:
            reason = self._reason(f)
            if reason is None:
                allowed.append(f.name)
            else:
                withheld.append(Withheld(f.name, reason))
        return allowed, tuple(withheld)

    def _category_ok(self, category: str) -> bool:
        # Depends only on the policy version, role and purpose, like `_split`.
        key = (self._b.policy.version, self.principal.role, self.purpose.id, category)
        ok = _CATEGORY_OK.get(key)
        if ok is None:
            ok = self.principal.role != "auditor" and self.purpose.may_use(category)
            if len(_CATEGORY_OK) < _MAX_NAMES:
                _CATEGORY_OK[key] = ok
        return ok

    def _pick(self, kind: NodeKind, fields: Collection[str] | None) -> list[str] | None:
        """The names among `fields` this session may open (None: every one it may).

        A field the purpose may not use is left out whatever is asked (G4); `_split`
        still reports it as withheld, with why.
        """
        if fields is None:
            return None
        known = _KNOWN[kind.name]
        unknown = [repr(f) for f in fields if f not in known]
        if unknown:
            raise InputError(f"unknown {kind.name} field {', '.join(sorted(unknown))}; "
                             f"one of {', '.join(f.name for f in kind.fields)}")
        allowed, _ = self._split(kind.fields)
        return [n for n in allowed if n in fields]

    def _customer_view(self, node: Node, names: list[str] | None = None, *,
                       opened: Mapping[str, Value] | None = None) -> CustomerView:
        """The view of `node`; `opened` holds fields already decrypted, not opened again."""
        allowed, withheld = self._split(_CUSTOMER.fields)
        wanted = allowed if names is None else names
        if not opened:
            return CustomerView(node.id, self._b.codec.open(node, wanted), withheld)
        rest = self._b.codec.open(node, [n for n in wanted if n not in opened])
        return CustomerView(node.id, {n: opened[n] if n in opened else rest[n] for n in wanted},
                            withheld)

    # -- reading together ------------------------------------------------------

    def read_scope(self) -> AbstractContextManager[None]:
        """A block (one request) whose reads may be answered from what `prefetch` read.

        On a store that fetches neighbourhoods (Neo4j, where every read is a round trip
        to the server) the block's reads are answered from them; on SQLite, whose reads
        are local, it changes nothing. Either way every read is still checked against
        the purpose, consent and retention, and audited, as anywhere else.
        """
        return self._b.store.read_scope()

    def prefetch(self, customer_id: str) -> None:
        """Inside `read_scope`, read a customer's 360 neighbourhood in one round trip.

        What it reads (the customer, the newest interactions with their products, the
        purchases, the consents) is returned to nobody: the reads that follow take what
        they may from it. Outside a scope, or on a store without one, it does nothing.
        """
        _check_id(customer_id)
        self._b.store.prefetch(customer_id, _C360_HOPS[
            self._category_ok(_BEHAVIOUR), self._category_ok(_PURCHASES)])

    def around(self, customer_id: str) -> AbstractContextManager[None]:
        """`read_scope` with `prefetch(customer_id)` done first."""
        return _Around(self, customer_id)

    # -- reads ----------------------------------------------------------------

    def customer(self, customer_id: str, *, fields: Collection[str] | None = None
                 ) -> CustomerView | None:
        """One customer, or None when absent or not visible under this purpose.

        `fields` names the fields to open (default: every one the purpose may use).
        """
        self._no_single_records("customer.read")
        _check_id(customer_id)
        names = self._pick(_CUSTOMER, fields)
        found = self._visible_customers([customer_id])
        if not found and customer_id in self._parts:  # merged: the survivor answers
            customer_id = self._survivors([customer_id])[customer_id]
            found = self._visible_customers([customer_id])
        view = self._customer_view(found[0], names) if found else None
        self._audit(self._record(
            "customer.read", subjects=[customer_id], outcome="ok" if view else "not_found",
            fields=view.fields.keys() if view else ()))
        return view

    def customers_by_id(self, customer_ids: Sequence[str], *,
                        fields: Collection[str] | None = None) -> dict[str, CustomerView]:
        """Many customers in one round trip (for DataLoaders); invisible ones are absent."""
        self._no_single_records("customer.read")
        ids = list(dict.fromkeys(customer_ids))
        for cid in ids:
            _check_id(cid)
        names = self._pick(_CUSTOMER, fields)
        views = {n.id: self._customer_view(n, names) for n in self._visible_customers(ids)}
        merged = self._survivors([i for i in ids if i in self._parts])
        if merged:  # a merged part's id answers with its survivor
            views.update((n.id, self._customer_view(n, names)) for n in
                         self._visible_customers(sorted(set(merged.values()) - set(views))))
            views.update((i, views[s]) for i, s in merged.items() if s in views)
        opened = next(iter(views.values())).fields.keys() if views else ()
        self._audit(self._record("customer.read", subjects={v.id for v in views.values()},
                                 fields=opened))
        hidden = [i for i in ids if i not in views]
        if hidden:
            # Asked for but absent or not visible: on record, as for a single read.
            self._audit(self._record("customer.read", subjects=hidden, outcome="not_found"))
        return views

    def customer_by_email(self, email: str, *, fields: Collection[str] | None = None
                          ) -> CustomerView | None:
        """Exact lookup through the blind index; None when absent or not visible."""
        self._no_single_records("customer.lookup")
        names = self._pick(_CUSTOMER, fields)
        email_field = _CUSTOMER.field("email")
        reason = self._reason(email_field)
        if reason is not None:
            self._deny("customer.lookup", PurposeNotGranted(
                f"cannot look customers up by email: {reason}"))
        try:
            _check_text("email", email)
            token = self._b.codec.token("Customer", "email", email)
        except InputError:
            self._audit(self._record("customer.lookup", outcome="bad_input"))
            raise
        candidates = self._b.store.lookup(index_name("Customer", "email"), token)
        self._customer_nodes(candidates)
        via: set[str] = set()  # survivors found by the email of one of their merged parts
        if parts := [c for c in candidates if c in self._parts]:
            raw = self._b.store.get_nodes(parts)
            survivors = self._survivors(parts)
            via = {survivors[c] for c in parts if _same_email(
                self._b.codec.open(_as_customer(raw[c]), ["email"]).get("email"), email)}
            candidates = [c for c in candidates if c not in self._parts] + sorted(via)
        match: CustomerView | None = None
        # A miss reads a customer that cannot exist (NUL is in no id), as a hidden match
        # reads one that does: both cost the same (G3, timing). Its decoy is then a
        # customer picked by the token, as arbitrary as the one a hidden match reads.
        for node in self._visible_customers(candidates or [f"c_{token.hex()}\x00"]):
            if node.id in via:
                match = self._customer_view(node, names)
                break
            opened = self._b.codec.open(node, ["email"])
            if _same_email(opened.get("email"), email):
                match = self._customer_view(node, names, opened=opened)
                break
        # The email is opened to confirm the match: on record even when not returned.
        used = match.fields.keys() if match else ()
        self._audit(self._record(
            "customer.lookup", subjects=[match.id] if match else [],
            fields=used if "email" in used else (*used, "email"),
            outcome="ok" if match else "not_found"))
        return match

    def customers(self, *, first: int = 20, after: str | None = None,
                  fields: Collection[str] | None = None) -> Page[CustomerView]:
        """Visible customers in id order (keyset pagination)."""
        self._no_single_records("customer.list")
        first = _page_size(first)
        names = self._pick(_CUSTOMER, fields)
        cursor = _id_cursor(after)
        items: list[Node] = []
        has_next = False
        if self.purpose.needs_consent:
            items = self._consenting_customers(cursor, first + 1)
            has_next = len(items) > first
            items = items[:first]
        else:
            page = self._b.store.scan_nodes("Customer", after=cursor, limit=first + 1)
            has_next = len(page) > first
            items = page[:first]
        views = [self._customer_view(n, names) for n in items]
        self._audit(self._record(
            "customer.list", subjects=[v.id for v in views],
            fields=views[0].fields.keys() if views else ()))
        end = _encode_id_cursor(views[-1].id) if views else None
        return Page(views, end, has_next)

    def _consenting_customers(self, after: str | None, want: int) -> list[Node]:
        """Up to `want` customers after `after`, in id order, that this purpose may see."""
        found: list[Node] = []
        for visible in self._consenting_ids(after, chunk=max(2 * want, _CONSENT_PAGE)):
            for i in range(0, len(visible), want):
                part = visible[i:i + want]
                nodes = self._customer_nodes(part)
                found.extend(nodes[c] for c in part if c in nodes)
                if len(found) >= want:
                    return found[:want]
        return found

    def _consented_ids(self) -> list[str]:
        """Sorted ids of every customer with an active consent covering this purpose."""
        return [c for visible in self._consenting_ids(None, chunk=_CONSENT_BULK)
                for c in visible]

    def _consenting_ids(self, after: str | None, *, chunk: int) -> Iterator[list[str]]:
        """Ids after `after` that this purpose may see, in id order, a round at a time.

        Candidates are the sources of consent edges into this purpose and its parents,
        read `chunk` per purpose at a time and merged by id. Only candidates up to the
        smallest last id of a full page are sure to be complete, so each round checks
        those and starts the next after them: a page of customers costs a few pages of
        candidates, not every consent of the purpose.
        """
        purposes = self._b.policy.ancestors(self.purpose.id)
        while True:
            pages = [self._b.store.edge_sources(p, "CONSENTED", after=after, limit=chunk)
                     for p in purposes]
            full = [page[-1] for page in pages if len(page) == chunk]
            bound = min(full) if full else None
            yield self._visible_ids(sorted({c for page in pages for c in page
                                            if bound is None or c <= bound}))
            if bound is None:
                return
            after = bound

    def _all_customer_ids(self) -> list[str]:
        ids: list[str] = []
        while page := self._b.store.scan_nodes("Customer", after=ids[-1] if ids else None,
                                               limit=1000):
            ids.extend(n.id for n in page)
        return ids

    def count_customers(self) -> int:
        """How many customers this purpose may see; invisible ones are not counted."""
        self._no_single_records("customer.count")
        if self.purpose.needs_consent:
            n = len(self._consented_ids())
        else:
            n = self._b.store.count_nodes().get("Customer", 0)
        self._audit(self._record("customer.count", extra={"count": n}))
        return n

    def _require_visible(self, action: str, customer_id: str) -> Node:
        """The customer's node, or NotFound with the same text whether absent or hidden."""
        _check_id(customer_id)
        found = self._visible_customers([customer_id])
        if not found:
            self._audit(self._record(action, subjects=[customer_id], outcome="not_found"))
            raise NotFound(f"no customer {customer_id!r}")
        return found[0]

    def interactions(
        self,
        customer_id: str,
        *,
        first: int = 20,
        after: str | None = None,
        channel: str | None = None,
        fields: Collection[str] | None = None,
    ) -> Page[InteractionView]:
        """A customer's interactions, newest first, within the purpose's retention.

        `fields` names the fields to open (default: every one the purpose may use).
        """
        self._no_single_records("interaction.list")
        first = _page_size(first)
        if channel is not None and channel not in CHANNELS:
            raise InputError(f"unknown channel; one of {', '.join(CHANNELS)}")
        names = self._pick(_INTERACTION, fields)
        before = decode_cursor(after) if after else None
        self._require_visible("interaction.list", customer_id)
        if not self._category_ok(_BEHAVIOUR):
            self._audit(self._record("interaction.list", subjects=[customer_id],
                                     outcome="withheld"))
            return Page([], None, False)
        horizon = self._horizon()
        views: list[InteractionView] = []
        # A channel filter drops rows after the fetch, so read in chunks until the page
        # fills; edges are newest first, so the first one past the horizon ends it.
        chunk = first + 1 if channel is None else max(first + 1, 20)
        while True:
            edges = self._b.store.edges(customer_id, "HAD", limit=chunk, before=before)
            fresh = [e for e in edges if e.at >= horizon]
            views.extend(self._interaction_views(fresh, customer_id, channel=channel,
                                                 names=names))
            if len(views) > first or len(edges) < chunk or len(fresh) < len(edges):
                break
            before = Cursor(edges[-1].at, edges[-1].id)
        has_next = len(views) > first
        views = views[:first]
        fields = views[0].fields.keys() if views else ()
        self._audit(self._record("interaction.list", subjects=[customer_id], fields=fields))
        end = views[-1].cursor if views else None
        return Page(views, end, has_next)

    def _horizon(self) -> int:
        days = self.purpose.retention_days
        return self._now_us - days * _DAY_US if days else -(2**62)

    def _interaction_views(self, edges: Sequence[Edge], customer_id: str, *,
                           channel: str | None = None, names: list[str] | None = None
                           ) -> list[InteractionView]:
        if not edges:
            return []
        ids = [e.dst for e in edges]
        nodes = self._b.store.get_nodes(ids)
        about = self._b.store.edges_many(ids, "ABOUT")
        allowed, withheld = self._split(_INTERACTION.fields)
        if names is not None:
            allowed = names
        out: list[InteractionView] = []
        for e in edges:
            node = nodes.get(e.dst)
            # Filtered before opening: nothing is decrypted for a row nobody returns.
            if node is None or (channel is not None and node.props.get("channel") != channel):
                continue
            products = about.get(node.id) or []
            out.append(InteractionView(
                id=node.id,
                customer_id=customer_id,
                occurred_at=from_micros(e.at),
                fields=self._b.codec.open(node, allowed),
                product_id=products[0].dst if products else None,
                withheld=withheld,
                cursor=encode_cursor(Cursor(e.at, e.id)),
            ))
        return out

    def products_of(self, customer_id: str) -> list[ProductView]:
        """What a customer bought within the purpose's retention (financial data)."""
        self._no_single_records("product.list")
        self._require_visible("product.list", customer_id)
        if not self._category_ok(_PURCHASES):
            self._audit(self._record("product.list", subjects=[customer_id],
                                     outcome="withheld"))
            return []
        horizon = self._horizon()
        edges = self._b.store.edges(customer_id, "BOUGHT")
        ids = list(dict.fromkeys(e.dst for e in edges if e.at >= horizon))
        views = self._product_views(ids)
        self._audit(self._record("product.list", subjects=[customer_id], fields=["BOUGHT"]))
        return views

    def _product_views(self, ids: Sequence[str]) -> list[ProductView]:
        nodes = self._b.store.get_nodes(list(ids))
        return [_product(nodes[i]) for i in ids if i in nodes and nodes[i].kind == "Product"]

    def product(self, product_id: str) -> ProductView | None:
        """A catalogue product; holds no personal data, but its use is still audited."""
        _check_id(product_id)
        views = self._product_views([product_id])
        self._audit(self._record("product.read", extra={"product": product_id}))
        return views[0] if views else None

    def products_by_id(self, product_ids: Sequence[str]) -> dict[str, ProductView]:
        """Many catalogue products in one round trip and one audit record."""
        ids = list(dict.fromkeys(product_ids))
        for pid in ids:
            _check_id(pid)
        views = {v.id: v for v in self._product_views(ids)}
        self._audit(self._record("product.read", extra={"products": sorted(views)}))
        return views

    def buyers(self, product_id: str) -> list[CustomerView]:
        """Customers who bought a product, limited to those visible under this purpose."""
        self._no_single_records("product.buyers")
        _check_id(product_id)
        if not self._category_ok(_PURCHASES):
            self._audit(self._record("product.buyers", outcome="withheld"))
            return []
        horizon = self._horizon()
        ids = list(dict.fromkeys(e.src for e in self._b.store.edges(product_id, "BOUGHT",
                                                                     direction="in")
                                 if e.at >= horizon))
        views = [self._customer_view(n) for n in self._visible_customers(ids)]
        self._audit(self._record("product.buyers", subjects=[v.id for v in views],
                                 fields=views[0].fields.keys() if views else ()))
        return views

    def referrals(self, customer_id: str) -> list[CustomerView]:
        """The visible customers this customer referred, within the purpose's retention."""
        self._no_single_records("customer.referrals")
        self._require_visible("customer.referrals", customer_id)
        horizon = self._horizon()
        ids = [e.dst for e in self._b.store.edges(customer_id, "REFERRED") if e.at >= horizon]
        views = [self._customer_view(n) for n in self._visible_customers(ids)]
        self._audit(self._record("customer.referrals",
                                 subjects=[customer_id, *(v.id for v in views)]))
        return views

    def devices(self, customer_id: str) -> list[DeviceView]:
        """The devices a customer registered within the purpose's retention."""
        self._no_single_records("device.list")
        self._require_visible("device.list", customer_id)
        if not self._category_ok(_DEVICES):
            self._audit(self._record("device.list", subjects=[customer_id],
                                     outcome="withheld"))
            return []
        horizon = self._horizon()
        ids = [e.dst for e in self._b.store.edges(customer_id, "OWNS") if e.at >= horizon]
        nodes = self._b.store.get_nodes(ids)
        allowed, withheld = self._split(_DEVICE.fields)
        views = [DeviceView(i, self._b.codec.open(nodes[i], allowed), withheld)
                 for i in ids if i in nodes]
        self._audit(self._record("device.list", subjects=[customer_id], fields=allowed))
        return views

    def consents(self, customer_id: str, *, at: datetime | None = None) -> list[ConsentView]:
        """The customer's consent per purpose, now or at a past time, as the rule decides it.

        Every purpose some explicit choice applies to, each with the choice that decided
        it (`decided_by`: the purpose itself or an ancestor, see pacte.graph.consent).

        Not cut by retention: consents are the record of the legal basis itself
        (Art. 7(1)), kept and shown as long as the customer is.
        """
        self._no_single_records("consent.read")
        self._require_visible("consent.read", customer_id)
        when = input_micros(at, "at") if at is not None else self._now_us
        edges = self._b.store.edges(customer_id, "CONSENTED")
        states = consent_states(edges, at=when)
        self._audit(self._record("consent.read", subjects=[customer_id]))
        # As the rule decides each purpose then: a child follows a later choice on its parent.
        return _decision_views(decisions(self._b.policy, states))

    def consent_history(self, customer_id: str) -> list[ConsentView]:
        """Every consent change of a customer, newest first."""
        self._no_single_records("consent.history")
        self._require_visible("consent.history", customer_id)
        edges = self._b.store.edges(customer_id, "CONSENTED")
        self._audit(self._record("consent.history", subjects=[customer_id]))
        return [_consent_view(s) for e in edges
                for s in consent_states([e], at=self._now_us).values()]

    def explain(self, *, kind: str = "Customer", customer_id: str | None = None) -> Explanation:
        """What a read of `kind` would reveal and withhold, decrypting nothing."""
        if kind not in NODE_KINDS:
            raise InputError("unknown kind")
        allowed, withheld = self._split(NODE_KINDS[kind].fields)
        visible: bool | None = None
        consent: ConsentView | None = None
        if customer_id is not None:
            _check_id(customer_id)
            visible = bool(self._visible_customers([customer_id]))
            if visible and self.purpose.needs_consent:
                # Only for a visible customer: of a hidden one, nothing is said (G3).
                states = self._consent_map([customer_id])[customer_id]
                consent = _decision_views([decide(self._b.policy, self.purpose.id, states)])[0]
        self._audit(self._record("explain", subjects=[customer_id] if customer_id else [],
                                 extra={"kind": kind}))
        return Explanation(
            purpose=self.purpose.id,
            legal_basis=self.purpose.legal_basis,
            consent_required=self.purpose.needs_consent,
            retention_days=self.purpose.retention_days,
            revealed=list(allowed),
            withheld=list(withheld),
            subject_visible=visible,
            consent=consent,
        )

    # -- writes ---------------------------------------------------------------

    def upsert_customer(
        self,
        *,
        id: str | None = None,
        name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        address: str | None = None,
        birth_date: str | None = None,
        segment: str | None = None,
    ) -> CustomerView:
        """Create a customer, or update the given fields of an existing one."""
        self._require_role("customer.write", *_CONSENT_WRITERS)
        raw = {"name": name, "email": email, "phone": phone, "address": address,
               "birth_date": birth_date, "segment": segment}
        given: dict[str, str] = {k: v.strip() for k, v in raw.items() if v is not None}
        if id is not None:
            _check_id(id)
        for k, v in given.items():
            _check_text(k, v)
            if len(v) > 1000:
                raise InputError(f"{k} is too long (1000 characters at most)")
        if "email" in given:
            _check_email(given["email"])
        if "birth_date" in given:
            _check_date(given["birth_date"])
        denied = [k for k in given if self._reason(_CUSTOMER.field(k)) is not None]
        if denied:
            self._deny("customer.write", PurposeNotGranted(
                f"purpose {self.purpose.id} may not write {', '.join(sorted(denied))}"))
        if id is None:
            if self.purpose.needs_consent:
                self._deny("customer.write", PurposeNotGranted(
                    f"customers are created under a contract or request purpose, "
                    f"not {self.purpose.id}"))
            if "name" not in given or "email" not in given:
                raise InputError("a new customer needs a name and an email")
            id = "c_" + secrets.token_hex(6)
            props: dict[str, Value] = {"created_at": self._now_us}
        else:
            node = self._require_visible("customer.write", id)
            props = self._b.codec.open(node, [f.name for f in _CUSTOMER.fields])
        if "email" in given and not _same_email(props.get("email"), given["email"]):
            self._refuse_taken_email(id, given["email"])
        props.update(given)
        self._b.ensure_keys([id])
        batch = self._b.codec.seal_batch(WriteBatch(nodes=[Node("Customer", id, props, id)],
                                                    unindex=[id]))
        self._commit(batch, self._record("customer.write", subjects=[id],
                                         fields=tuple(given)))
        self._forget(id)
        allowed, withheld = self._split(_CUSTOMER.fields)
        return CustomerView(id, {k: props.get(k) for k in allowed}, withheld)

    def _refuse_taken_email(self, customer_id: str, email: str) -> None:
        """Refuse an email another customer has, saying nothing of hidden customers (G3).

        The owner of a taken email may be a customer this purpose does not see, and
        "already belongs to another customer" would then reveal that they exist. So
        under a consent-based purpose an email is not changed at all, whichever it is,
        taken or not: the same refusal, which depends on nothing but the purpose.
        Purposes that see every customer (service, self_service) change emails and are
        told when one is taken, which reveals nobody they could not read anyway.
        """
        if self.purpose.needs_consent:
            self._deny("customer.write", PurposeNotGranted(
                f"emails are changed under a purpose that sees every customer, "
                f"not {self.purpose.id}"), subjects=[customer_id])
        token = self._b.codec.token("Customer", "email", email)
        others = [c for c in self._b.store.lookup(index_name("Customer", "email"), token)
                  if c != customer_id]
        for node in self._customer_nodes(others).values():
            if _same_email(self._b.codec.open(node, ["email"]).get("email"), email):
                self._audit(self._record("customer.write", outcome="bad_input",
                                         subjects=[customer_id], reason="email_taken"))
                raise InputError("this email already belongs to another customer")

    def record_interaction(
        self,
        *,
        customer_id: str,
        channel: str,
        kind: str,
        event_id: str,
        occurred_at: datetime | None = None,
        summary: str | None = None,
        product_id: str | None = None,
        amount: float | None = None,
    ) -> InteractionView:
        """Record one contact; replaying the same `event_id` returns the first record."""
        self._require_role("interaction.write", *_CONSENT_WRITERS)
        # The messages do not echo the value: a caller may have put a personal one there.
        if channel not in CHANNELS:
            raise InputError(f"unknown channel; one of {', '.join(CHANNELS)}")
        if kind not in INTERACTION_KINDS:
            raise InputError(f"unknown kind; one of {', '.join(INTERACTION_KINDS)}")
        if not event_id or len(event_id) > 200:
            raise InputError("event_id must be 1 to 200 characters")
        _check_text("event_id", event_id)
        if summary is not None:
            _check_text("summary", summary)
            if len(summary) > 10_000:
                raise InputError("summary is too long (10000 characters at most)")
        at = input_micros(occurred_at, "occurred_at") if occurred_at is not None \
            else self._now_us
        if not self._category_ok(_BEHAVIOUR):
            self._deny("interaction.write", PurposeNotGranted(
                f"purpose {self.purpose.id} may not record interactions"))
        self._require_visible("interaction.write", customer_id)
        store = self._b.store
        existing = store.lookup(EVENT_INDEX, event_token(event_id))
        if existing:
            return self._recorded(existing[0], customer_id)
        if product_id is not None:
            _check_id(product_id)
            prod = store.get_nodes([product_id]).get(product_id)
            if prod is None or prod.kind != "Product":
                raise InputError("no such product")
        iid = "i_" + secrets.token_hex(8)
        props: dict[str, Value] = {"channel": channel, "kind": kind, "occurred_at": at,
                                   "event_id": event_id, "summary": summary, "amount": amount}
        edges = [Edge("HAD", "h_" + iid, customer_id, iid, at)]
        if product_id is not None:
            edges.append(Edge("ABOUT", "a_" + iid, iid, product_id, at))
            if kind == "purchase":
                edges.append(Edge("BOUGHT", "b_" + iid, customer_id, product_id, at,
                                  {"amount": amount}))
        self._b.ensure_keys([customer_id])
        batch = self._b.codec.seal_batch(WriteBatch(
            nodes=[Node("Interaction", iid, props, customer_id)], edges=edges))
        batch.index.append(IndexEntry(EVENT_INDEX, event_token(event_id), iid))
        try:
            self._commit(batch, self._record(
                "interaction.write", subjects=[customer_id],
                fields=tuple(k for k, v in props.items() if v is not None)))
        except Conflict:
            # Another request (another process, maybe) stored this event id between
            # the lookup and the write: the store's unique index refused this one.
            winner = store.lookup(EVENT_INDEX, event_token(event_id))
            if not winner:
                raise
            return self._recorded(winner[0], customer_id)
        allowed, withheld = self._split(_INTERACTION.fields)
        return InteractionView(iid, customer_id, from_micros(at),
                               {k: props.get(k) for k in allowed}, product_id, withheld,
                               encode_cursor(Cursor(at, edges[0].id)))

    def _recorded(self, interaction_id: str, customer_id: str) -> InteractionView:
        """A replayed event id: the interaction first recorded with it."""
        store = self._b.store
        node = store.get_nodes([interaction_id]).get(interaction_id)
        # The interaction's own HAD edge: one indexed read, whatever the history.
        had = store.edges(node.id, "HAD", direction="in") if node is not None else []
        if node is None or node.owner != customer_id or not had \
                or had[0].at < self._horizon():
            # One answer for another customer's event (who may be hidden from this
            # purpose) and for one past the purpose's retention (which it may not read).
            raise InputError("event_id was already used")
        page = self._interaction_views(had, customer_id)
        self._audit(self._record("interaction.write", subjects=[customer_id],
                                 outcome="duplicate"))
        return page[0]

    def grant_consent(
        self,
        customer_id: str,
        purpose: str,
        *,
        source: str,
        proof: str | None = None,
        until: datetime | None = None,
    ) -> ConsentChange:
        """Record an opt-in; requested under `self_service` (the customer's own request).

        The answer holds the choice and the consent it leaves to the purpose and to each
        purpose below it.
        """
        return self._change_consent(customer_id, purpose, ConsentStatus.GRANTED,
                                    source=source, proof=proof, until=until)

    def withdraw_consent(self, customer_id: str, purpose: str, *, source: str = "customer"
                         ) -> ConsentChange:
        """Record an opt-out, for the purpose and every purpose below it, whatever they
        were granted before; it holds from the next request on (G5)."""
        return self._change_consent(customer_id, purpose, ConsentStatus.WITHDRAWN,
                                    source=source, proof=None, until=None)

    def _change_consent(self, customer_id: str, purpose_id: str, status: ConsentStatus, *,
                        source: str, proof: str | None, until: datetime | None
                        ) -> ConsentChange:
        action = "consent.grant" if status is ConsentStatus.GRANTED else "consent.withdraw"
        self._require_role(action, *_CONSENT_WRITERS)
        self._require_purpose(action, "self_service")
        target = self._b.policy.get(purpose_id)
        if target is None:
            raise InputError(f"unknown purpose; one of {', '.join(self._b.policy.purposes)}")
        if not source or len(source) > 200:
            raise InputError("source must be 1 to 200 characters")
        _check_text("source", source)
        if proof is not None:
            _check_text("proof", proof)
        until_us = input_micros(until, "until") if until is not None else None
        self._require_visible(action, customer_id)
        if until_us is not None and until_us <= self._now_us:
            raise InputError("until must be in the future")
        # Each choice of a customer is stamped after their previous one, on any purpose, so
        # the later-recorded choice is the later one even within one microsecond: the rule
        # then lets it decide over older choices on the purpose's ancestors.
        history = self._b.store.edges(customer_id, "CONSENTED")
        # The stamps of a burst of choices run a few microseconds ahead of the clock and
        # count; a choice dated further ahead (another server's clock) must not push this
        # one, a withdrawal above all, past now: it is left out.
        ahead = self._now_us + _STAMP_SLACK_US
        at = max([self._now_us, *(e.at + 1 for e in history if e.at <= ahead)])
        props: dict[str, Value] = {
            "status": status.value, "until": until_us, "source": source,
            "policy_version": self._b.policy.version,
            "proof": hashlib.sha256(proof.encode("utf-8")).hexdigest() if proof else None,
        }
        edge = Edge("CONSENTED", "k_" + secrets.token_hex(8), customer_id, purpose_id, at,
                    props)
        self._commit(WriteBatch(edges=[edge]), self._record(
            action, subjects=[customer_id],
            extra={"consent_purpose": purpose_id, "source": source}))
        self._forget(customer_id)
        states = consent_states([*history, edge], at=at)
        policy = self._b.policy
        return ConsentChange(
            recorded=_consent_view(states[purpose_id]),
            effective=tuple(_decision_views(decide(policy, p, states)
                                            for p in policy.descendants(purpose_id))))

    def erase(self, customer_id: str) -> dict[str, Any]:
        """Crypto-shred and delete a customer; returns a signed receipt without personal data."""
        self._require_role("customer.erase", *_CONSENT_WRITERS)
        self._require_purpose("customer.erase", "self_service")
        self._require_visible("customer.erase", customer_id)
        store = self._b.store
        # A merged customer is erased with every part merged into it (issue #17).
        whole = [customer_id, *self._merged_parts(customer_id)]
        owned = [n for cid in whole for n in store.owned_by(cid)]
        kinds: dict[str, int] = {}
        for node in store.get_nodes(owned).values():
            kinds[node.kind] = kinds.get(node.kind, 0) + 1
        subject = self._b.subject_ref(customer_id)
        step = self._record("customer.erase", subjects=whole, extra={"destroyed": kinds})
        # On record before anything is destroyed (see `_commit`), in an entry of its own,
        # which the receipt cites.
        self.flush()
        seq = self._on_record(step)
        deleted = False
        try:
            # Keys first: once they are gone every ciphertext of this customer, including
            # copies in backups, is unreadable, even if the deletion below is interrupted.
            # Until the files are scrubbed on leaving the block, the erasure is pending
            # and an open after a crash or failure finishes it.
            with contextlib.ExitStack() as shredding:
                for cid in whole:
                    shredding.enter_context(self._b.shredding(cid))
                store.write(WriteBatch(delete_nodes=owned))
                deleted = True
        except Exception as exc:
            if not deleted:
                self._failed(step, exc)
                raise
            # Deleted, keys gone; only rewriting the files failed (readers kept them
            # busy): on record as such, not as a failed erasure, and retried on open.
            code = exc.code if isinstance(exc, PacteError) else type(exc).__name__
            with contextlib.suppress(Exception):
                self._b.audit_append([self._entry([self._record(
                    step.action, outcome="scrub_pending", subjects=step.subjects,
                    reason=code)])])
        except BaseException as exc:
            if not deleted:
                self._failed(step, exc)
            raise
        for cid in whole:
            self._forget(cid)
        return self._b.sign_receipt(subject_ref=subject, destroyed=kinds,
                                    requested_by=self.principal.name, audit_seq=seq)

    def export(self, customer_id: str) -> dict[str, Any]:
        """Everything held about one customer, decrypted, for the customer (Art. 15, 20).

        Not cut by retention: the right of access covers everything held, whatever its
        age (and `self_service` sets no retention anyway).
        """
        self._require_role("customer.export", *_CONSENT_WRITERS)
        self._require_purpose("customer.export", "self_service")
        node = self._require_visible("customer.export", customer_id)
        store = self._b.store
        profile = self._b.codec.open(node, [f.name for f in _CUSTOMER.fields])
        had = store.edges(customer_id, "HAD")
        interactions = [
            {"id": v.id, "occurred_at": v.occurred_at.isoformat(), "product": v.product_id,
             **{k: val for k, val in v.fields.items() if k != "occurred_at"}}
            for v in self._interaction_views(had, customer_id)
        ]
        dev_ids = [e.dst for e in store.edges(customer_id, "OWNS")]
        dev_nodes = store.get_nodes(dev_ids)
        devices = [{"id": i, **self._b.codec.open(dev_nodes[i], [f.name for f in
                                                                  _DEVICE.fields])}
                   for i in dev_ids if i in dev_nodes]
        consents = [
            {"purpose": c.purpose, "status": c.status, "at": c.at.isoformat(),
             "until": c.until.isoformat() if c.until else None, "source": c.source}
            for c in (_consent_view(s) for s in consent_states(
                store.edges(customer_id, "CONSENTED"), at=self._now_us).values())
        ]
        bought = [e.dst for e in store.edges(customer_id, "BOUGHT")]
        reviews = [{"product": e.dst, "rating": e.props.get("rating"),
                    "at": from_micros(e.at).isoformat()}
                   for e in store.edges(customer_id, "REVIEWED")]
        # Customers merged into this one keep their own profile: held, so exported.
        part_ids = self._merged_parts(customer_id)
        parts = [{"id": n.id, **self._b.codec.open(_as_customer(n),
                                                   [f.name for f in _CUSTOMER.fields])}
                 for n in store.get_nodes(part_ids).values()] if part_ids else []
        self._audit(self._record("customer.export", subjects=[customer_id, *part_ids],
                                 fields=[f.name for f in _CUSTOMER.fields]))
        return {
            "customer": {"id": customer_id, **profile},
            **({"merged_parts": sorted(parts, key=lambda p: str(p["id"]))} if parts else {}),
            "consents": sorted(consents, key=lambda c: str(c["purpose"])),
            "interactions": interactions,
            "devices": devices,
            "products": [p.id for p in self._product_views(list(dict.fromkeys(bought)))],
            "reviews": reviews,
        }

    def ingest(self, batches: WriteBatch | Iterable[WriteBatch], *,
               on_batch: Callable[[WriteBatch], object] | None = None) -> None:
        """Bulk-load plaintext records (seeding, imports): checked, sealed, audited, written.

        Batch k+1 is produced and sealed while batch k is being written: the store's
        writes release the GIL, so the two overlap on a second core. Each batch is
        audited before its write starts (see `_commit`); a failed write is recorded.
        """
        self._require_role("ingest", "admin")
        if isinstance(batches, WriteBatch):
            batches = [batches]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pacte-ingest") as writer:
            pending: tuple[Future[None], WriteBatch, _Step] | None = None
            for batch in batches:
                _check_times(batch, now_us=self._now_us)
                customers = [n.id for n in batch.nodes if n.kind == "Customer"]
                self._b.ensure_keys(customers)
                sealed = self._b.codec.seal_batch(batch)
                if pending is not None:
                    self._ingested(*pending, on_batch)
                step = self._record("ingest", extra={
                    "customers": len(customers), "nodes": len(batch.nodes),
                    "edges": len(batch.edges)})
                self._on_record(step)
                pending = (writer.submit(self._b.store.write, sealed), batch, step)
            if pending is not None:
                self._ingested(*pending, on_batch)

    def _ingested(self, write: Future[None], batch: WriteBatch, step: _Step,
                  on_batch: Callable[[WriteBatch], object] | None) -> None:
        try:
            write.result()  # re-raises the store's error here
        except BaseException as exc:
            self._failed(step, exc)
            raise
        if on_batch is not None:
            on_batch(batch)

    # -- analysts and recommendations ------------------------------------------

    def project(self, *, batch: int = 1000) -> Iterator[list[ProjectedCustomer]]:
        """Every consented customer's allowed data, in batches, for analysts (G9).

        Only for analysts and admins under an analysts-only purpose; each batch is
        audited with the customers it included.
        """
        self._require_role("analytics.project", "analyst", "admin")
        if not self.purpose.analysts_only:
            self._deny("analytics.project", PurposeNotGranted(
                f"projections are built under an analysts-only purpose, not {self.purpose.id}"))
        ids = self._consented_ids() if self.purpose.needs_consent else self._all_customer_ids()
        visible = set(ids)
        # Analysts get categorised fields only: structural ones such as created_at are
        # near-unique per person and would single them out (G9).
        allowed = [f.name for f in _CUSTOMER.fields
                   if f.category is not None and self._reason(f) is None]
        horizon = self._horizon()
        store = self._b.store
        for start in range(0, len(ids), batch):
            chunk = ids[start:start + batch]
            nodes = self._customer_nodes(chunk, memo=False)
            bought = store.edges_many(chunk, "BOUGHT") if self._category_ok(_PURCHASES) else {}
            reviewed = store.edges_many(chunk, "REVIEWED") if self._category_ok(
                "user.content") else {}
            referred = store.edges_many(chunk, "REFERRED")
            owns = store.edges_many(chunk, "OWNS") if self._category_ok(_DEVICES) else {}
            had = store.edges_many(chunk, "HAD") if self._category_ok(_BEHAVIOUR) else {}
            inter_ids = [e.dst for c in chunk for e in had.get(c, []) if e.at >= horizon]
            inter_nodes = store.get_nodes(inter_ids)
            about = store.edges_many(inter_ids, "ABOUT")
            dev_nodes = store.get_nodes([e.dst for c in chunk for e in owns.get(c, [])
                                         if e.at >= horizon])
            out: list[ProjectedCustomer] = []
            for cid in chunk:
                node = nodes.get(cid)
                if node is None:
                    continue
                interactions = []
                for e in had.get(cid, []):
                    inode = inter_nodes.get(e.dst)
                    if inode is None or e.at < horizon:
                        continue
                    prods = about.get(e.dst) or []
                    interactions.append((from_micros(e.at), str(inode.props.get("channel")),
                                         str(inode.props.get("kind")),
                                         prods[0].dst if prods else None))
                out.append(ProjectedCustomer(
                    id=cid,
                    fields=self._b.codec.open(node, allowed),
                    purchases=[(e.dst, from_micros(e.at), _float(e.props.get("amount")))
                               for e in bought.get(cid, []) if e.at >= horizon],
                    reviews=[(e.dst, from_micros(e.at), _int(e.props.get("rating")))
                             for e in reviewed.get(cid, []) if e.at >= horizon],
                    interactions=interactions,
                    devices=[str(dev_nodes[e.dst].props.get("device_type"))
                             for e in owns.get(cid, [])
                             if e.dst in dev_nodes and e.at >= horizon],
                    referred=[e.dst for e in referred.get(cid, [])
                              if e.dst in visible and e.at >= horizon],
                ))
            self._audit(self._record("analytics.project", subjects=[p.id for p in out],
                                     fields=allowed))
            yield out

    def record_release(self, action: str, *, details: Mapping[str, object],
                       epsilon: float = 0.0) -> float:
        """Audit a release an analyst draws from a projection (an export, a report) (G9).

        `details` (scalars: achieved k, suppression rates, noise parameters) go into the
        audit entry. A release with `epsilon` > 0 spends that much of the principal's
        differential-privacy budget, which the policy file sets (`[privacy]`), never
        the caller. What was spent is read back from the audit trail (the entries
        naming the principal's budget account), never from memory, so it survives
        restarts; the read and the append are one exclusive step on the trail, so
        concurrent releases (threads or processes) cannot both pass the check. A
        release that would pass the budget is refused with `PrivacyBudgetSpent`, and
        the refusal is audited. Returns the budget left after this release.
        """
        self._require_role(action, "analyst", "admin")
        if not self.purpose.analysts_only:
            self._deny(action, PurposeNotGranted(
                f"releases are made under an analysts-only purpose, not {self.purpose.id}"))
        budget = self._b.policy.privacy_budget(self.principal.id)
        if not epsilon:
            self._audit(self._record(action, extra=details))
            return budget - self.privacy_spent()
        if not 0 < epsilon <= budget:
            self._deny(action, InputError(
                f"epsilon must be > 0 and at most the budget {budget:g} (got {epsilon:g})"))
        account = [_budget_account(self.principal.id)]
        ref = self._ref(account[0])  # outside the trail's lock: it may consult the vault
        # Read and append under the trail's write lock, or two releases read the same
        # spent amount and both pass. The entry is appended at once, even when the
        # request defers its audit: the next release must see this one spent.
        with self._b.audit_exclusive():
            spent = self._spent(ref)
            extra = {**details, "epsilon": epsilon, "epsilon_budget": budget,
                     "epsilon_spent_before": round(spent, 9)}
            refused = spent + epsilon > budget + 1e-9
            outcome, reason = ("denied", PrivacyBudgetSpent.code) if refused else ("ok", None)
            self._pending.append(self._record(action, outcome=outcome, subjects=account,
                                              reason=reason, extra=extra))
            self.flush()
        if refused:
            raise PrivacyBudgetSpent(
                f"privacy budget spent: {spent:g} of {budget:g} used, this release needs "
                f"{epsilon:g}")
        return budget - spent - epsilon

    def privacy_spent(self) -> float:
        """The epsilon this principal's differentially private releases have spent."""
        return self._spent(self._ref(_budget_account(self.principal.id)))

    def _spent(self, ref: str) -> float:
        spent, after = 0.0, None
        while True:
            page = self._b.audit_entries(subject=ref, after_seq=after, limit=_MAX_PAGE)
            for entry in page:
                rec = entry.record
                if rec.get("principal") != self.principal.id:
                    continue
                if rec.get("outcome") == "ok":
                    spent += float(rec.get("epsilon") or 0.0)
                for op in rec.get("operations", ()):  # a deferred request's merged steps
                    if op.get("outcome", "ok") == "ok":
                        spent += float(op.get("epsilon") or 0.0)
            if len(page) < _MAX_PAGE:
                return spent
            after = page[-1].seq

    def recommendations(self, customer_id: str, *, first: int = 5) -> list[ProductView]:
        """Products often bought with this customer's, from consenting customers only.

        Item-to-item co-purchase counts over the buyers of the customer's products,
        computed per request so a withdrawal removes a customer's purchases from
        everyone's recommendations at once (G5). Empty without consent to the purpose.
        """
        self._no_single_records("recommendations")
        first = _page_size(first)
        self._require_visible("recommendations", customer_id)
        if RECOMMENDATIONS not in self._b.policy.ancestors(self.purpose.id) \
                or not self._category_ok(_PURCHASES):
            # Recommendations are a personalization use: under another purpose there are none.
            self._audit(self._record("recommendations", subjects=[customer_id],
                                     outcome="withheld"))
            return []
        store = self._b.store
        horizon = self._horizon()
        mine = {e.dst for e in store.edges(customer_id, "BOUGHT") if e.at >= horizon}
        # The newest buyers of each product: popular products have thousands, and the
        # newest few hundred say as much about what goes with them, at a bounded cost.
        peers: set[str] = set()
        for product in sorted(mine):
            peers.update(e.src for e in store.edges(product, "BOUGHT", direction="in",
                                                    limit=_NEIGHBOURHOOD) if e.at >= horizon)
        peers.discard(customer_id)
        consenting = self._visible_ids(sorted(peers))
        backers: dict[str, set[str]] = {}
        for peer, edges in store.edges_many(consenting, "BOUGHT").items():
            for product in {e.dst for e in edges if e.at >= horizon} - mine:
                backers.setdefault(product, set()).add(peer)
        # A product backed by fewer than k co-buyers would reveal what those few bought.
        supported = {p: b for p, b in backers.items() if len(b) >= MIN_SUPPORT}
        ranked = sorted(supported, key=lambda p: (-len(supported[p]), p))[:first]
        views = self._product_views(ranked)
        used = set().union(*(supported[p] for p in ranked)) if ranked else set()
        # Co-buyers whose purchases shaped the answer find this use in their own trail.
        self._audit(self._record("recommendations", subjects=[customer_id, *used],
                                 fields=["BOUGHT"]))
        return views

    def purposes(self) -> list[Purpose]:
        """The policy's purposes (no personal data; the read is audited like any other)."""
        self._audit(self._record("policy.read"))
        return list(self._b.policy.purposes.values())

    def stats(self) -> dict[str, int]:
        """Counts per node kind and edge type, sorted by name (operators only)."""
        self._require_role("stats", "admin")
        counts = {**self._b.store.count_nodes(), **self._b.store.count_edges()}
        self._audit(self._record("stats"))
        return dict(sorted(counts.items()))

    # -- the audit trail, for auditors and for the customers themselves --------

    def audit_trail(self, *, customer_id: str | None = None, first: int = 50,
                    after: int | None = None) -> list[Any]:
        """Audit entries, optionally for one customer (auditors and admins)."""
        self._require_role("audit.read", "auditor", "admin")
        if customer_id:
            _check_id(customer_id)
        subject = self._b.subject_ref(customer_id) if customer_id else None
        entries = self._b.audit_entries(subject=subject, after_seq=after,
                                        limit=_page_size(first))
        self._audit(self._record("audit.read", subjects=[customer_id] if customer_id else []))
        return entries

    def audit_verification(self) -> Any:
        self._require_role("audit.verify", "auditor", "admin")
        report = self._b.audit_verify()
        self._audit(self._record("audit.verify", outcome="ok" if report.ok else "invalid"))
        return report

    def trace(self, customer_id: str) -> list[Any]:
        """Every use of one customer's data, in order (auditors and admins)."""
        self._require_role("audit.trace", "auditor", "admin")
        _check_id(customer_id)
        entries = self._b.audit_trace(self._ref(customer_id))
        self._audit(self._record("audit.trace", subjects=[customer_id]))
        return entries

    def access_report(self, customer_id: str) -> dict[str, Any]:
        """The Art. 15 report for one customer, with inclusion proofs (auditors, admins,
        or the customer's own request under `self_service`)."""
        if self.purpose.id != "self_service":
            self._require_role("audit.access_report", "auditor", "admin")
        else:
            self._require_visible("audit.access_report", customer_id)
        _check_id(customer_id)
        report = self._b.audit_access_report(self._ref(customer_id), self._policy_summary())
        self._audit(self._record("audit.access_report", subjects=[customer_id]))
        return report

    def record_of_processing(self) -> dict[str, Any]:
        """The Art. 30 record of processing activities, generated from the policy."""
        self._require_role("audit.processing_record", "auditor", "admin")
        record = self._b.audit_record_of_processing(self._policy_summary())
        self._audit(self._record("audit.processing_record"))
        return record

    def _policy_summary(self) -> dict[str, Any]:
        summary = dict(self._b.policy.summary())
        summary["fields"] = {f.name: f.category for kind in NODE_KINDS.values()
                             for f in kind.fields if f.category is not None}
        return summary

    def my_data_uses(self, customer_id: str, *, first: int = 50, after: int | None = None
                     ) -> list[Any]:
        """The uses of one customer's data, for that customer (under `self_service`).

        Each entry is shown as it concerns this customer alone: an entry naming many
        customers (a list page) names only them, and operations of a request that
        concern only others are left out. `entry_hash` is still the recorded entry's.
        """
        self._no_single_records("audit.self")
        self._require_purpose("audit.self", "self_service")
        self._require_visible("audit.self", customer_id)
        ref = self._b.subject_ref(customer_id)
        entries = self._b.audit_entries(subject=ref, after_seq=after, limit=_page_size(first))
        self._audit(self._record("audit.self", subjects=[customer_id]))
        return [dataclasses.replace(e, record=_concerning(e.record, ref)) for e in entries]

    # -- identity primitives (issue #17) ----------------------------------------
    # The gate pacte.ingest and pacte.identity need, kept in one block so that it can
    # move with the session's split (issue #16). Tokens say nothing without the vault.

    def keyed_tokens(self, namespace: str, values: Sequence[str]) -> list[bytes]:
        """16-byte keyed tokens of normalised values (identifiers, row keys); admins only."""
        self._require_role("identity.token", "admin")
        token = self._b.codec.keyed_token
        return [token(namespace, v) for v in values]

    def lookup_tokens(self, index: str, tokens: Sequence[bytes]) -> dict[bytes, list[str]]:
        """The node ids each token of the index `index` points at (absent: none), in one
        round trip.

        Admins only; the lookup is audited with the customers it found when the index
        points at customers (identifier entries), never with the tokens themselves.
        """
        self._require_role("identity.lookup", "admin")
        found = self._b.store.lookup_many(index, tokens) if tokens else {}
        self._audit(self._record("identity.lookup", subjects=sorted(
            {i for ids in found.values() for i in ids if i.startswith("c_")}),
            extra={"index": index, "tokens": len(tokens), "found": len(found)}))
        return found

    def identifier_refs(self, customer_id: str) -> dict[str, list[str]]:
        """The identifier entries pointing at a customer or its merged parts, by kind, as
        blind refs (the first 8 hex digits of their tokens, never values); admins only,
        audited. It scans the index: an operator's question, not a request path."""
        self._require_role("identity.explain", "admin")
        _check_id(customer_id)
        self._require_visible("identity.explain", customer_id)
        whole = {customer_id, *self._merged_parts(customer_id)}  # its parts built it too
        out: dict[str, list[str]] = {}
        for entries in self._b.store.iter_index():
            for e in entries:
                if e.node_id in whole and e.name.startswith("Identity."):
                    out.setdefault(e.name.removeprefix("Identity."), []).append(
                        e.token.hex()[:8])
        self._audit(self._record("identity.explain", subjects=[customer_id]))
        return {k: sorted(v) for k, v in sorted(out.items())}

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

    def survivors(self, customer_ids: Sequence[str]) -> dict[str, str]:
        """For ingestion: which of these ids are merged parts, and their survivors;
        admins only (a part's id is still a customer's, so nothing new is told)."""
        self._require_role("identity.lookup", "admin")
        found = self._b.store.edges_many(list(dict.fromkeys(customer_ids)), "SAME_AS")
        parts = [c for c, edges in found.items() if edges]
        return self._survivors(parts) if parts else {}

    def merge_graph(self, customer_ids: Sequence[str]) -> dict[str, MergeGraph]:
        """The stored nodes and edges of customers or merged parts, as they are
        (ciphertext), for `pacte.identity.merge` to rewrite; admins only, audited.
        Absent ids are left out."""
        self._require_role("identity.merge", "admin")
        for cid in customer_ids:
            _check_id(cid)
        store = self._b.store
        nodes = store.get_nodes(list(customer_ids))
        out: dict[str, MergeGraph] = {}
        for cid, node in nodes.items():
            if node.kind not in ("Customer", MERGED_PART):
                continue
            edges = [e for t in _CUSTOMER_EDGES for d in ("out", "in")
                     for e in store.edges(cid, t, direction=d)]
            out[cid] = MergeGraph(node, list({e.id: e for e in edges}.values()))
        self._audit(self._record("identity.read", subjects=sorted(out)))
        return out

    def merge_write(self, batch: WriteBatch, *, action: str, subjects: Sequence[str],
                    details: Mapping[str, object]) -> None:
        """Write a merge or unmerge built by `pacte.identity.merge`, on record first
        (action, the customers, and `details`: rule, identifier kinds and blind refs,
        never values); admins only."""
        if action not in ("identity.merge", "identity.unmerge"):
            raise InputError("a merge write is identity.merge or identity.unmerge")
        self._require_role(action, "admin")
        self._commit(batch, self._record(action, subjects=subjects, extra=details))
        for cid in subjects:
            self._forget(cid)


# -- small helpers ---------------------------------------------------------------

# The edge types at a customer that a merge moves or keeps (SAME_AS: its own parts).
_CUSTOMER_EDGES = ("HAD", "BOUGHT", "REVIEWED", "OWNS", "REFERRED", "CONSENTED",
                   PART_CONSENT, "SAME_AS")


def _as_customer(part: Node) -> Node:
    """A merged part's node as the customer it was, to open its fields."""
    return Node("Customer", part.id, part.props, part.owner)


class MergeGraph(NamedTuple):
    node: Node
    edges: list[Edge]  # in and out, each once


# How far ahead of the clock a customer's consent stamps may run (a burst of choices
# takes one microsecond each); a choice dated further ahead does not move the next one.
_STAMP_SLACK_US = 1_000_000
# Candidates read per purpose and round when listing consenting customers (at least).
_CONSENT_PAGE = 64
# The same when every consenting customer is wanted (counts, projections).
_CONSENT_BULK = 5000
_Split = tuple[list[str], tuple[Withheld, ...]]
_SPLITS: dict[tuple[str, str, str, int], tuple[tuple[Field, ...], _Split]] = {}
_CATEGORY_OK: dict[tuple[str, str, str, str], bool] = {}


def _budget_account(principal_id: str) -> str:
    """The audit subject naming a principal's privacy budget (never a customer id)."""
    return f"privacy-budget:{principal_id}"


def _customer_360_hops(*, interactions: bool, purchases: bool) -> tuple[Hop, ...]:
    """What to read around a customer: only what the purpose may use, and the consents."""
    hops = [Hop("CONSENTED")]
    if interactions:
        # A default page of interactions and one more (its hasNext needs it); a larger
        # page is read from the server as usual.
        hops.append(Hop("HAD", limit=21, nodes=True, then=("ABOUT",)))
    if purchases:
        hops.append(Hop("BOUGHT", nodes=True))
    return tuple(hops)


# Field names as an audit entry lists them (sorted, once each), by the tuple a step
# holds: requests of one kind name the same fields, so each list is sorted once.
_NAMES: dict[tuple[str, ...], list[str]] = {}
_MAX_NAMES = 4096


def _names(fields: tuple[str, ...]) -> list[str]:
    names = _NAMES.get(fields)
    if names is None:
        names = sorted(set(fields))
        if len(_NAMES) < _MAX_NAMES:
            _NAMES[fields] = names
    return names.copy()  # each record gets its own list


# The four answers, made once: a prefetch runs on every customer request.
_C360_HOPS = {(i, p): _customer_360_hops(interactions=i, purchases=p)
              for i in (False, True) for p in (False, True)}


class _Around:
    """`Session.around`: a class rather than a generator, since every request opens one."""

    __slots__ = ("_customer_id", "_scope", "_session")

    def __init__(self, session: Session, customer_id: str) -> None:
        self._session = session
        self._customer_id = customer_id
        self._scope = session.read_scope()

    def __enter__(self) -> None:
        self._scope.__enter__()
        try:
            self._session.prefetch(self._customer_id)
        except BaseException as exc:
            self._scope.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def __exit__(self, *exc: Any) -> bool | None:
        return self._scope.__exit__(*exc)


class _Step(NamedTuple):
    """One operation of a request, as its audit entry will list it."""

    action: str
    outcome: str
    subjects: tuple[str, ...]  # customer ids; pseudonymised when the entry is written
    fields: tuple[str, ...]
    reason: str | None
    extra: Mapping[str, object] | None


# Not a valid customer id (ids never hold a NUL), so never found.
_NO_CUSTOMER = "c_\x00absent"
_PURPOSE_LIKE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _claim(purpose: str | None) -> str | None:
    """A claimed purpose as it may be recorded: short names as they are, else a hash.

    X-Purpose is whatever the caller sends (8,000 characters, or a personal value):
    the trail keeps enough to tell claims apart, and no more.
    """
    if purpose is None or _PURPOSE_LIKE.fullmatch(purpose):
        return purpose
    digest = hashlib.sha256(purpose.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest[:32]}"


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


def _check_id(value: str) -> None:
    if not isinstance(value, str) or not value or len(value) > _MAX_ID:
        raise InputError("ids are 1 to 100 characters")
    _check_text("an id", value)


def _check_text(what: str, value: str) -> None:
    """Refuse text that is not valid Unicode: a lone surrogate cannot be encoded, so it
    could be neither sealed, hashed nor named (as a pseudonym) in the audit trail."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what} is not valid text (it holds a lone surrogate)") from None


# Node properties that hold times (epoch microseconds), by name.
_TIME_PROPS = ("created_at", "occurred_at", "revoked_at")


def _check_times(batch: WriteBatch, *, now_us: int) -> None:
    """Every time in a batch to ingest lies in the accepted range (see pacte.clock), and
    no consent choice is dated after now: the customer has not made it yet, and as the
    latest choice it would decide over every choice made until then."""
    for node in batch.nodes:
        for name in _TIME_PROPS:
            value = node.props.get(name)
            if value is not None:
                check_micros(value, f"{node.kind}.{name}")  # type: ignore[arg-type]
        birth = node.props.get("birth_date")
        if node.kind == "Customer" and isinstance(birth, str):
            _check_date(birth)
    for edge in batch.edges:
        check_micros(edge.at, f"{edge.type} time")
        if edge.type == "CONSENTED" and edge.at > now_us:
            raise InputError("a consent choice cannot be dated in the future")
        until = edge.props.get("until")
        if until is not None:
            check_micros(until, f"{edge.type}.until")  # type: ignore[arg-type]


def _check_email(email: str) -> None:
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or " " in email:
        raise InputError("not an email address")


def _check_date(value: str) -> None:
    try:
        year = datetime.strptime(value, "%Y-%m-%d").year
    except ValueError as exc:
        raise InputError("birth_date must be a date like 1990-04-17") from exc
    if not EARLIEST.year <= year < LATEST.year:
        raise InputError(f"birth_date must be from {EARLIEST.year} to {LATEST.year - 1}")


def _same_email(stored: Value, given: str) -> bool:
    from pacte.crypto import normalise_email

    return isinstance(stored, str) and normalise_email(stored) == normalise_email(given)


def _page_size(first: int) -> int:
    if not isinstance(first, int) or first < 0 or first > _MAX_PAGE:
        raise InputError(f"first must be between 0 and {_MAX_PAGE}")
    return first


def _id_cursor(after: str | None) -> str | None:
    if after is None:
        return None
    return decode_cursor(after).id


def _encode_id_cursor(customer_id: str) -> str:
    return encode_cursor(Cursor(0, customer_id))


def _float(value: Value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _int(value: Value) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _product(node: Node) -> ProductView:
    price = node.props.get("price")
    return ProductView(
        id=node.id,
        sku=str(node.props.get("sku", "")),
        name=str(node.props.get("name", "")),
        category=str(node.props.get("category", "")),
        price=float(price) if isinstance(price, int | float) else None,
    )


def _consent_view(state: ConsentState, *, purpose: str | None = None) -> ConsentView:
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


def _decision_views(decisions: Iterable[Decision]) -> list[ConsentView]:
    """The consent to each decision's purpose: the choice that decided it, if any."""
    return [_consent_view(d.by, purpose=d.purpose) for d in decisions if d.by is not None]

