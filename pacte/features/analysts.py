"""What analysts receive: consented projections (G9), and the record of each release
they draw from one, with its differential-privacy budget."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pacte.clock import from_micros
from pacte.errors import InputError, PrivacyBudgetSpent, PurposeNotGranted
from pacte.features.door import Door
from pacte.features.interactions import BEHAVIOUR
from pacte.features.products import DEVICES, PURCHASES
from pacte.graph.checks import MAX_PAGE
from pacte.graph.model import NODE_KINDS
from pacte.graph.operations import Action, Role
from pacte.graph.store import Edge, Node, Value
from pacte.graph.views import ProjectedCustomer

__all__ = ["privacy_spent", "project", "record_release"]

_CUSTOMER = NODE_KINDS["Customer"]
_CONTENT = "user.content"


def project(door: Door, *, batch: int = 1000) -> Iterator[list[ProjectedCustomer]]:
    """Every consented customer's allowed data, in batches, for analysts (G9).

    Only for analysts and admins under an analysts-only purpose; each batch is
    audited with the customers it included.
    """
    _require_analysts(door, Action.ANALYTICS_PROJECT, "projections are built")
    ids = door._visible_all()
    visible = set(ids)
    # Analysts get categorised fields only: structural ones such as created_at are
    # near-unique per person and would single them out (G9).
    allowed = [f.name for f in _CUSTOMER.fields
               if f.category is not None and door._reason(f) is None]
    horizon = door._horizon()
    for start in range(0, len(ids), batch):
        chunk = _Chunk.read(door, ids[start:start + batch], horizon=horizon)
        out = [_projected(door, chunk, node, allowed, visible)
               for cid in chunk.ids if (node := chunk.nodes.get(cid)) is not None]
        door._audit(door._record(Action.ANALYTICS_PROJECT, subjects=[p.id for p in out],
                                 fields=allowed))
        yield out


@dataclass(frozen=True, slots=True)
class _Chunk:
    """A batch of customers and their relations the purpose may use, within retention."""

    ids: Sequence[str]
    horizon: int
    nodes: dict[str, Node]
    bought: dict[str, list[Edge]]
    reviewed: dict[str, list[Edge]]
    referred: dict[str, list[Edge]]
    owns: dict[str, list[Edge]]
    had: dict[str, list[Edge]]
    interactions: dict[str, Node]
    about: dict[str, list[Edge]]
    devices: dict[str, Node]

    @classmethod
    def read(cls, door: Door, ids: Sequence[str], *, horizon: int) -> _Chunk:
        def edges(type: str, category: str | None) -> dict[str, list[Edge]]:
            # What the purpose may not use is not read at all.
            if category is not None and not door._category_ok(category):
                return {}
            return {c: [e for e in found if e.at >= horizon]
                    for c, found in door._edges_many(ids, type).items()}

        had, owns = edges("HAD", BEHAVIOUR), edges("OWNS", DEVICES)
        inter_ids = [e.dst for c in ids for e in had.get(c, [])]
        return cls(
            ids=ids, horizon=horizon,
            nodes=door._customer_nodes(ids, memo=False),
            bought=edges("BOUGHT", PURCHASES), reviewed=edges("REVIEWED", _CONTENT),
            referred=edges("REFERRED", None), owns=owns, had=had,
            interactions=door._read_nodes(inter_ids),
            about=door._edges_many(inter_ids, "ABOUT"),
            devices=door._read_nodes([e.dst for c in ids for e in owns.get(c, [])]),
        )

    def interactions_of(self, cid: str) -> list[tuple[datetime, str, str, str | None]]:
        out = []
        for e in self.had.get(cid, []):
            node = self.interactions.get(e.dst)
            if node is None:
                continue
            prods = self.about.get(e.dst) or []
            out.append((from_micros(e.at), str(node.props.get("channel")),
                        str(node.props.get("kind")), prods[0].dst if prods else None))
        return out


def _projected(door: Door, chunk: _Chunk, node: Node, allowed: list[str],
               visible: set[str]) -> ProjectedCustomer:
    cid = node.id
    return ProjectedCustomer(
        id=cid,
        fields=door._open(node, allowed),
        purchases=[(e.dst, from_micros(e.at), _float(e.props.get("amount")))
                   for e in chunk.bought.get(cid, [])],
        reviews=[(e.dst, from_micros(e.at), _int(e.props.get("rating")))
                 for e in chunk.reviewed.get(cid, [])],
        interactions=chunk.interactions_of(cid),
        devices=[str(chunk.devices[e.dst].props.get("device_type"))
                 for e in chunk.owns.get(cid, []) if e.dst in chunk.devices],
        referred=[e.dst for e in chunk.referred.get(cid, []) if e.dst in visible],
    )


def record_release(door: Door, action: str, *, details: Mapping[str, object],
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
    _require_analysts(door, action, "releases are made")
    principal = door.principal
    budget = door._policy.privacy_budget(principal.id)
    if not epsilon:
        door._audit(door._record(action, extra=details))
        return budget - privacy_spent(door)
    if not 0 < epsilon <= budget:
        door._deny(action, InputError(
            f"epsilon must be > 0 and at most the budget {budget:g} (got {epsilon:g})"))
    account = [_budget_account(principal.id)]
    ref = door._ref(account[0])  # outside the trail's lock: it may consult the vault
    # Read and append under the trail's write lock, or two releases read the same
    # spent amount and both pass. The entry is appended at once, even when the
    # request defers its audit: the next release must see this one spent.
    with door._trail_exclusive():
        spent = _spent(door, ref)
        extra = {**details, "epsilon": epsilon, "epsilon_budget": budget,
                 "epsilon_spent_before": round(spent, 9)}
        refused = spent + epsilon > budget + 1e-9
        outcome, reason = ("denied", PrivacyBudgetSpent.code) if refused else ("ok", None)
        door._audit_now(door._record(action, outcome=outcome, subjects=account,
                                     reason=reason, extra=extra))
    if refused:
        raise PrivacyBudgetSpent(
            f"privacy budget spent: {spent:g} of {budget:g} used, this release needs "
            f"{epsilon:g}")
    return budget - spent - epsilon


def privacy_spent(door: Door) -> float:
    """The epsilon this principal's differentially private releases have spent."""
    return _spent(door, door._ref(_budget_account(door.principal.id)))


def _require_analysts(door: Door, action: str, what: str) -> None:
    door._require_role(action, Role.ANALYST, Role.ADMIN)
    if not door.purpose.analysts_only:
        door._deny(action, PurposeNotGranted(
            f"{what} under an analysts-only purpose, not {door.purpose.id}"))


def _spent(door: Door, ref: str) -> float:
    spent, after = 0.0, None
    while True:
        page = door._trail_entries(subject=ref, after_seq=after, limit=MAX_PAGE)
        for entry in page:
            rec = entry.record
            if rec.get("principal") != door.principal.id:
                continue
            if rec.get("outcome") == "ok":
                spent += float(rec.get("epsilon") or 0.0)
            for op in rec.get("operations", ()):  # a deferred request's merged steps
                if op.get("outcome", "ok") == "ok":
                    spent += float(op.get("epsilon") or 0.0)
        if len(page) < MAX_PAGE:
            return spent
        after = page[-1].seq


def _budget_account(principal_id: str) -> str:
    """The audit subject naming a principal's privacy budget (never a customer id)."""
    return f"privacy-budget:{principal_id}"


def _float(value: Value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _int(value: Value) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
