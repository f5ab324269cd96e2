"""What `Session.project()` hands the analytics layer, on a small hand-built world, in
each mode (SQLite, Neo4j, attached).

The builder keeps only `segment` and `age_band` of what it is given; these tests pin
what the session itself gives, including two flaws found in review and fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from pacte.analytics import build_projection
from pacte.analytics.projection import _detail, pseudonym
from pacte.graph.store import Node, WriteBatch
from pacte.graph.views import ProjectedCustomer
from pacte.runtime import Pacte
from tests.helpers import FakeClock, init_runtime

KEY = b"another fixed key for tests only"


@pytest.fixture
def world(tmp_path: Path, store_uri: str | None
          ) -> Iterator[tuple[Pacte, FakeClock, dict[str, str]]]:
    # On SQLite, on Neo4j, and as a server attached to shared infrastructure (G9 in
    # every mode a company runs).
    clock = FakeClock()
    rt = init_runtime(tmp_path / "w", store_uri=store_uri, now=clock)
    rt.operator_session("service").ingest(WriteBatch(nodes=[
        Node("Product", "p_lamp", {"sku": "L", "name": "Lamp", "category": "home",
                                   "price": 9.0})]))
    op = rt.operator_session("service")
    ids: dict[str, str] = {}
    for name, consent in (("yes", "analytics"), ("no", None), ("other", "personalization")):
        cid = op.upsert_customer(name=f"Ada {name}", email=f"{name}@example.com",
                                 birth_date="1985-02-03", segment="gold").id
        op.record_interaction(customer_id=cid, channel="store", kind="purchase",
                              event_id=f"{name}-old", product_id="p_lamp", amount=9.0,
                              occurred_at=clock.now - timedelta(days=800))
        op.record_interaction(customer_id=cid, channel="web", kind="visit",
                              event_id=f"{name}-new", occurred_at=clock.now - timedelta(days=3))
        if consent:
            rt.operator_session("self_service").grant_consent(cid, consent, source="test")
        ids[name] = cid
    clock.advance(seconds=1)
    yield rt, clock, ids
    rt.close()


def rows(rt: Pacte) -> list[ProjectedCustomer]:
    return [r for batch in rt.operator_session("analytics").project() for r in batch]


def test_only_the_consenting_customer_with_allowed_fields(world: tuple) -> None:
    rt, _, ids = world
    (only,) = rows(rt)
    assert only.id == ids["yes"]
    assert only.fields.get("age_band") == "40-49" and only.fields.get("segment") == "gold"
    assert not {"name", "email", "phone", "address", "birth_date"} & set(only.fields)
    assert [(ch, kind) for _, ch, kind, _ in only.interactions] == [("web", "visit")]


def test_the_builder_keeps_segment_and_age_band_only(world: tuple) -> None:
    rt, _, ids = world
    projection = build_projection(rt.operator_session("analytics"), key=KEY)
    detail = _detail(projection)
    node = detail.nodes[pseudonym(KEY, ids["yes"])]
    assert node == {"kind": "customer", "segment": "gold", "age_band": "40-49"}
    assert projection.anonymity.customers == 1
    assert projection.customers == 0  # one customer is fewer than k: none is released
    # The only purchase is past the retention, so it brings no product in.
    assert "product:p_lamp" not in detail.nodes


def test_project_hands_out_no_creation_time(world: tuple) -> None:
    rt, _, _ = world
    (only,) = rows(rt)
    assert "created_at" not in only.fields


def test_project_cuts_purchases_at_the_retention(world: tuple) -> None:
    rt, _, _ = world
    (only,) = rows(rt)
    assert only.purchases == []
