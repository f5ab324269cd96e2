"""Moving a data directory's audit trail (`audit.db`) into the shared trail in Neo4j
(`pacte migrate`; the shared trail is pacte.audit.shared_trail).

The source is verified first (a tampered trail is not laundered into a fresh chain).
Each entry is appended, in order, as a record of a new chain signed with the same
signing key: its record as it was, plus `migrated: {seq, time}` (its place and time in
`audit.db`); each of the chain's entries carries its source entry's time, so the
merged order of the shared trail puts them where they happened.

Resumable: after each batch the store's meta `migrate.trail` notes the chain, how
many source entries are in, and the cursor of the last one. A run killed between a
batch's commit and that note leaves at most one batch more than noted; the next run
reads the previous chain in its own order (n) after the noted entry for the last
`migrated.seq`, and goes on from there in a chain of its own. No entry is copied twice.

Verified at the end: every chain verifies under the signing key, and the migrated
entries are exactly the source's (each place once, the same records: an
order-independent checksum).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pacte.audit import AuditTrail, verify
from pacte.audit.canonical import canonical_bytes
from pacte.audit.shared_trail import SharedTrail
from pacte.audit.shared_verify import verify_shared
from pacte.audit.trail import format_time
from pacte.clock import utcnow
from pacte.crypto.signing import SigningKey
from pacte.errors import IntegrityError
from pacte.graph.neo4j_store import Neo4jStore

__all__ = ["TrailCopy", "copy_trail"]

MARK = "migrate.trail"
_MOD = 2**256


@dataclass
class TrailCopy:
    entries: int  # in the source, all now in the shared trail
    copied: int  # by this run
    checksum: str


def _parse(time: str) -> datetime:
    return datetime.fromisoformat(time.replace("Z", "+00:00"))


def _digest(seq: int, record: Mapping[str, Any]) -> int:
    data = str(seq).encode() + b"\x00" + canonical_bytes(dict(record))
    return int.from_bytes(hashlib.sha256(data).digest(), "big")


def copy_trail(source: AuditTrail, store: Neo4jStore, *, signer: SigningKey,
               batch: int = 1000, progress: Callable[[str, int], object] | None = None
               ) -> TrailCopy:
    """Copy `source` into the shared trail of `store`; IntegrityError if either side
    does not verify, or the copy differs."""
    report = verify(source, public_key=signer.public_key)
    if not report.ok:
        raise IntegrityError("the audit trail does not verify; it is not migrated "
                             "(run `pacte audit verify`)")
    size = source.size()
    state = json.loads(store.get_meta(MARK) or "{}")
    done, copied = int(state.get("done", 0)), 0
    if done >= size and not state.get("chain"):
        return TrailCopy(entries=size, copied=0, checksum=_source_sum(source, batch))
    first = source.entries(after_seq=done - 1, limit=1)
    clock = [_parse(first[0].time) if first else utcnow()]
    with SharedTrail.open(store, signer=signer, now=lambda: clock[0]) as trail:
        if state.get("chain"):
            done = _resume(trail, state, batch=batch)
        # Noted before the first batch: a kill after it commits must find this chain.
        _note(store, chain=trail.chain, done=done, cursor=[format_time(clock[0]), "", -1])
        while done < size:
            entries = source.entries(after_seq=done - 1, limit=batch)
            times = [_parse(e.time) for e in entries]
            clock[0] = times[-1]  # checkpoints are due by the source's time too
            out = trail.append_many([{**e.record, "migrated": {"seq": e.seq, "time": e.time}}
                                     for e in entries], times=times)
            done += len(entries)
            copied += len(entries)
            _note(store, chain=trail.chain, done=done, cursor=list(out[-1].cursor))
            if progress is not None:
                progress("trail", done)
        _check(source, trail, store, signer=signer, size=size)
    _note(store, chain=None, done=done, cursor=None)
    return TrailCopy(entries=size, copied=copied, checksum=_source_sum(source, batch))


def _note(store: Neo4jStore, *, chain: str | None, done: int, cursor: list[Any] | None
          ) -> None:
    store.set_meta(MARK, json.dumps({"chain": chain, "done": done, "cursor": cursor}))


def _resume(trail: SharedTrail, state: Mapping[str, Any], *, batch: int) -> int:
    """How many source entries the previous run really put in (noted, or one batch
    more): its chain read on in the chain's own order from the noted entry (in time
    order a batch whose source times go back would be missed, and copied again)."""
    done = int(state["done"])
    chain = str(state["chain"])
    cursor = state.get("cursor")
    start = int(cursor[2]) + 1 if cursor and cursor[1] == chain else 0
    while page := trail.chain_entries(chain, start=start, limit=batch):
        for entry in page:
            migrated = entry.record.get("migrated")
            if isinstance(migrated, Mapping):
                done = max(done, int(migrated["seq"]) + 1)
        start = page[-1].n + 1
    return done


def _source_sum(source: AuditTrail, batch: int) -> str:
    total, after = 0, -1
    while entries := source.entries(after_seq=after, limit=batch):
        for e in entries:
            total = (total + _digest(e.seq, e.record)) % _MOD
        after = entries[-1].seq
    return f"{total:064x}"


def _check(source: AuditTrail, trail: SharedTrail, store: Neo4jStore, *,
           signer: SigningKey, size: int) -> None:
    shared = verify_shared(store, public_key=signer.public_key)
    if not shared.ok:
        raise IntegrityError(f"the shared audit trail does not verify: {shared.reason} "
                             f"(first bad entry {shared.first_bad})")
    places: set[int] = set()
    total = 0
    after: tuple[str, str, int] | None = None
    while page := trail.entries(after=after, limit=5000):
        for entry in page:
            migrated = entry.record.get("migrated")
            if not isinstance(migrated, Mapping):
                continue
            seq = int(migrated["seq"])
            if seq in places:
                raise IntegrityError(f"audit entry {seq} was migrated twice")
            places.add(seq)
            record = {k: v for k, v in entry.record.items() if k != "migrated"}
            total = (total + _digest(seq, record)) % _MOD
        after = page[-1].cursor
    if len(places) != size or f"{total:064x}" != _source_sum(source, 5000):
        raise IntegrityError(f"the migrated audit trail differs from audit.db "
                             f"({len(places)} of {size} entries)")
