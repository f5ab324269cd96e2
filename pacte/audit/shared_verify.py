"""Verification of the shared audit trail (pacte.audit.shared_trail): every chain's
links, places, subject index rows and checkpoints (signed under the pinned key), each
chain's signed opening, the ordinals from 0 to the counter, and that no chain another
one named at its opening is gone or shorter."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from pacte.audit.canonical import canonical_bytes
from pacte.audit.checkpoint import Checkpoint
from pacte.audit.merkle import CompactRange, chained_leaf_hash
from pacte.audit.shared_trail import (
    _CHAINS,
    _CHECKPOINTS,
    _PAGE,
    CHAIN_OPEN,
    _checkpoint_row,
    _one,
    genesis,
)
from pacte.errors import IntegrityError
from pacte.graph.neo4j_store import Neo4jStore

__all__ = ["SharedVerification", "chains_of", "verify_shared"]

_COUNTER = "MATCH (m:PacteMeta {key: 'audit.chains'}) RETURN toInteger(m.value)"
_ORPHANS = (
    "MATCH (e:PacteAuditEntry) WHERE NOT EXISTS { MATCH (c:PacteAuditChain {chain: e.chain}) } "
    "RETURN collect(DISTINCT e.chain)"
)
# Each entry with its subject index rows (index on (chain, n)).
_CHAIN_PAGE = (
    "MATCH (e:PacteAuditEntry) WHERE e.chain = $chain AND e.n >= $start "
    "WITH e ORDER BY e.n LIMIT $limit "
    "CALL (e) { MATCH (s:PacteAuditSubject {chain: e.chain, n: e.n}) "
    "RETURN collect([s.subject, s.time]) AS subjects } "
    "RETURN collect([e.n, e.time, e.body, e.hash, subjects])"
)


@dataclass
class SharedVerification:
    """The result of verifying every chain; `first_bad` names `chain/n` (`#ord/0` for a
    chain that is gone, by its ordinal)."""

    ok: bool
    chains: int = 0
    entries: int = 0
    checkpoints: int = 0
    unsigned: int = 0  # entries after their chain's last checkpoint (chained, not signed)
    first_bad: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [f"Validating the shared audit trail: {self.chains} chains, {self.entries} "
               f"entries, {self.checkpoints} signed checkpoints, {self.unsigned} entries "
               "not yet covered by a checkpoint"]
        if self.ok:
            out.append("Audit trail is VALID")
        else:
            out.append(f"Audit trail is INVALID: {self.reason} (first bad entry "
                       f"{self.first_bad})")
        return out


class _Bad(Exception):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(reason)
        self.where, self.reason = where, reason


def verify_shared(store: Neo4jStore, *, public_key: bytes | None = None
                  ) -> SharedVerification:
    """Verify every chain: links, places, subject index rows, checkpoints (signed under
    `public_key` if given), each chain's signed opening (its ordinal and key), that the
    ordinals run from 0 to the counter, and that no chain another one named at its
    opening is gone or shorter."""
    report = SharedVerification(ok=True)
    chains = [(str(c), str(k), o) for c, k, o in _one(store, _CHAINS) or []]
    report.chains = len(chains)
    sizes: dict[str, int] = {}
    named: list[tuple[str, str, int]] = []  # (naming chain, named chain, size named)
    try:
        orphans = _one(store, _ORPHANS) or []
        if orphans:
            raise _Bad(f"{orphans[0]}/0", "entries of a chain that was never opened")
        for chain, key_id, ord_ in chains:
            size, opened = _verify_chain(store, chain, public_key, report,
                                         ord_=ord_, key_id=key_id)
            sizes[chain] = size
            named += [(chain, other, n) for other, n in opened.items()]
        for chain, other, n in named:
            if sizes.get(other, 0) < n:
                raise _Bad(f"{chain}/0", f"chain {other} holds fewer than the {n} entries "
                                         "it held when this chain opened")
        _check_ords(store, chains)
    except _Bad as bad:
        report.ok, report.first_bad, report.reason = False, bad.where, bad.reason
    return report


def _check_ords(store: Neo4jStore, chains: Sequence[tuple[str, str, Any]]) -> None:
    """Ordinals 0, 1, ... up to the counter, each once: a chain removed whole (but the
    newest, with the counter put back: only an exported checkpoint shows that) or a
    chain given another's ordinal is caught."""
    counter = int(_one(store, _COUNTER) or 0)
    for chain, _, ord_ in chains:
        if type(ord_) is not int:
            raise _Bad(f"{chain}/0", "a chain has no ordinal")
    by_ord = sorted((o, c) for c, _, o in chains)
    for want, (ord_, chain) in enumerate(by_ord):
        if ord_ != want:
            raise _Bad(f"{chain}/0", f"chain ordinal {want} is missing or taken twice")
    if len(by_ord) != counter:
        # Named by its ordinal: the chain is gone, and its id with it.
        raise _Bad(f"#{len(by_ord)}/0", f"{counter} chains were opened and "
                                         f"{len(by_ord)} are there")


def _verify_chain(store: Neo4jStore, chain: str, public_key: bytes | None,
                  report: SharedVerification, *, ord_: Any, key_id: str
                  ) -> tuple[int, dict[str, int]]:
    checkpoints = _signed_checkpoints(store, chain, public_key)
    walk = _ChainWalk(chain, checkpoints)
    while True:
        page = _one(store, _CHAIN_PAGE, chain=chain, start=walk.n, limit=_PAGE) or []
        for at, time, body, stored, subjects in page:
            walk.step(int(at), str(time), str(body).encode("utf-8"), bytes(stored), subjects)
        if len(page) < _PAGE:
            break
    n = walk.n
    beyond = [s for s in checkpoints if s > n]
    if beyond:
        raise _Bad(f"{chain}/{n}", f"entries up to {max(beyond) - 1} were signed and are gone")
    # The opening is signed in the transaction that opens the chain: a chain without it
    # was written past the trail (by someone without the signing key).
    opening = checkpoints.get(1)
    if n == 0 or opening is None:
        raise _Bad(f"{chain}/0", "a chain's opening entry is not signed")
    if walk.opening.get("ord") != ord_ or walk.opening.get("key_id") != key_id \
            or opening.key_id != key_id:
        raise _Bad(f"{chain}/0", "a chain's ordinal or key differs from its signed opening")
    report.entries += n
    report.checkpoints += walk.signed
    report.unsigned += n - max(checkpoints, default=0)
    return n, walk.opened


def _signed_checkpoints(store: Neo4jStore, chain: str, public_key: bytes | None
                        ) -> dict[int, Checkpoint]:
    """A chain's checkpoints by size, each signature checked (under `public_key`)."""
    checkpoints = {}
    for row in _one(store, _CHECKPOINTS, chain=chain) or []:
        cp = _checkpoint_row(row)
        if not cp.verify(public_key):
            raise _Bad(f"{chain}/{max(cp.size - 1, 0)}",
                       "a checkpoint's signature does not verify"
                       + (" under the pinned key" if public_key is not None else ""))
        checkpoints[cp.size] = cp
    return checkpoints


class _ChainWalk:
    """One chain read in order: each entry's place, body, link and the checkpoints."""

    def __init__(self, chain: str, checkpoints: Mapping[int, Checkpoint]) -> None:
        self.chain = chain
        self.checkpoints = checkpoints
        self.tree = CompactRange()
        self.head = genesis(chain)
        self.opened: dict[str, int] = {}
        self.opening: dict[str, Any] = {}
        self.n = 0
        self.signed = 0
        self.proven = 0  # entries the last matching checkpoint vouches for

    def step(self, at: int, time: str, raw: bytes, stored: bytes,
             rows: Sequence[Sequence[Any]]) -> None:
        where = f"{self.chain}/{self.n}"
        if at != self.n:
            raise _Bad(where, "an entry is missing")
        doc = _checked_body(where, raw, chain=self.chain, n=self.n, time=time)
        self.head = chained_leaf_hash(self.head, raw)
        if self.head != stored:
            raise _Bad(where, "an entry's hash does not match its content and chain")
        if self.n == 0:
            if doc.get("action") != CHAIN_OPEN or not isinstance(doc.get("chains"), dict):
                raise _Bad(where, "a chain does not start with its opening entry")
            self.opened = {str(k): int(v) for k, v in doc["chains"].items()}
            self.opening = doc
        # The subject index holds exactly the entry's subjects, at its time: a row
        # removed would hide the entry from its subject's reports.
        named = doc.get("subjects")
        subjects = sorted(dict.fromkeys(named)) if isinstance(named, list) else []
        if sorted(str(s) for s, _ in rows) != subjects or any(t != time for _, t in rows):
            raise _Bad(where, "an entry's subject index rows differ from its subjects")
        self.tree.append(self.head)
        self.n += 1
        signed = self.checkpoints.get(self.n)
        if signed is not None:
            if signed.root != self.tree.root() or signed.head != self.head:
                # Entries rewritten with their links recomputed: the change is somewhere
                # after the last checkpoint that matched, so that is the entry named
                # (as verify names it on audit.db), not the one the checkpoint ends at.
                raise _Bad(f"{self.chain}/{self.proven}",
                           "a signed checkpoint does not match the entries")
            self.signed += 1
            self.proven = self.n


def _checked_body(where: str, raw: bytes, *, chain: str, n: int, time: str
                  ) -> dict[str, Any]:
    """An entry's body: readable, canonical, naming its own chain, place and time."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _Bad(where, "an entry is unreadable") from None
    if not isinstance(doc, dict) or doc.get("chain") != chain or doc.get("n") != n \
            or doc.get("time") != time:
        raise _Bad(where, "an entry's place or time differs from its body")
    try:
        canonical = canonical_bytes(doc)
    except IntegrityError:
        raise _Bad(where, "an entry is not canonical JSON") from None
    if canonical != raw:
        raise _Bad(where, "an entry is not canonical JSON")
    return doc


def chains_of(store: Neo4jStore) -> Iterator[str]:
    """Every chain's id, in order."""
    for chain, _, _ in _one(store, _CHAINS) or []:
        yield str(chain)
