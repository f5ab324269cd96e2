"""From checked records to writes: one `Loader.apply` per batch.

Per batch: compute the keyed tokens of the records' identifiers, row keys and event
ids, look them up in one go (`Known`), resolve each record to a customer
(`pacte.identity.rules`), and collect what it brings in one `WriteBatch`, which
`Session.ingest` seals, writes and audits in one transaction.

Idempotency: an event (interaction, order line, reading) is known by its event id
(order lines: `order:<token of the order id>:<line>`); a row without one, and every
customer, consent and device row, by its row key: a keyed token of the row's kind and
mapped values. A row whose key or event id is already in the graph changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pacte.errors import InputError
from pacte.graph.policy import Policy
from pacte.graph.session import Session
from pacte.graph.store import EVENT_INDEX, Edge, IndexEntry, Node, Value, WriteBatch, event_token
from pacte.identity.merge import MergeEvidence, merge_customers
from pacte.identity.normalise import PERSONAL_KINDS, Identifier
from pacte.identity.rules import MatchRules, resolve
from pacte.ingest.records import Record

__all__ = ["ROW_INDEX", "Deferred", "Loader", "Reject", "identity_index"]

ROW_INDEX = "Ingest.row"
_PROFILE = ("name", "email", "phone", "address", "birth_date", "segment")
_EVENT_KINDS = frozenset({"interactions", "orders", "readings"})

Reject = Callable[[int, str, dict[Any, Any], str | None], None]
# A record naming several customers, with them and the evidence: merged after the
# batch it came in is written (see `Loader.merge`).
Deferred = tuple[Record, tuple[str, ...], MergeEvidence]


def identity_index(kind: str) -> str:
    return f"Identity.{kind}"


@dataclass(slots=True)
class Known:
    """What the store already holds for a batch's records, looked up in one go."""

    token: dict[Identifier, bytes]        # identifier -> keyed token
    owners: dict[bytes, list[str]]        # identifier token -> customers it points at
    redirect: dict[str, str]              # merged part -> its survivor
    row_tokens: list[bytes]               # per record: its row key (b"" if it has an event id)
    row_done: dict[bytes, list[str]]      # row keys already ingested
    event_ids: list[str | None]           # per record: its event id (None: not an event)
    events: list[bytes]                   # per record: the token of its event id (or b"")
    seen_events: dict[bytes, list[str]]   # event tokens already ingested
    profiles: dict[str, dict[str, Value]]  # customers the batch may update or match by phone
    products: dict[str, str]              # product reference -> product id
    free: set[str]                        # new customer ids checked not to be erased ones


class _Batch:
    """The writes of one batch, and what they change for the records after them."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.index: list[IndexEntry] = []
        self.products: dict[str, Node] = {}
        self.profiles: dict[str, dict[str, Value]] = {}
        self.dirty: set[str] = set()
        self.owners: dict[bytes, list[str]] = {}
        self.events: set[bytes] = set()
        self.deferred: list[Deferred] = []

    def write_batch(self) -> WriteBatch:
        customers = [Node("Customer", cid, {k: val for k, val in self.profiles[cid].items()
                                            if val is not None and k != "age_band"}, cid)
                     for cid in sorted(self.dirty)]
        return WriteBatch(nodes=[*customers, *self.products.values(), *self.nodes],
                          edges=self.edges, index=self.index)


@dataclass(slots=True)
class _Target:
    """The customer a record goes to, and how it was found."""

    cid: str
    part: str | None   # the merged part whose identifiers alone found it, if any
    created: bool
    linked: bool = False  # identifiers newly linked to it


class Loader:
    """Turns checked records into writes; one `apply` per batch."""

    def __init__(self, session: Session, *, policy: Policy, now_us: int,
                 erased: Callable[[Sequence[str]], set[str]], rules: MatchRules) -> None:
        self._s = session
        self._policy = policy
        self.deferred: list[Deferred] = []
        self._erased = erased
        self._rules = rules
        self.purposes = set(policy.purposes)
        self.now_us = now_us
        self._policy_version = policy.version
        # The writes of the last batch applied, which may still be in flight when the
        # next batch is looked up (pacte.ingest.runner overlaps the two).
        self._previous: _Batch | None = None

    def write(self, batch: WriteBatch | Iterable[WriteBatch], *,
              on_batch: Callable[[WriteBatch], object] | None = None) -> None:
        """Seal, audit and write batches (`Session.ingest`): batch k+1 is produced while
        batch k is being written."""
        try:
            self._s.ingest(batch, on_batch=on_batch)
        finally:
            self._previous = None  # everything is written (or failed): the store has it

    def apply(self, records: list[Record], source: str, reject: Reject
              ) -> tuple[list[str], WriteBatch | None]:
        """The outcome of each record and the batch that writes them (None: nothing);
        the records that need a merge first are left in `deferred`."""
        self.deferred = []
        if not records:
            return [], None
        known = self._known(records)
        kinds = self._rules.kinds_for(source)
        out = _Batch()
        outcomes: list[str] = []
        for i, rec in enumerate(records):
            ev = known.events[i]
            if (ev and (ev in known.seen_events or ev in out.events)) \
                    or (not ev and known.row_tokens[i] in known.row_done):
                outcomes.append("unchanged")
                continue
            outcome = self._one(rec, i, known, out, kinds, source, reject)
            if outcome is not None:
                outcomes.append(outcome)
        batch = out.write_batch()
        self.deferred = out.deferred
        if batch:
            # A batch with nothing to write leaves the one in flight as the overlay.
            self._previous = out
        return outcomes, batch if batch else None

    def merge(self, rec: Record, customers: tuple[str, ...], evidence: MergeEvidence,
              source: str, reject: Reject) -> str | None:
        """A record naming several customers: they are merged, then it is applied to the
        survivor (after the batch it came in is written: the merge reads the store)."""
        # An earlier merge of the batch may have joined some of them already.
        moved = self._s.survivors(customers)
        ids = sorted({moved.get(c, c) for c in customers})
        if len(ids) > 1:
            merge_customers(self._s, ids, policy=self._policy, now_us=self.now_us,
                            evidence=evidence)
        outcomes, writes = self.apply([rec], source, reject)
        if self.deferred:  # only if another merge raced this one; never silently joined
            reject(rec.line, "its identifiers still name several customers after merging",
                   rec.row, rec.kind)
            return None
        if writes:
            self.write(writes)
        if not outcomes:
            return None  # rejected
        return "merged" if len(ids) > 1 else outcomes[0]

    # -- the lookups of a batch ------------------------------------------------

    def _known(self, records: list[Record]) -> Known:
        s = self._s
        token = self._tokens(records)
        row_tokens = self._row_tokens(records)
        event_ids = [_event_id(r, t, token) for r, t in zip(records, row_tokens, strict=True)]
        events = [event_token(e) if e else b"" for e in event_ids]
        row_done, seen_events, owners = self._lookup(token, row_tokens, events)
        previous = self._previous
        if previous is not None:
            _add_unsettled(previous, owners, row_done, seen_events)
        # Identifiers of a merged customer's part point at the part: followed to the
        # survivor (pacte.identity.merge).
        matched = sorted({c for ids in owners.values() for c in ids})
        redirect = s.survivors(matched) if matched else {}
        profiles = self._profiles(records, token, owners, redirect,
                                  newer=previous.dirty if previous is not None else set())
        products = self._products(records)
        if previous is not None:
            # Written whole by the previous batch: its version is the newest.
            profiles.update({cid: previous.profiles[cid] for cid in previous.dirty})
            products.update({f"known:{pid}": pid for pid in previous.products})
        return Known(token, owners, redirect, row_tokens, row_done, event_ids, events,
                     seen_events, profiles, products, self._free(token, owners))

    def _lookup(self, token: dict[Identifier, bytes], row_tokens: list[bytes],
                events: list[bytes]
                ) -> tuple[dict[bytes, list[str]], dict[bytes, list[str]],
                           dict[bytes, list[str]]]:
        """Every index the batch needs, in one lookup (one round trip on Neo4j): the
        rows done, the events seen and the owners of the identifiers' tokens."""
        groups: dict[str, list[bytes]] = {}
        for ident, t in token.items():
            groups.setdefault(identity_index(ident.kind), []).append(t)
        groups[ROW_INDEX] = [t for t in row_tokens if t]
        groups[EVENT_INDEX] = [e for e in events if e]
        found = self._s.lookup_token_groups(groups)
        row_done, seen_events = found.pop(ROW_INDEX), found.pop(EVENT_INDEX)
        # Tokens of different kinds never collide: each kind has its own key namespace.
        owners = {t: ids for hits in found.values() for t, ids in hits.items()}
        return row_done, seen_events, owners

    def _profiles(self, records: list[Record], token: dict[Identifier, bytes],
                  owners: dict[bytes, list[str]], redirect: dict[str, str], *,
                  newer: set[str]) -> dict[str, dict[str, Value]]:
        """Profiles of the customers the batch may update or match by phone only: the
        others are not decrypted (nor those in `newer`: the previous batch's)."""
        weak = self._rules.weak
        matched = sorted({redirect.get(c, c) for r in records for i in r.identifiers
                          if r.kind == "customers" or i.kind in weak
                          for c in owners.get(token[i], ())} - newer)
        if not matched:
            return {}
        return {cid: dict(view.fields) for cid, view in self._s.customers_by_id(matched).items()}

    def _free(self, token: dict[Identifier, bytes], owners: dict[bytes, list[str]]
              ) -> set[str]:
        """The ids the batch's new customers would take (see `_new_id`) that are no
        erased customer's, checked in one read: the identifiers that point at nobody."""
        ids = {_first_id(t) for ident, t in token.items()
               if ident.kind in PERSONAL_KINDS and t not in owners}
        return ids - self._erased(sorted(ids)) if ids else set()

    def _tokens(self, records: list[Record]) -> dict[Identifier, bytes]:
        """Every identifier's keyed token (one call per kind)."""
        by_kind: dict[str, list[Identifier]] = {}
        for ident in dict.fromkeys(i for r in records for i in r.identifiers):
            by_kind.setdefault(ident.kind, []).append(ident)
        token: dict[Identifier, bytes] = {}
        for kind, group in by_kind.items():
            tokens = self._s.keyed_tokens(f"id.{kind}", [i.value for i in group])
            token.update(zip(group, tokens, strict=True))
        return token

    def _row_tokens(self, records: list[Record]) -> list[bytes]:
        """Row keys for the records that have no event id of their own (the others are
        known by it: a keyed hash of the whole row costs more than the rest of a row);
        b"" for the others."""
        keyed = [i for i, r in enumerate(records) if not _has_event_id(r)]
        row_tokens = [b""] * len(records)
        tokens = self._s.keyed_tokens("ingest.row", [records[i].key() for i in keyed])
        for i, t in zip(keyed, tokens, strict=True):
            row_tokens[i] = t
        return row_tokens

    def _products(self, records: list[Record]) -> dict[str, str]:
        """Product reference of the rows -> product id (an existing id, else 'p_' + SKU)."""
        refs = sorted({str(r.values["product"]) for r in records
                       if r.values.get("product") is not None})
        if not refs:
            return {}
        candidates = [*refs, *(_sku_id(r) for r in refs)]
        found = self._s.products_by_id(candidates)
        return {r: r if r in found else _sku_id(r) for r in refs} | {
            f"known:{p}": p for p in found}

    # -- one record ------------------------------------------------------------

    def _one(self, rec: Record, i: int, known: Known, out: _Batch, kinds: frozenset[str],
             source: str, reject: Reject) -> str | None:
        # Identifiers of kinds this source does not match on take no part at all; a
        # device serial or order id still tells which device or order the row is.
        token = known.token
        idents = [(ident, token[ident]) for ident in rec.identifiers if ident.kind in kinds]
        # The customers (or merged parts) each identifier points at, as of this record.
        held = [(ident, t, out.owners.get(t) or known.owners.get(t, [])) for ident, t in idents]
        target = self._target(rec, held, known, out, reject)
        if target is None:
            return None
        self._link(held, target, known.redirect, out)
        if rec.kind in _EVENT_KINDS:
            event_id = known.event_ids[i]
            assert event_id is not None
            ev = known.events[i]
            out.events.add(ev)
            self._event(rec, target, event_id, ev, known.products, out)
            return "created"
        row_token = known.row_tokens[i]
        if rec.kind == "customers":
            return self._customer(rec, target, row_token, known, out)
        if rec.kind == "consents":
            return self._consent(rec, target, row_token, out, source)
        return self._device(rec, target, row_token, known, out)

    def _target(self, rec: Record, held: list[tuple[Identifier, bytes, list[str]]],
                known: Known, out: _Batch, reject: Reject) -> _Target | None:
        """The customer the record goes to (created if it names nobody); None when it
        is rejected or left for a merge (`out.deferred`)."""
        redirect, weak_kinds = known.redirect, self._rules.weak
        strong, weak = _matched(held, redirect, weak_kinds)
        if len(strong) == 1 and not weak:
            # Most rows: strong identifiers naming one customer (what `resolve` says).
            cid = next(iter(strong))
            return _Target(cid, _part(cid, held, redirect), False)
        emails = {c: bool((out.profiles.get(c) or known.profiles.get(c) or {}).get("email"))
                  for c in weak}
        res = resolve(strong=strong, weak=weak, emails=emails,
                      has_email=any(ident.kind == "email" for ident, _t, _c in held))
        if res.conflict:
            named = [(ident, t) for ident, t, _c in held if ident.kind not in weak_kinds]
            out.deferred.append((rec, res.conflict, MergeEvidence(
                "exact", tuple(ident.kind for ident, _t in named),
                tuple(t.hex()[:8] for _i, t in named))))
            return None
        if res.customer is not None:
            return _Target(res.customer, _part(res.customer, held, redirect), False)
        return self._new_customer(rec, held, known.free, out, reject)

    def _new_customer(self, rec: Record, held: list[tuple[Identifier, bytes, list[str]]],
                      free: set[str], out: _Batch, reject: Reject) -> _Target | None:
        personal = [(ident, t) for ident, t, _c in held if ident.kind in PERSONAL_KINDS]
        if not personal:
            what = "device" if rec.kind == "readings" else "customer"
            reject(rec.line, f"no known {what} matches its identifiers", rec.row, rec.kind)
            return None
        cid = self._new_id(personal[0][1], free)
        profile: dict[str, Value] = {"created_at": _time_of(rec) or self.now_us}
        for ident, _t in personal:
            if ident.kind in ("email", "phone"):
                profile.setdefault(ident.kind, ident.value)
        out.profiles[cid] = profile
        out.dirty.add(cid)
        return _Target(cid, None, True)

    def _new_id(self, token: bytes, free: set[str]) -> str:
        """A new customer's id, from the token of its first identifier: the same in every
        run (a resumed run equals an uninterrupted one), but never an erased customer's."""
        for generation in range(1000):
            seed = token if generation == 0 else hashlib.sha256(
                token + generation.to_bytes(2, "big")).digest()
            cid = _first_id(seed)
            if cid in free or not self._erased([cid]):
                return cid
        raise InputError("no free customer id for this identifier")

    @staticmethod
    def _link(held: list[tuple[Identifier, bytes, list[str]]], target: _Target,
              redirect: dict[str, str], out: _Batch) -> None:
        """Identifiers the record carries that do not point at its customer yet are
        linked to it (to the part, for a record found through a part's)."""
        owner = target.part or target.cid
        for ident, t, cids in held:
            if target.cid not in {redirect.get(c, c) for c in cids}:
                out.owners[t] = [*cids, owner]
                out.index.append(IndexEntry(identity_index(ident.kind), t, owner))
                target.linked = True

    def _customer(self, rec: Record, target: _Target, row_token: bytes, known: Known,
                  out: _Batch) -> str:
        cid, created = target.cid, target.created
        profile = out.profiles.get(cid)
        if profile is None:
            profile = out.profiles[cid] = dict(known.profiles.get(cid, {}))
        v = rec.values
        changed = False
        for name in _PROFILE:
            value = v.get(name)
            if value is not None and profile.get(name) != value:
                profile[name] = value
                changed = True
        if created and v.get("created_at") is not None:
            profile["created_at"] = v["created_at"]
        if changed or created:
            out.dirty.add(cid)
        out.index.append(IndexEntry(ROW_INDEX, row_token, cid))
        return "created" if created else "updated" if changed or target.linked \
            else "unchanged"

    def _consent(self, rec: Record, target: _Target, row_token: bytes, out: _Batch,
                 source: str) -> str:
        v, cid = rec.values, target.cid
        props: dict[str, Value] = {
            "status": v["status"], "until": None, "source": v.get("source") or source,
            "policy_version": self._policy_version, "proof": None, **_tag(target.part)}
        out.edges.append(Edge("CONSENTED", "k_" + row_token.hex()[:16], cid,
                              str(v["purpose"]), _int(v["at"]), props))
        out.index.append(IndexEntry(ROW_INDEX, row_token, cid))
        return "created"

    def _device(self, rec: Record, target: _Target, row_token: bytes, known: Known,
                out: _Batch) -> str:
        assert rec.kind == "devices", rec.kind
        v, cid, part = rec.values, target.cid, target.part
        serial = known.token[next(i for i in rec.identifiers if i.kind == "device")]
        did = "d_" + serial.hex()[:16]
        props: dict[str, Value] = {"device_type": v.get("device_type"),
                                   "model": v.get("model"),
                                   "location": v.get("location"), "telemetry": None}
        out.nodes.append(Node("Device", did, props, part or cid))
        out.edges.append(Edge("OWNS", "o_" + did[2:], cid, did,
                              _time_of(rec) or self.now_us, _tag(part)))
        out.index.append(IndexEntry(ROW_INDEX, row_token, cid))
        return "updated" if known.owners.get(serial) else "created"

    def _event(self, rec: Record, target: _Target, event_id: str, ev: bytes,
               products: dict[str, str], out: _Batch) -> None:
        v, cid, part = rec.values, target.cid, target.part
        # Prefixed by the customer's id: the events of one customer, which exports list
        # together, are written side by side in the store's id order (about a fifth
        # less work than scattering them; a customer's 360 reads neighbouring rows).
        iid = f"i_{cid.removeprefix('c_')}_{ev.hex()[:16]}"
        at = _time_of(rec) or self.now_us
        if rec.kind == "readings":
            props: dict[str, Value] = {"channel": "iot", "kind": "telemetry", "occurred_at": at,
                                       "event_id": event_id, "summary": v.get("reading"),
                                       "amount": None}
        else:
            kind = "purchase" if rec.kind == "orders" else str(v["kind"])
            props = {"channel": v.get("channel"), "kind": kind, "occurred_at": at,
                     "event_id": event_id, "summary": v.get("summary"),
                     "amount": _float(v.get("amount"))}
        out.nodes.append(Node("Interaction", iid, props, part or cid))
        out.edges.append(Edge("HAD", "h_" + iid, cid, iid, at, _tag(part)))
        out.index.append(IndexEntry(EVENT_INDEX, ev, iid))
        ref = v.get("product")
        if ref is not None:
            pid = products[str(ref)]
            if f"known:{pid}" not in products and pid not in out.products:
                out.products[pid] = Node("Product", pid, {"sku": str(ref), "name": str(ref),
                                                          "category": None, "price": None})
            out.edges.append(Edge("ABOUT", "a_" + iid, iid, pid, at))
            if props["kind"] == "purchase":
                out.edges.append(Edge("BOUGHT", "b_" + iid, cid, pid, at,
                                      {"amount": props["amount"], **_tag(part)}))


def _add_unsettled(previous: _Batch, owners: dict[bytes, list[str]],
                   row_done: dict[bytes, list[str]], seen_events: dict[bytes, list[str]]
                   ) -> None:
    """Add what the previous batch writes to what the store answered: the store may or
    may not have it yet (its write may be in flight). It only adds entries, so the union
    is right either way."""
    for t, cids in previous.owners.items():
        owners[t] = list(dict.fromkeys([*owners.get(t, ()), *cids]))
    for entry in previous.index:
        if entry.name == ROW_INDEX:
            row_done.setdefault(entry.token, [entry.node_id])
    for ev in previous.events:
        seen_events.setdefault(ev, [])


def _first_id(token: bytes) -> str:
    return "c_" + token.hex()[:12]


def _matched(held: list[tuple[Identifier, bytes, list[str]]], redirect: dict[str, str],
             weak_kinds: frozenset[str]) -> tuple[set[str], set[str]]:
    """The customers the record's strong identifiers point at, and its weak ones (merged
    parts followed to their survivors)."""
    strong: set[str] = set()
    weak: set[str] = set()
    for ident, _t, cids in held:
        (weak if ident.kind in weak_kinds else strong).update(redirect.get(c, c) for c in cids)
    return strong, weak


def _part(cid: str, held: list[tuple[Identifier, bytes, list[str]]],
          redirect: dict[str, str]) -> str | None:
    """The merged part of `cid` whose identifiers alone found the record, if one did:
    what the record brings is the part's, tagged so that an unmerge sends it back
    (pacte.identity.merge)."""
    if not redirect or any(cid in cids for _i, _t, cids in held):
        return None
    parts = {c for _i, _t, cids in held for c in cids if redirect.get(c) == cid}
    return min(parts) if len(parts) == 1 else None


def _event_id(rec: Record, row_token: bytes, token: dict[Identifier, bytes]) -> str | None:
    v = rec.values
    if rec.kind == "orders":
        # The order id is an identifier: the event id holds its keyed token, not its value.
        order = next(i for i in rec.identifiers if i.kind == "order")
        return f"order:{token[order].hex()}:{v.get('line') or 1}"
    if rec.kind in ("interactions", "readings"):
        given = v.get("event_id")
        return str(given) if given is not None else "row:" + row_token.hex()
    return None


def _tag(part: str | None) -> dict[str, Value]:
    """The props that mark an edge as a merged part's (sent back by an unmerge)."""
    return {"part": part} if part is not None else {}


def _has_event_id(rec: Record) -> bool:
    return rec.kind == "orders" or (rec.kind in ("interactions", "readings")
                                    and rec.values.get("event_id") is not None)


def _time_of(rec: Record) -> int | None:
    for name in ("occurred_at", "ordered_at", "at", "created_at"):
        value = rec.values.get(name)
        if isinstance(value, int):
            return value
    return None


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _sku_id(ref: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in ref)[:80]
    # A reference that is already a product id keeps it (a catalogue not loaded yet).
    return safe if safe.startswith("p_") else "p_sku_" + safe
