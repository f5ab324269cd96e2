"""The ingestion loop: rows in, batches of checked writes out, through the session.

Per batch of rows: parse and check every row (a bad one is rejected whole), compute
the keyed tokens of their identifiers, row keys and event ids, look them up in one go,
resolve each record to a customer (`pacte.identity.rules`), and hand one `WriteBatch`
to `Session.ingest`, which seals, writes and audits it in one transaction. Then the
resume checkpoint moves past the batch.

Idempotency: an event (interaction, order line, reading) is known by its event id
(order lines: `order:<token of the order id>:<line>`); a row without one, and every customer,
consent and device row, by its row key: a keyed token of the row's kind and mapped
values. A row whose key or event id is already in the graph changes nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pacte.clock import to_micros
from pacte.errors import InputError
from pacte.graph.policy import Policy
from pacte.graph.session import Session
from pacte.graph.store import EVENT_INDEX, Edge, IndexEntry, Node, Value, WriteBatch, event_token
from pacte.identity.merge import MergeEvidence, merge_customers
from pacte.identity.normalise import PERSONAL_KINDS, Identifier
from pacte.identity.rules import MatchRules, resolve
from pacte.ingest.formats import BadRow, Row, detect_format, open_source, read_rows, source_name
from pacte.ingest.mapping import Mapping, canonical_kind, guess_kind
from pacte.ingest.records import Record, to_record
from pacte.ingest.rejects import RejectFile, masked
from pacte.ingest.resume import Checkpoints, file_digest

__all__ = ["OUTCOMES", "FileReport", "IngestReport", "ingest_files"]

OUTCOMES = ("created", "updated", "merged", "unchanged", "rejected")
ROW_INDEX = "Ingest.row"
# Rows per batch: one write, one checkpoint, one lookup per index. Fewer, larger
# batches cost less per row (each has its lookups, audit entries and transaction).
BATCH_ROWS = 5000
_PROFILE = ("name", "email", "phone", "address", "birth_date", "segment")


def identity_index(kind: str) -> str:
    return f"Identity.{kind}"


@dataclass
class FileReport:
    source: str
    kind: str | None = None
    read: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        return f"{self.source}: read {self.read}, {parts}"


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)
    rejects: Path | None = None

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files)

    def count(self, outcome: str) -> int:
        return sum(f.counts[outcome] for f in self.files)

    @property
    def rejected(self) -> int:
        return self.count("rejected")

    def to_json(self) -> dict[str, object]:
        return {"read": self.read, **{k: self.count(k) for k in OUTCOMES},
                "rejects": None if self.rejects is None or not self.rejected
                else str(self.rejects),
                "files": [{"source": f.source, "kind": f.kind, "read": f.read, **f.counts}
                          for f in self.files]}

    def summary(self) -> str:
        """One line: read, created, updated, merged, unchanged, rejected."""
        parts = ", ".join(f"{k} {self.count(k)}" for k in OUTCOMES)
        line = f"read {self.read}, {parts}"
        if self.rejects is not None and self.rejected:
            line += f" (rejected rows: {self.rejects})"
        return line


Progress = Callable[[str, int], object]


def ingest_files(session: Session, files: Sequence[str], *, mapping: Mapping,
                 format: str | None, max_errors: int | None, policy: Policy,
                 work_dir: Path, now: datetime,
                 erased: Callable[[str], bool], rules: MatchRules,
                 progress: Progress | None = None, batch_rows: int = BATCH_ROWS
                 ) -> IngestReport:
    report = IngestReport()
    run = now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
    rejects = RejectFile(work_dir / "rejects" / f"ingest-{run}.csv")
    report.rejects = rejects.path
    checkpoints = Checkpoints(work_dir / "ingest-progress")
    loader = _Loader(session, policy=policy, now_us=to_micros(now), erased=erased,
                     rules=rules)
    try:
        for path in files:
            file_report = FileReport(source_name(path))
            report.files.append(file_report)
            _ingest_file(loader, path, file_report, mapping=mapping, format=format,
                         max_errors=max_errors, rejects=rejects, checkpoints=checkpoints,
                         progress=progress, batch_rows=batch_rows)
    finally:
        rejects.close()
    return report


def _ingest_file(loader: _Loader, path: str, report: FileReport, *, mapping: Mapping,
                 format: str | None, max_errors: int | None, rejects: RejectFile,
                 checkpoints: Checkpoints, progress: Progress | None, batch_rows: int
                 ) -> None:
    name = source_name(path)
    # The source's name for the matching rules: --source, else the file's stem.
    source = mapping.source or (Path(path).stem if path != "-" else "stdin")
    with ExitStack() as stack:
        stream = open_source(path)
        if path != "-":
            stack.callback(stream.close)
        head = stream.peek(64)[:64] if hasattr(stream, "peek") else b""
        fmt = format or mapping.format or detect_format(path, head)
        key = None
        if path != "-":
            key = f"{file_digest(path)[:32]}-{mapping.fingerprint()}-{fmt}"
        done = checkpoints.line(key) if key else 0
        kind_of: Callable[[dict[str, Any]], str | None] | None = None
        batch: list[Record] = []
        last_line = 0

        def reject(line: int, reason: str, row: dict[Any, Any], kind: str | None) -> None:
            report.counts["rejected"] += 1
            rejects.add(name, line, reason, masked(row, mapping, kind))
            if max_errors is not None and report.counts["rejected"] > max_errors:
                rejects.flush()
                raise InputError(f"{name}: more than {max_errors} rows rejected; stopped at "
                                 f"line {line} (rows before it are in)")

        # Batch k is written on a second thread while the rows of batch k+1 are parsed;
        # its identities are resolved only once batch k has committed.
        writer = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="pacte-ingest"))
        pending: list[tuple[Future[None] | None, int, int]] = []

        def settle() -> None:
            while pending:
                write, line, read = pending.pop()
                if write is not None:
                    write.result()
                if key:
                    checkpoints.save(key, line)
                if progress is not None:
                    progress(name, read)

        def commit() -> None:
            settle()
            outcomes, writes = loader.apply(batch, source, reject)
            for outcome in outcomes:
                report.counts[outcome] += 1
            batch.clear()
            rejects.flush()
            write = writer.submit(loader.write, writes) if writes else None
            if deferred := loader.deferred:
                # Merges read the store: the batch goes in first, and they are done
                # before the checkpoint moves past their rows.
                if write is not None:
                    write.result()
                    write = None
                for rec, customers, evidence in deferred:
                    merged = loader.merge(rec, customers, evidence, source, reject)
                    if merged is not None:
                        report.counts[merged] += 1
                rejects.flush()
            pending.append((write, last_line, report.read))

        for item in read_rows(stream, name=name, format=fmt):
            report.read += 1
            if item.line <= done:
                report.counts["unchanged"] += 1  # committed by an earlier, killed run
                continue
            last_line = item.line
            if isinstance(item, BadRow):
                reject(item.line, item.reason, item.raw, None)
                continue
            if kind_of is None:
                kind_of = _kind_rule(path, item, mapping)
                report.kind = kind_of(item.record)
            kind = kind_of(item.record)
            if kind is None:
                reject(item.line, "cannot tell what kind of record this is "
                       "(give --mapping with kind or kind_field)", item.record, None)
                continue
            try:
                rec = to_record(kind, item.line, item.record, mapping)
                if kind == "consents" and rec.values["purpose"] not in loader.purposes:
                    raise InputError("purpose: not a purpose of the policy")
                if kind == "consents" and _int(rec.values["at"]) > loader.now_us:
                    # Not made yet; as the latest choice it would overrule every later one.
                    raise InputError("at: a consent choice cannot be dated in the future")
                batch.append(rec)
            except InputError as exc:
                reject(item.line, str(exc), item.record, kind)
                continue
            if len(batch) >= batch_rows:
                commit()
        commit()
        settle()
        if key:
            checkpoints.clear(key)


def _kind_rule(path: str, first: Row, mapping: Mapping
               ) -> Callable[[dict[str, Any]], str | None]:
    """How to tell each record's kind: the mapping's rule; else a `type` field naming a
    kind (a mixed source); else the file's name or header."""
    if mapping.kind is not None or mapping.kind_field is not None:
        return mapping.kind_of
    value = first.record.get("type")
    if isinstance(value, str) and canonical_kind(value) is not None:
        return Mapping(kind_field="type", kinds=mapping.kinds).kind_of
    guessed = guess_kind(path, list(first.record))
    return lambda _record: guessed


Reject = Callable[[int, str, dict[Any, Any], str | None], None]


class _Loader:
    """Turns checked records into writes; one `apply` per batch."""

    def __init__(self, session: Session, *, policy: Policy, now_us: int,
                 erased: Callable[[str], bool], rules: MatchRules) -> None:
        self._s = session
        self._policy = policy
        self._redirect: dict[str, str] = {}
        self.deferred: list[tuple[Record, tuple[str, ...], MergeEvidence]] = []
        self._erased = erased
        self._rules = rules
        self.purposes = set(policy.purposes)
        self.now_us = now_us
        self._policy_version = policy.version

    def write(self, batch: WriteBatch) -> None:
        self._s.ingest(batch)

    def apply(self, records: list[Record], source: str, reject: Reject
              ) -> tuple[list[str], WriteBatch | None]:
        """The outcome of each record and the batch that writes them (None: nothing);
        the records that need a merge first are left in `deferred`."""
        self.deferred = []
        if not records:
            return [], None
        s = self._s
        # -- every token the batch needs, then one lookup per index ---------------
        idents = sorted({i for r in records for i in r.identifiers})
        by_kind: dict[str, list[Identifier]] = {}
        for ident in idents:
            by_kind.setdefault(ident.kind, []).append(ident)
        token: dict[Identifier, bytes] = {}
        owners: dict[bytes, list[str]] = {}
        for kind, group in by_kind.items():
            tokens = s.keyed_tokens(f"id.{kind}", [i.value for i in group])
            token.update(zip(group, tokens, strict=True))
            owners.update(s.lookup_tokens(identity_index(kind), tokens))
        # Identifiers of a merged customer's part point at the part: followed to the
        # survivor (pacte.identity.merge).
        found = sorted({c for ids in owners.values() for c in ids})
        self._redirect = s.survivors(found) if found else {}
        # Row keys for the records that have no event id of their own (the others are
        # known by it): a keyed hash of the whole row costs more than the rest of a row.
        keyed = [i for i, r in enumerate(records) if not _has_event_id(r)]
        row_tokens = [b""] * len(records)
        for i, t in zip(keyed, s.keyed_tokens("ingest.row", [records[i].key() for i in keyed]),
                        strict=True):
            row_tokens[i] = t
        row_done = s.lookup_tokens(ROW_INDEX, [row_tokens[i] for i in keyed])
        event_ids = [_event_id(r, t, token) for r, t in zip(records, row_tokens, strict=True)]
        events = [event_token(e) if e else b"" for e in event_ids]
        seen_events = s.lookup_tokens(EVENT_INDEX, [e for e in events if e])
        # Profiles of the customers the batch may update or match by phone only: the
        # others are not decrypted.
        matched = sorted({self._redirect.get(c, c) for r in records for i in r.identifiers
                          if r.kind == "customers" or i.kind in self._rules.weak
                          for c in owners.get(token[i], ())})
        profiles: dict[str, dict[str, Value]] = {
            cid: dict(view.fields) for cid, view in s.customers_by_id(matched).items()
        } if matched else {}
        products = self._products(records)

        out = _Batch()
        outcomes: list[str] = []
        for rec, row_token, event_id, ev in zip(records, row_tokens, event_ids, events,
                                                strict=True):
            if (ev and ev in seen_events) or (not ev and row_token in row_done) \
                    or ev in out.events:
                outcomes.append("unchanged")
                continue
            outcome = self._one(rec, row_token, event_id, ev, token, owners, profiles,
                                products, out, source, reject)
            if outcome is not None:
                outcomes.append(outcome)
        batch = out.write_batch()
        self.deferred = out.deferred
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

    def _new_id(self, token: bytes) -> str:
        """A new customer's id, from the token of its first identifier: the same in every
        run (a resumed run equals an uninterrupted one), but never an erased customer's."""
        for generation in range(1000):
            seed = token if generation == 0 else hashlib.sha256(
                token + generation.to_bytes(2, "big")).digest()
            cid = "c_" + seed.hex()[:12]
            if not self._erased(cid):
                return cid
        raise InputError("no free customer id for this identifier")

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

    def _one(self, rec: Record, row_token: bytes, event_id: str | None, ev: bytes,
             token: dict[Identifier, bytes], owners: dict[bytes, list[str]],
             profiles: dict[str, dict[str, Value]], products: dict[str, str],
             out: _Batch, source: str, reject: Reject) -> str | None:
        strong: set[str] = set()
        weak: set[str] = set()
        kinds = self._rules.kinds_for(source)
        # Identifiers of kinds this source does not match on take no part at all; a
        # device serial or order id still tells which device or order the row is.
        idents = [i for i in rec.identifiers if i.kind in kinds]
        redirect = self._redirect
        for ident in idents:
            cids = out.owners.get(token[ident]) or owners.get(token[ident], [])
            (weak if ident.kind in self._rules.weak else strong).update(
                redirect.get(c, c) for c in cids)
        has_email = any(i.kind == "email" for i in idents)
        emails = {c: bool((out.profiles.get(c) or profiles.get(c) or {}).get("email"))
                  for c in weak}
        res = resolve(strong=strong, weak=weak, has_email=has_email, emails=emails)
        if res.conflict:
            named = [i for i in idents if i.kind not in self._rules.weak]
            out.deferred.append((rec, res.conflict, MergeEvidence(
                "exact", tuple(i.kind for i in named),
                tuple(token[i].hex()[:8] for i in named))))
            return None
        cid = res.customer
        # Matched through a merged part's identifiers alone: what the record brings is
        # the part's, tagged so that an unmerge sends it back (pacte.identity.merge).
        part: str | None = None
        if redirect and cid is not None and cid not in {c for i in idents for c in
                                           out.owners.get(token[i]) or owners.get(token[i], [])}:
            parts = {c for i in idents for c in out.owners.get(token[i])
                     or owners.get(token[i], []) if redirect.get(c) == cid}
            part = min(parts) if len(parts) == 1 else None
        created = False
        if cid is None:
            personal = [i for i in idents if i.kind in PERSONAL_KINDS]
            if not personal:
                what = "device" if rec.kind == "readings" else "customer"
                reject(rec.line, f"no known {what} matches its identifiers",
                       rec.row, rec.kind)
                return None
            cid = self._new_id(token[personal[0]])
            created = True
            out.profiles[cid] = {"created_at": _time_of(rec) or self.now_us}
            for ident in personal:
                if ident.kind in ("email", "phone"):
                    out.profiles[cid].setdefault(ident.kind, ident.value)
            out.dirty.add(cid)
        linked = False
        for ident in idents:
            t = token[ident]
            known = out.owners.get(t) or owners.get(t, [])
            if cid not in {redirect.get(c, c) for c in known}:
                out.owners[t] = [*known, part or cid]
                out.index.append(IndexEntry(identity_index(ident.kind), t, part or cid))
                linked = True
        kind = rec.kind
        v = rec.values
        if kind == "customers":
            profile = out.profiles.get(cid)
            if profile is None:
                profile = dict(profiles.get(cid, {}))
                out.profiles[cid] = profile
            changed = False
            for name in _PROFILE:
                value = v.get(name)
                if value is not None and profile.get(name) != value:
                    profile[name] = value
                    changed = True
            if v.get("created_at") is not None and created:
                profile["created_at"] = v["created_at"]
            if changed or created:
                out.dirty.add(cid)
            out.index.append(IndexEntry(ROW_INDEX, row_token, cid))
            return "created" if created else "updated" if changed or linked else "unchanged"
        if kind in ("interactions", "orders", "readings"):
            assert event_id is not None
            out.events.add(ev)
            self._event(rec, cid, event_id, ev, products, out, part)
            return "created"
        if kind == "consents":
            purpose = str(v["purpose"])
            props: dict[str, Value] = {
                "status": v["status"], "until": None, "source": v.get("source") or source,
                "policy_version": self._policy_version, "proof": None, **_tag(part)}
            out.edges.append(Edge("CONSENTED", "k_" + row_token.hex()[:16], cid, purpose,
                                  _int(v["at"]), props))
            out.index.append(IndexEntry(ROW_INDEX, row_token, cid))
            return "created"
        if kind == "devices":
            serial = next(i for i in rec.identifiers if i.kind == "device")
            did = "d_" + token[serial].hex()[:16]
            props = {"device_type": v.get("device_type"), "model": v.get("model"),
                     "location": v.get("location"), "telemetry": None}
            out.nodes.append(Node("Device", did, props, part or cid))
            out.edges.append(Edge("OWNS", "o_" + did[2:], cid, did,
                                  _time_of(rec) or self.now_us, _tag(part)))
            out.index.append(IndexEntry(ROW_INDEX, row_token, cid))
            return "updated" if owners.get(token[serial]) else "created"
        raise AssertionError(kind)

    def _event(self, rec: Record, cid: str, event_id: str, ev: bytes,
               products: dict[str, str], out: _Batch, part: str | None) -> None:
        v = rec.values
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


class _Batch:
    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.index: list[IndexEntry] = []
        self.products: dict[str, Node] = {}
        self.profiles: dict[str, dict[str, Value]] = {}
        self.dirty: set[str] = set()
        self.owners: dict[bytes, list[str]] = {}
        self.events: set[bytes] = set()
        # Records naming several customers, with them and the evidence: merged after
        # this batch is written (see `_Loader.merge`).
        self.deferred: list[tuple[Record, tuple[str, ...], MergeEvidence]] = []

    def write_batch(self) -> WriteBatch:
        customers = [Node("Customer", cid, {k: val for k, val in self.profiles[cid].items()
                                            if val is not None and k != "age_band"}, cid)
                     for cid in sorted(self.dirty)]
        return WriteBatch(nodes=[*customers, *self.products.values(), *self.nodes],
                          edges=self.edges, index=self.index)


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

