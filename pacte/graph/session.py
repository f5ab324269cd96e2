"""The purpose-bound session: the one door to customer data (G2-G6, G10).

A `Session` is bound to one principal and one declared purpose for one request. It
refuses what the policy refuses, hides customers without an active consent from
everything (lookups, lists, counts, traversals, error texts), decrypts only the
fields the purpose may use, cuts interactions at the purpose's retention, and
writes an audit entry for every read, write and denial before returning.

No customer's data or consent is cached across sessions: consent is read from the
store on each request, so a withdrawal holds from the next request on, on every process
(G5). Within one session, consent states are memoised, since a session is one request.
What the policy alone decides for a role under a purpose (fields, categories, admitted
actions) is kept across sessions in a grant, keyed by the policy version, role and
purpose (pacte.graph.grants, docs/door-cost.md).

This module holds the decisions; the audit steps and the plain reads and writes made
once they are taken are its base `Access` (pacte.graph.access). The features (customer
reads, consents, writes, erasure, ...) are functions in `pacte.features`, typed against
the primitives listed in `pacte.features.door.Door` and bound here as methods of the
same name: features never import this module, so there is no import cycle.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from pacte.clock import from_micros, to_micros
from pacte.errors import (
    Forbidden,
    InputError,
    NotFound,
    PurposeNotGranted,
    PurposeRequired,
    UnknownPurpose,
)
from pacte.features import analysts as _analysts
from pacte.features import consents as _consents
from pacte.features import customers as _customers
from pacte.features import identity as _identity
from pacte.features import ingest as _ingest
from pacte.features import interactions as _interactions
from pacte.features import predictions as _predictions
from pacte.features import products as _products
from pacte.features import recommendations as _recommendations
from pacte.features import reports as _reports
from pacte.features import rights as _rights
from pacte.features import writes as _writes
from pacte.features.identity import MergeGraph
from pacte.graph.access import Access, Backend
from pacte.graph.checks import check_id
from pacte.graph.codec import index_name
from pacte.graph.consent import ConsentState, consent_states, decide
from pacte.graph.grants import MAX_CATEGORIES, Grant, field_reason, grant_of, granted, split_fields
from pacte.graph.model import MERGED_PART, NODE_KINDS, Field, NodeKind
from pacte.graph.operations import OPERATIONS, Action, Capability, Role
from pacte.graph.policy import Purpose
from pacte.graph.principals import Principal
from pacte.graph.read_scope import NO_SCOPE, Around, scoped
from pacte.graph.steps import Step, claim
from pacte.graph.store import Node, Value
from pacte.graph.views import CustomerView, Withheld

__all__ = ["Backend", "MergeGraph", "Session"]

_DAY_US = 86_400 * 1_000_000

_CUSTOMER = NODE_KINDS["Customer"]
# The field names a caller may ask for by name (`fields=`), per kind.
_KNOWN = {kind.name: frozenset(f.name for f in kind.fields) for kind in NODE_KINDS.values()}


class Session(Access):
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
        self.request_id = request_id or _request_id()
        self._defer = defer_audit
        self._pending: list[Step] = []
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
        self._purpose: Purpose | None = None
        # What the policy decides for this role and purpose, made once for all requests.
        self._grant = self._admit(purpose)
        self._purpose = self._grant.purpose
        self._purpose_id = self._purpose.id
        # The codec's open itself rather than a method that calls it: features open
        # every row they return through it (twenty interactions per 360).
        self._open = backend.codec.open

    @property
    def purpose(self) -> Purpose:
        assert self._purpose is not None  # set by __init__, or __init__ raised
        return self._purpose

    @property
    def now(self) -> datetime:
        """The time of this request: consent, retention and predictions are as of it."""
        return from_micros(self._now_us)

    # -- admission and audit --------------------------------------------------

    def _admit(self, purpose_id: str | None) -> Grant:
        """The grant of this principal's purpose, or a refusal on record.

        What depends on the policy, role and purpose alone was checked when their grant
        was made; a principal still has to hold the purpose and not be revoked.
        """
        policy = self._b.policy
        principal = self.principal
        grant = granted(policy.version, principal.role, purpose_id)
        if grant is not None and principal.may_claim(grant.purpose.id) \
                and not principal.revoked:
            self._claimed = grant.purpose.id  # a policy's id, recorded as it is
            return grant
        # What the caller claimed, as the trail and messages may repeat it: anything
        # but a short purpose-like name is recorded as its hash (see steps.claim).
        self._claimed = claim(purpose_id)
        if not purpose_id:
            self._deny(Action.SESSION_OPEN, PurposeRequired("a purpose is required"))
        assert purpose_id is not None
        purpose = policy.get(purpose_id)
        if purpose is None:
            # Which purposes exist is public (the policy, `pacte purposes`): saying so
            # tells a caller nothing about any key or customer.
            self._deny(Action.SESSION_OPEN, UnknownPurpose(
                f"unknown purpose {self._claimed!r}; the policy's purposes are listed by "
                "`pacte purposes`"))
        if not self.principal.may_claim(purpose_id) or self.principal.revoked:
            self._deny(Action.SESSION_OPEN, PurposeNotGranted(
                f"purpose {self._claimed!r} is not granted to this principal"))
        assert purpose is not None
        if purpose.analysts_only and self.principal.role not in (Role.ANALYST, Role.ADMIN):
            self._deny(Action.SESSION_OPEN, PurposeNotGranted(
                f"purpose {self._claimed!r} is for analysts only"))
        return grant_of(policy.version, self.principal.role, purpose)

    def _gate(self, action: Action) -> None:
        """Refuse `action` (audited) unless its declaration (pacte.graph.operations)
        admits this principal and purpose: single records, role, then capability."""
        # An admission depends only on the policy version, role, purpose and action:
        # once admitted, the grant of the first three admits it again without the checks
        # (a request gates each of its reads). Refusals are never remembered.
        admitted = self._grant.admitted
        if action in admitted:
            return
        op = OPERATIONS[action]
        if op.single_records:
            self._no_single_records(action)
        if op.roles is not None:
            self._require_role(action, *op.roles)
        if op.capability is not None and not self._may(op.capability):
            policy = self._b.policy
            able = [p for p in policy.purposes if policy.allows(p, op.capability)]
            # The policy is public: naming the purposes that may tells nothing of anyone.
            self._deny(action, PurposeNotGranted(
                f"{action.replace('.', ' ')} must be requested under a purpose that may "
                f"{op.capability.replace('_', ' ')}: "
                + (" or ".join(repr(p) for p in able) or "none in this policy")))
        admitted.add(action)  # bounded: one per declared operation

    def _may(self, capability: Capability) -> bool:
        """Whether this purpose may do `capability`, as the policy file says."""
        return self._b.policy.allows(self._purpose_id, capability)

    def _require_role(self, action: str, *roles: str) -> None:
        if self.principal.role not in roles:
            self._deny(action, Forbidden(
                f"role {self.principal.role!r} may not {action.replace('.', ' ')}"))

    # -- consent and visibility -----------------------------------------------

    def _consent_map(self, customer_ids: Sequence[str]) -> dict[str, dict[str, ConsentState]]:
        missing = [c for c in customer_ids if c not in self._consents]
        if missing:
            edges = self._b.store.edges_many(missing, "CONSENTED")
            for cid in missing:
                self._consents[cid] = consent_states(edges[cid], at=self._now_us)
        return {c: self._consents[c] for c in customer_ids}

    def _consent_states(self, customer_id: str) -> dict[str, ConsentState]:
        """`_consent_map([customer_id])[customer_id]`, for one customer's own consents:
        the plain read of one costs less than the read of many, and answers the same
        (within a read scope as well)."""
        states = self._consents.get(customer_id)
        if states is None:
            states = self._consents[customer_id] = consent_states(
                self._b.store.edges(customer_id, "CONSENTED"), at=self._now_us)
        return states

    def _covered(self, states: Mapping[str, ConsentState]) -> bool:
        # The one rule (pacte.graph.consent.decide): every visibility check asks it.
        return decide(self._b.policy, self._purpose_id, states).granted

    def _visible_ids(self, customer_ids: Sequence[str]) -> list[str]:
        """The ids, in order, of customers this purpose may see (opt-in, G3)."""
        if not self._grant.needs_consent:
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

    def _visible_one(self, customer_id: str) -> Node | None:
        """`_visible_customers([customer_id])`, for the common read of one customer: the
        same reads and decisions, in fewer steps where no consent is needed."""
        node = self._visible.get(customer_id)
        if node is not None:
            return node  # already read, and found visible, in this request
        if self._grant.needs_consent:
            found = self._visible_customers([customer_id])
            return found[0] if found else None
        node = self._customer_nodes([customer_id]).get(customer_id)
        if node is not None:
            self._visible[customer_id] = node
        return node

    def _visible_customers(self, ids: Sequence[str]) -> list[Node]:
        if len(ids) == 1 and (seen := self._visible.get(ids[0])) is not None:
            return [seen]  # the common case: one customer, already read in this request
        nodes = self._customer_nodes(ids)
        absent = next((i for i in ids if i not in nodes), None)
        present = [i for i in ids if i in nodes]
        keep = self._visible_ids(present)
        if self._grant.needs_consent:
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
        if self.principal.role == Role.ANALYST:
            self._deny(action, Forbidden("analysts receive projections, never single records"))

    # -- field gating ---------------------------------------------------------

    def _reason(self, f: Field) -> str | None:
        """Why `f` is withheld under this session, or None when it may be returned."""
        return field_reason(f, self._grant.purpose, self.principal.role)

    def _split(self, kind: NodeKind) -> tuple[tuple[str, ...], tuple[Withheld, ...]]:
        """The names of `kind`'s fields this session may return, and the withheld ones
        with why."""
        # By value: a kind of the catalogue (the same object, or an equal one) is answered
        # from the grant, made once per policy version, role and purpose; any other kind
        # is decided field by field, and nothing of it is kept.
        known = NODE_KINDS.get(kind.name)
        if known is kind or known == kind:
            return self._grant.splits[kind.name]
        return split_fields(kind.fields, self._grant.purpose, self.principal.role)

    def _category_ok(self, category: str) -> bool:
        # Depends only on the policy version, role and purpose: kept in their grant.
        known = self._grant.categories
        ok = known.get(category)
        if ok is None:
            ok = self.principal.role != Role.AUDITOR and self._grant.purpose.may_use(category)
            if len(known) < MAX_CATEGORIES:
                known[category] = ok
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
        allowed, _ = self._split(kind)
        return [n for n in allowed if n in fields]

    def _customer_view(self, node: Node, names: list[str] | None = None, *,
                       opened: Mapping[str, Value] | None = None) -> CustomerView:
        """The view of `node`; `opened` holds fields already decrypted, not opened again."""
        allowed, withheld = self._split(_CUSTOMER)
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
        store = scoped(self._b.store)
        return store.read_scope() if store is not None else NO_SCOPE

    def prefetch(self, customer_id: str) -> None:
        """Inside `read_scope`, read a customer's 360 neighbourhood in one round trip.

        What it reads (the customer, the newest interactions with their products, the
        purchases, the consents) is returned to nobody: the reads that follow take what
        they may from it. Outside a scope, or on a store without one, it does nothing.
        """
        check_id(customer_id)
        store = scoped(self._b.store)
        if store is not None:
            store.prefetch(customer_id, self._grant.hops)

    def _prefetch_page(self, after: str | None, want: int) -> None:
        """Inside a read scope, read the page `_visible_page(after, want)` reads and the
        360 neighbourhood of each of its customers in one round trip, when the purpose
        needs no consent (the page is then a plain scan; the consenting customers of a
        page are found through their consents, not prefetched). Elsewhere, nothing."""
        store = scoped(self._b.store)
        if store is not None and not self._grant.needs_consent:
            store.prefetch_page("Customer", after=after, limit=want, hops=self._grant.hops)

    def _prefetch_lookup(self, field: str, token: bytes, *, miss: str) -> None:
        """Inside a read scope, read the customers whose `field` has `token`, each with
        what `prefetch` reads around a customer, in one round trip; when there are none,
        the decoy a lookup of the id `miss` reads (see `_decoy_read`), so that a miss
        and a hidden match make the same round trips (G3). Elsewhere it does nothing."""
        store = scoped(self._b.store)
        if store is not None:
            store.prefetch_lookup(index_name("Customer", field), token, self._grant.hops,
                                  kind="Customer", decoy_after=miss)

    def around(self, customer_id: str) -> AbstractContextManager[None]:
        """`read_scope` with `prefetch(customer_id)` done first."""
        if scoped(self._b.store) is None:
            check_id(customer_id)  # as `prefetch` would
            return NO_SCOPE
        return Around(self, customer_id)

    # -- reads ----------------------------------------------------------------

    # -- visible customers, listed -------------------------------------------------

    def _visible_page(self, after: str | None, want: int) -> list[Node]:
        """Up to `want` visible customers after the id `after`, in id order."""
        if self._grant.needs_consent:
            return self._consenting_customers(after, want)
        return self._b.store.scan_nodes("Customer", after=after, limit=want)

    def _visible_count(self) -> int:
        """How many customers this purpose may see."""
        if self._grant.needs_consent:
            return len(self._consented_ids())
        return self._b.store.count_nodes().get("Customer", 0)

    def _visible_all(self) -> list[str]:
        """The sorted ids of every customer this purpose may see (for projections)."""
        return self._consented_ids() if self._grant.needs_consent else self._all_customer_ids()

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
        purposes = self._b.policy.ancestors(self._purpose_id)
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

    def _require_visible(self, action: str, customer_id: str) -> Node:
        """The customer's node, or NotFound with the same text whether absent or hidden."""
        if type(customer_id) is str and (node := self._visible.get(customer_id)) is not None:
            return node  # checked, read and found visible earlier in this request
        check_id(customer_id)
        node = self._visible_one(customer_id)
        if node is None:
            self._audit(self._record(action, subjects=[customer_id], outcome="not_found"))
            raise NotFound(f"no customer {customer_id!r}")
        return node

    def _horizon(self) -> int:
        days = self._grant.retention_days
        return self._now_us - days * _DAY_US if days else -(2**62)

    # -- the features, bound as methods (pacte.features) ---------------------------
    # Each is a function of its feature module over the primitives above, so users
    # call `session.customer(...)`; mypy checks the session against
    # `pacte.features.door.Door` where each is bound.

    customer = _customers.customer
    customers_by_id = _customers.customers_by_id
    customer_by_email = _customers.customer_by_email
    customer_by_phone = _customers.customer_by_phone
    customers = _customers.customers
    count_customers = _customers.count_customers
    interactions = _interactions.interactions
    products_of = _products.products_of
    product = _products.product
    products_by_id = _products.products_by_id
    products = _products.products
    buyers = _products.buyers
    referrals = _products.referrals
    devices = _products.devices
    reviews = _products.reviews
    consents = _consents.consents
    consent_history = _consents.consent_history
    explain = _consents.explain
    grant_consent = _consents.grant_consent
    withdraw_consent = _consents.withdraw_consent
    upsert_customer = _writes.upsert_customer
    record_interaction = _writes.record_interaction
    erase = _rights.erase
    export = _rights.export
    transparency_link = _rights.transparency_link
    ingest = _ingest.ingest
    project = _analysts.project
    record_release = _analysts.record_release
    privacy_spent = _analysts.privacy_spent
    recommendations = _recommendations.recommendations
    purchases_following = _predictions.purchases_following
    record_prediction = _predictions.record_prediction
    purposes = _reports.purposes
    stats = _reports.stats
    audit_trail = _reports.audit_trail
    audit_lookup = _reports.audit_lookup
    audit_verification = _reports.audit_verification
    trace = _reports.trace
    access_report = _reports.access_report
    record_of_processing = _reports.record_of_processing
    my_data_uses = _reports.my_data_uses
    keyed_tokens = _identity.keyed_tokens
    lookup_tokens = _identity.lookup_tokens
    lookup_token_groups = _identity.lookup_token_groups
    identifier_refs = _identity.identifier_refs
    survivors = _identity.survivors
    merge_graph = _identity.merge_graph
    merge_write = _identity.merge_write



# -- small helpers ---------------------------------------------------------------


# Request ids not yet handed out: 128 random bits each, as secrets.token_hex(16) makes
# them, drawn from the OS a batch at a time (a system call costs as much as the rest of
# opening a session). `list.pop` is atomic, so threads share it without a lock; a forked
# child empties it, so that no two processes hand out the same ids.
_REQUEST_IDS: list[str] = []
_REQUEST_ID_BATCH = 256
os.register_at_fork(after_in_child=_REQUEST_IDS.clear)


def _request_id() -> str:
    try:
        return _REQUEST_IDS.pop()
    except IndexError:
        raw = os.urandom(16 * _REQUEST_ID_BATCH).hex()
        _REQUEST_IDS.extend(raw[i:i + 32] for i in range(32, len(raw), 32))
        return raw[:32]


# Candidates read per purpose and round when listing consenting customers (at least).
_CONSENT_PAGE = 64
# The same when every consenting customer is wanted (counts, projections).
_CONSENT_BULK = 5000


# Not a valid customer id (ids never hold a NUL), so never found.
_NO_CUSTOMER = "c_\x00absent"
