"""`Session.recommendations`: co-purchase over consenting customers only (G3, G5).

A small hand-built shop for the exact answers, the seeded directory for the claim
that a withdrawal removes a customer's purchases from everyone's recommendations.
A product is recommended only when at least five consenting co-buyers back it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from pacte.errors import Forbidden, NotFound
from pacte.graph.principals import Principal
from pacte.graph.store import Node, WriteBatch
from pacte.runtime import Pacte
from tests.helpers import FakeClock

PRODUCTS = ("p_a", "p_b", "p_c", "p_d", "p_e", "p_x", "p_old")


@dataclass
class Shop:
    rt: Pacte
    clock: FakeClock
    app: Principal
    ids: dict[str, str] = field(default_factory=dict)
    events: int = 0

    def customer(self, name: str, bought: tuple[str, ...], consents: tuple[str, ...] = (),
                 *, days_ago: float = 1) -> str:
        op = self.rt.operator_session("service")
        cid = op.upsert_customer(name=f"Shopper {name}", email=f"{name}@example.com").id
        for p in bought:
            self.events += 1
            op.record_interaction(customer_id=cid, channel="web", kind="purchase",
                                  event_id=f"ev-{self.events}", product_id=p, amount=5.0,
                                  occurred_at=self.clock.now - timedelta(days=days_ago))
        for purpose in consents:
            self.rt.operator_session("self_service").grant_consent(cid, purpose, source="test")
        self.ids[name] = cid
        return cid

    def recommend(self, name: str, *, purpose: str = "personalization") -> list[str]:
        session = self.rt.session(self.app, purpose)
        return [p.id for p in session.recommendations(self.ids[name], first=10)]


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    clock = FakeClock()
    rt = Pacte.init(tmp_path / "shop", now=clock)
    rt.operator_session("service").ingest(WriteBatch(nodes=[
        Node("Product", p, {"sku": p.upper(), "name": p, "category": "home", "price": 5.0})
        for p in PRODUCTS]))
    app, _ = rt.create_principal(name="shop", role="app",
                                 purposes=["service", "personalization", "marketing"])
    s = Shop(rt, clock, app)
    s.customer("target", ("p_a",), ("personalization",))
    for n in range(6):  # p_b: six consenting co-buyers
        s.customer(f"fan{n}", ("p_a", "p_b"), ("personalization",))
    for n in range(5):  # p_c: exactly five, the least a recommendation may rest on
        s.customer(f"quinn{n}" if n else "quinn", ("p_a", "p_c"), ("personalization",))
    for n in range(4):  # p_d: four, one short...
        s.customer(f"dee{n}", ("p_a", "p_d"), ("personalization",))
    s.customer("never", ("p_a", "p_d"))  # ...and these two do not count:
    s.customer("other", ("p_a", "p_d"), ("marketing",))  # consent to something else
    for n in range(4):  # p_e: four, and a fifth who withdrew
        s.customer(f"eve{n}", ("p_a", "p_e"), ("personalization",))
    s.customer("gone", ("p_a", "p_e"), ("personalization",))
    s.customer("solo", ("p_a", "p_x"), ("personalization",))  # p_x: one co-buyer
    clock.advance(seconds=1)
    rt.operator_session("self_service").withdraw_consent(s.ids["gone"], "personalization")
    clock.advance(seconds=1)
    yield s
    rt.close()


def test_ranked_by_consenting_co_buyers(shop: Shop) -> None:
    # b: six co-buyers, c: five; d and e stay under five without the non-consenting,
    # the other-consenting and the withdrawn customer; x rests on one person.
    assert shop.recommend("target") == ["p_b", "p_c"]


def test_a_withdrawal_holds_from_the_next_request(shop: Shop) -> None:
    shop.rt.operator_session("self_service").withdraw_consent(shop.ids["quinn"],
                                                              "personalization")
    assert shop.recommend("target") == ["p_b"]
    with pytest.raises(NotFound):
        shop.recommend("quinn")


def test_a_grant_brings_purchases_in(shop: Shop) -> None:
    shop.rt.operator_session("self_service").grant_consent(shop.ids["never"],
                                                           "personalization", source="test")
    assert shop.recommend("target") == ["p_b", "p_c", "p_d"]  # d reaches five


def test_a_customer_without_consent_gets_the_same_answer_as_no_customer(shop: Shop) -> None:
    session = shop.rt.session(shop.app, "personalization")
    errors = []
    for cid in (shop.ids["never"], shop.ids["gone"], "c_000000000000"):
        with pytest.raises(NotFound) as caught:
            session.recommendations(cid)
        errors.append(str(caught.value).replace(repr(cid), "ID"))
    assert len(set(errors)) == 1


def test_none_under_a_purpose_without_consent(shop: Shop) -> None:
    assert shop.recommend("target", purpose="service") == []


def test_analysts_get_none(shop: Shop) -> None:
    ana, _ = shop.rt.create_principal(name="ana", role="analyst", purposes=["analytics"])
    shop.rt.operator_session("self_service").grant_consent(shop.ids["target"], "analytics",
                                                           source="test")
    with pytest.raises(Forbidden):
        shop.rt.session(ana, "analytics").recommendations(shop.ids["target"])


def test_after_a_withdrawal_recommendations_are_as_if_the_purchases_were_gone(
        shop: Shop) -> None:
    """Withdrawing W's consent gives everyone what erasing W would give."""
    w = shop.ids["quinn"]
    others = [cid for name, cid in shop.ids.items()
              if cid != w and name not in ("never", "other", "gone")]

    def everyone() -> dict[str, list[str]]:
        session = shop.rt.session(shop.app, "personalization")
        return {c: [p.id for p in session.recommendations(c, first=100)] for c in others}

    before = everyone()
    shop.rt.operator_session("self_service").withdraw_consent(w, "personalization")
    withdrawn = everyone()
    shop.rt.operator_session("self_service").erase(w)
    erased = everyone()
    assert withdrawn == erased
    assert withdrawn != before, "W's purchases should have mattered to someone"


# -- found in review, and fixed ----------------------------------------------------------


def test_a_recommendation_rests_on_at_least_five_co_buyers(shop: Shop) -> None:
    assert "p_x" not in shop.recommend("target")  # p_x would reveal what solo bought
    assert "p_d" not in shop.recommend("target")  # four is one short


def test_purchases_past_retention_are_not_used(shop: Shop) -> None:
    for n in range(5):
        shop.customer(f"old{n}", ("p_a", "p_old"), ("personalization",), days_ago=400)
    assert "p_old" not in shop.recommend("target")


def test_co_buyers_whose_purchases_were_used_see_it_in_their_trail(shop: Shop) -> None:
    assert shop.recommend("target") == ["p_b", "p_c"]
    quinn = shop.rt._backend.subject_ref(shop.ids["quinn"])
    uses = shop.rt._backend.audit_entries(subject=quinn, after_seq=None, limit=100)
    assert any(e.record.get("action") == "recommendations" for e in uses)


def test_the_target_sees_the_recommendation_in_their_trail(shop: Shop) -> None:
    shop.recommend("target")
    target = shop.rt._backend.subject_ref(shop.ids["target"])
    uses = shop.rt._backend.audit_entries(subject=target, after_seq=None, limit=100)
    assert any(e.record.get("action") == "recommendations" for e in uses)
