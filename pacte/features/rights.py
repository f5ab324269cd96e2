"""The customer's rights over their data: erasure (Art. 17, G8) and export (Art. 15, 20).

Both act for the customer, under a purpose the policy lets erase and export (in the
default policy `self_service`).
"""

from __future__ import annotations

from typing import Any

from pacte.clock import from_micros
from pacte.features.consents import consent_view
from pacte.features.customers import as_customer
from pacte.features.door import Door
from pacte.features.interactions import interaction_views
from pacte.features.products import product_views
from pacte.graph.checks import check_id
from pacte.graph.consent import consent_states
from pacte.graph.model import NODE_KINDS
from pacte.graph.operations import Action

__all__ = ["erase", "export", "transparency_link"]

_CUSTOMER = NODE_KINDS["Customer"]
_DEVICE = NODE_KINDS["Device"]


def erase(door: Door, customer_id: str) -> dict[str, Any]:
    """Crypto-shred and delete a customer; returns a signed receipt without personal data."""
    door._gate(Action.CUSTOMER_ERASE)
    door._require_visible(Action.CUSTOMER_ERASE, customer_id)
    # A merged customer is erased with every part merged into it (issue #17).
    parts = door._merged_parts(customer_id)
    owned = [n for cid in (customer_id, *parts) for n in door._owned_by(cid)]
    kinds: dict[str, int] = {}
    for node in door._read_nodes(owned).values():
        kinds[node.kind] = kinds.get(node.kind, 0) + 1
    subject = door._ref(customer_id)
    step = door._record(Action.CUSTOMER_ERASE, subjects=[customer_id, *parts],
                        extra={"destroyed": kinds})
    seq = door._shred(customer_id, owned, step, parts=parts)
    for cid in (customer_id, *parts):
        door._forget(cid)
    return door._sign_receipt(subject_ref=subject, destroyed=kinds,
                              requested_by=door.principal.name, audit_seq=seq)


def transparency_link(door: Door, customer_id: str) -> None:
    """Allow a link to one customer's transparency page (pacte.console.links): for an
    app (or admin) acting on the customer's request, under `self_service`, for a
    customer it can see. On record; the link itself is sealed by the console."""
    door._gate(Action.CUSTOMER_LINK)
    check_id(customer_id)
    door._require_visible(Action.CUSTOMER_LINK, customer_id)
    door._audit(door._record(Action.CUSTOMER_LINK, subjects=[customer_id]))


def export(door: Door, customer_id: str) -> dict[str, Any]:
    """Everything held about one customer, decrypted, for the customer (Art. 15, 20).

    Not cut by retention: the right of access covers everything held, whatever its
    age (and `self_service` sets no retention anyway).
    """
    door._gate(Action.CUSTOMER_EXPORT)
    node = door._require_visible(Action.CUSTOMER_EXPORT, customer_id)
    profile = door._open(node, [f.name for f in _CUSTOMER.fields])
    bought = [e.dst for e in door._edges(customer_id, "BOUGHT")]
    reviews = [{"product": e.dst, "rating": e.props.get("rating"),
                "at": from_micros(e.at).isoformat()}
               for e in door._edges(customer_id, "REVIEWED")]
    # Customers merged into this one keep their own profile: held, so exported.
    parts = door._merged_parts(customer_id)
    merged: list[dict[str, Any]] = [
        {"id": n.id, **door._open(as_customer(n), [f.name for f in _CUSTOMER.fields])}
        for n in door._read_nodes(parts).values()] if parts else []
    held: dict[str, Any] = {
        "customer": {"id": customer_id, **profile},
        **({"merged_parts": sorted(merged, key=lambda p: str(p["id"]))} if merged else {}),
        "consents": _consents(door, customer_id),
        "interactions": _interactions(door, customer_id),
        "devices": _devices(door, customer_id),
        "products": [p.id for p in product_views(door, list(dict.fromkeys(bought)))],
        "reviews": reviews,
    }
    door._audit(door._record(Action.CUSTOMER_EXPORT, subjects=[customer_id, *parts],
                             fields=[f.name for f in _CUSTOMER.fields]))
    return held


def _interactions(door: Door, customer_id: str) -> list[dict[str, Any]]:
    return [
        {"id": v.id, "occurred_at": v.occurred_at.isoformat(), "product": v.product_id,
         **{k: val for k, val in v.fields.items() if k != "occurred_at"}}
        for v in interaction_views(door, door._edges(customer_id, "HAD"), customer_id)
    ]


def _devices(door: Door, customer_id: str) -> list[dict[str, Any]]:
    ids = [e.dst for e in door._edges(customer_id, "OWNS")]
    nodes = door._read_nodes(ids)
    return [{"id": i, **door._open(nodes[i], [f.name for f in _DEVICE.fields])}
            for i in ids if i in nodes]


def _consents(door: Door, customer_id: str) -> list[dict[str, Any]]:
    states = consent_states(door._edges(customer_id, "CONSENTED"), at=door._now_us)
    views = sorted((consent_view(s) for s in states.values()), key=lambda c: c.purpose)
    return [{"purpose": c.purpose, "status": c.status, "at": c.at.isoformat(),
             "until": c.until.isoformat() if c.until else None, "source": c.source}
            for c in views]
