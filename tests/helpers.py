"""Test helpers: a settable clock and a small, hand-built world of customers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pacte.graph.principals import Principal
from pacte.runtime import Pacte

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock tests move by hand, so nothing sleeps."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


# Consent states each world customer is put in, for the purpose `marketing.email`
# unless named otherwise; the last four are sequences of choices on `marketing` and its
# children, made in this order within one microsecond (the later-recorded one wins).
STATES = ("none", "granted", "withdrawn", "expired", "parent", "other_child",
          "parent_then_child_withdrawn", "child_then_parent_withdrawn",
          "parent_withdrawn_then_child", "child_then_parent_expired")

# The oracle, written out by hand: the consent purposes under which each state is visible
# now (the latest explicit choice on the purpose or an ancestor decides).
VISIBLE_UNDER: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "granted": frozenset({"marketing.email"}),
    "withdrawn": frozenset(),
    "expired": frozenset(),
    "parent": frozenset({"marketing", "marketing.email", "marketing.sms"}),
    "other_child": frozenset({"marketing.sms"}),
    "parent_then_child_withdrawn": frozenset({"marketing", "marketing.sms"}),
    "child_then_parent_withdrawn": frozenset(),
    "parent_withdrawn_then_child": frozenset({"marketing.email"}),
    # The parent's grant expired after the child's grant: the expiry is the later choice.
    "child_then_parent_expired": frozenset(),
}


@dataclass
class World:
    rt: Pacte
    clock: FakeClock
    customers: dict[str, str]  # consent state -> customer id
    plaintext: dict[str, dict[str, str]]  # customer id -> personal values written
    principals: dict[str, Principal] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    product: str = ""


def build_world(tmp_path: Path, *, store_uri: str | None = None) -> World:
    clock = FakeClock()
    rt = Pacte.init(tmp_path / "data", now=clock, store_uri=store_uri)
    op = rt.operator_session("service")
    product = "p_lamp"
    from pacte.graph.store import Node, WriteBatch

    rt.operator_session("service").ingest(WriteBatch(nodes=[
        Node("Product", product, {"sku": "LMP-1", "name": "Lamp", "category": "home",
                                  "price": 19.5})]))
    customers: dict[str, str] = {}
    plaintext: dict[str, dict[str, str]] = {}
    for n, state in enumerate(STATES):
        values = {
            "name": f"Zelda Quorn{n}",
            "email": f"zelda.quorn{n}@example.com",
            "phone": f"+1555010{n:04}",
            "address": f"{n} Quorn Lane, Springfield",
            "birth_date": "1990-04-17",
        }
        view = op.upsert_customer(segment="gold", **values)
        customers[state] = view.id
        plaintext[view.id] = values
        op.record_interaction(customer_id=view.id, channel="chat", kind="purchase",
                              event_id=f"ev-{n}", summary=f"Quorn{n} bought a lamp in chat",
                              product_id=product, amount=19.5)
    ss = rt.operator_session("self_service")
    ss.grant_consent(customers["granted"], "marketing.email", source="web")
    ss.grant_consent(customers["withdrawn"], "marketing.email", source="web")
    ss.grant_consent(customers["expired"], "marketing.email", source="web",
                     until=clock.now + timedelta(days=1))
    ss.grant_consent(customers["parent"], "marketing", source="store")
    ss.grant_consent(customers["other_child"], "marketing.sms", source="app")
    ss.grant_consent(customers["parent_then_child_withdrawn"], "marketing", source="web")
    ss.withdraw_consent(customers["parent_then_child_withdrawn"], "marketing.email")
    ss.grant_consent(customers["child_then_parent_withdrawn"], "marketing.email", source="web")
    ss.withdraw_consent(customers["child_then_parent_withdrawn"], "marketing")
    ss.withdraw_consent(customers["parent_withdrawn_then_child"], "marketing")
    ss.grant_consent(customers["parent_withdrawn_then_child"], "marketing.email", source="web")
    ss.grant_consent(customers["child_then_parent_expired"], "marketing.email", source="web")
    ss.grant_consent(customers["child_then_parent_expired"], "marketing", source="web",
                     until=clock.now + timedelta(days=1))
    clock.advance(seconds=1)
    rt.operator_session("self_service").withdraw_consent(customers["withdrawn"],
                                                         "marketing.email")
    # A referral from a visible customer to every other, to test traversals.
    from pacte.clock import to_micros
    from pacte.graph.store import Edge

    rt.operator_session("service").ingest(WriteBatch(edges=[
        Edge("REFERRED", f"r{n}", customers["granted"], cid, to_micros(clock.now))
        for n, cid in enumerate(customers.values()) if cid != customers["granted"]]))
    clock.advance(days=2)  # past the expiry
    world = World(rt, clock, customers, plaintext, product=product)
    everything = tuple(rt._backend.policy.purposes)
    for role, purposes in (("app", tuple(p for p in everything if p != "analytics")),
                           ("auditor", ("legal",)), ("analyst", ("analytics",)),
                           ("admin", everything)):
        principal, key = rt.create_principal(name=f"{role}-1", role=role, purposes=purposes)
        world.principals[role] = principal
        world.keys[role] = key
        # The first use of a key in a day is noted in the store (not customer data, not
        # audited); noted now, so that tests counting store changes see only theirs.
        rt.authenticate(key)
    return world


def record_decrypts(world: World, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the fields decrypted from now on, in order (the list grows)."""
    opened: list[str] = []
    real = world.rt._backend.cipher.decrypt

    def spy(customer_id: str, node_id: str, field: str, blob: bytes) -> bytes:
        opened.append(field)
        return real(customer_id, node_id, field, blob)

    monkeypatch.setattr(world.rt._backend.cipher, "decrypt", spy)
    return opened
