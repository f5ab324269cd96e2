"""The customer's rights over their data: erasure (Art. 17, G8) and export (Art. 15, 20).

Both act for the customer, under a purpose the policy lets erase and export (in the
default policy `self_service`).
"""

from __future__ import annotations

from typing import Any

from pacte.clock import from_micros
from pacte.features.consents import consent_view
from pacte.features.door import Door
from pacte.features.interactions import interaction_views
from pacte.features.products import product_views
from pacte.graph.consent import consent_states
from pacte.graph.model import NODE_KINDS
from pacte.graph.operations import Action

__all__ = ["erase", "export"]

_CUSTOMER = NODE_KINDS["Customer"]
_DEVICE = NODE_KINDS["Device"]


def erase(door: Door, customer_id: str) -> dict[str, Any]:
    """Crypto-shred and delete a customer; returns a signed receipt without personal data."""
    door._gate(Action.CUSTOMER_ERASE)
    door._require_visible(Action.CUSTOMER_ERASE, customer_id)
    owned = door._owned_by(customer_id)
    kinds: dict[str, int] = {}
    for node in door._read_nodes(owned).values():
        kinds[node.kind] = kinds.get(node.kind, 0) + 1
    subject = door._ref(customer_id)
    step = door._record(Action.CUSTOMER_ERASE, subjects=[customer_id], extra={"destroyed": kinds})
    seq = door._shred(customer_id, owned, step)
    door._forget(customer_id)
    return door._sign_receipt(subject_ref=subject, destroyed=kinds,
                              requested_by=door.principal.name, audit_seq=seq)


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
    held = {
        "customer": {"id": customer_id, **profile},
        "consents": _consents(door, customer_id),
        "interactions": _interactions(door, customer_id),
        "devices": _devices(door, customer_id),
        "products": [p.id for p in product_views(door, list(dict.fromkeys(bought)))],
        "reviews": reviews,
    }
    door._audit(door._record(Action.CUSTOMER_EXPORT, subjects=[customer_id],
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
