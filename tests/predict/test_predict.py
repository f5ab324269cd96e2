"""Next best actions (issue #21): consented data only, groups of k, forgetting at once.

A small hand-built world with fixed ids, built on each store, so that a world where
a customer withdrew (or was erased) can be compared with the same world built
without them: every prediction must be the same from the next request on (G5).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from pacte.api import create_app
from pacte.clock import to_micros
from pacte.errors import Forbidden, InputError, NotFound, PurposeNotGranted
from pacte.graph.principals import Principal
from pacte.graph.store import Edge, Node, WriteBatch
from pacte.predict import (
    AT_RISK,
    DEVICE_REPLACE,
    FOLLOW_UP,
    NextBestAction,
    next_best_actions,
)
from pacte.runtime import Pacte
from tests.api.conftest import Api
from tests.conftest import BACKENDS, backend_uri
from tests.helpers import FakeClock

PRODUCTS = ("p_a", "p_b", "p_x", "p_y", "p_z")
DAY = timedelta(days=1)
# Who is in the world: (id, products bought with days ago, consents to personalization).
ME = "c_me"
WITHDRAWER = "c_peer4"  # the fifth of exactly five who bought p_b after p_a
PEERS = [f"c_peer{i}" for i in range(5)]          # p_a, then p_b: a group of 5
FEW = [f"c_few{i}" for i in range(4)]             # p_a, then p_y: a group of 4 (< k)
SILENT = [f"c_silent{i}" for i in range(6)]       # p_a, then p_z: no consent
SECRET = "Zebulon Quaxworth"  # a name of a peer, which no explanation may hold


@dataclass
class Shop:
    rt: Pacte
    clock: FakeClock
    app: Principal
    path: Path
    uri: str | None

    def predict(self, customer_id: str, *, purpose: str = "personalization",
                first: int = 3) -> list[NextBestAction]:
        s = self.rt.session(self.app, purpose)
        return next_best_actions(s, customer_id, first=first)

    def everyone(self) -> dict[str, list[NextBestAction]]:
        """Every consenting customer's predictions, by id."""
        out: dict[str, list[NextBestAction]] = {}
        for cid in [ME, *PEERS, *FEW]:
            try:
                out[cid] = self.predict(cid, first=10)
            except NotFound:
                out[cid] = []
        return out


def _customer(cid: str, name: str) -> Node:
    return Node("Customer", cid, {"name": name, "email": f"{cid}@example.com",
                                  "created_at": 1}, cid)


class _World:
    def __init__(self, now_us: int) -> None:
        self.now_us = now_us
        self.nodes: list[Node] = [Node("Product", p, {"sku": p, "name": p, "category": "home",
                                                      "price": 5.0}) for p in PRODUCTS]
        self.edges: list[Edge] = []
        self.n = 0

    def contact(self, cid: str, kind: str, channel: str, days_ago: float,
                product: str | None = None) -> None:
        self.n += 1
        iid, at = f"i_{self.n:04d}", self.now_us - int(days_ago * 86_400_000_000)
        self.nodes.append(Node("Interaction", iid, {"channel": channel, "kind": kind,
                                                    "occurred_at": at, "event_id": iid}, cid))
        self.edges.append(Edge("HAD", "h_" + iid, cid, iid, at))
        if product is not None:
            self.edges.append(Edge("ABOUT", "a_" + iid, iid, product, at))
            if kind == "purchase":
                self.edges.append(Edge("BOUGHT", "b_" + iid, cid, product, at,
                                       {"amount": 5.0}))


def build(path: Path, uri: str | None, *, without: str | None = None) -> Shop:
    clock = FakeClock()
    rt = Pacte.init(path, store_uri=uri, now=clock)
    w = _World(to_micros(clock.now))
    people = [ME, *PEERS, *FEW, *SILENT]
    for cid in people:
        if cid != without:
            w.nodes.append(_customer(cid, SECRET if cid == PEERS[0] else f"Name {cid}"))
    for i, cid in enumerate(PEERS + FEW + SILENT):
        if cid == without:
            continue
        nxt = "p_b" if cid in PEERS else "p_y" if cid in FEW else "p_z"
        w.contact(cid, "purchase", "web", 100 + i, "p_a")
        w.contact(cid, "purchase", "app", 80 + i, nxt)
    # The customer bought p_a lately and has a worn bulb; another one, after two
    # purchases, only complained of late.
    w.contact(ME, "visit", "web", 200)
    w.contact(ME, "purchase", "web", 20, "p_a")
    if without != FEW[0]:
        w.contact(FEW[0], "support", "phone", 10)
        w.contact(FEW[0], "support", "chat", 5)
    w.nodes.append(Node("Device", "d_bulb", {
        "device_type": "smart_bulb", "model": "Bulb", "location": "48.1,2.3",
        "telemetry": json.dumps({"usage_minutes_per_day": 300, "hours_on": 950})}, ME))
    w.edges.append(Edge("OWNS", "o_bulb", ME, "d_bulb", w.now_us - 200 * 86_400_000_000))
    rt.operator_session("service").ingest(WriteBatch(nodes=w.nodes, edges=w.edges))
    for cid in [ME, *PEERS, *FEW]:
        if cid != without:
            rt.operator_session("self_service").grant_consent(cid, "personalization",
                                                              source="test")
    app, _ = rt.create_principal(name="advisor", role="app",
                                 purposes=["personalization", "service", "marketing"])
    return Shop(rt, clock, app, path, uri)


@pytest.fixture(params=BACKENDS)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    s = build(tmp_path / "shop", backend_uri(request))
    yield s
    s.rt.close()


def _world_without(shop: Shop, tmp_path: Path, cid: str) -> dict[str, list[NextBestAction]]:
    """Every prediction in the same world built without `cid` (on the same store kind)."""
    if shop.uri is not None:
        from tests.neo4j_fixture import clean_database

        clean_database(shop.uri)  # the caller has read its predictions already
    other = build(tmp_path / "without", shop.uri, without=cid)
    other.clock.now = shop.clock.now
    try:
        return other.everyone()
    finally:
        other.rt.close()


def test_actions_are_ranked_and_explained(shop: Shop) -> None:
    actions = shop.predict(ME, first=10)
    keys = [a.key for a in actions]
    assert (DEVICE_REPLACE, "d_bulb") in keys
    assert (FOLLOW_UP, "p_b") in keys
    assert (AT_RISK, "") in [a.key for a in shop.predict(FEW[0])]
    assert [a.score for a in actions] == sorted((a.score for a in actions), reverse=True)
    assert len(shop.predict(ME, first=1)) == 1
    for a in actions:
        assert a.why and a.expires_at > shop.clock.now
        assert {s.category for s in a.why} <= {"user.behavior", "user.device",
                                               "user.financial"}
    follow = next(a for a in actions if a.kind == FOLLOW_UP)
    (peers,) = [s for s in follow.why if s.source == "customers"]
    assert peers.customers == 5 and follow.score == round(5 / 9, 3)  # 9 consenting bought p_a


def test_no_group_under_k_and_no_value_of_anyone_else(shop: Shop) -> None:
    for actions in shop.everyone().values():
        for a in actions:
            # p_y (4 buyers) and p_z (6 buyers without consent) are never learned.
            assert a.target not in ("p_y", "p_z")
            for s in a.why:
                assert s.customers is None or s.customers >= 5
                text = json.dumps([s.detail, a.target])
                assert SECRET not in text and "Name " not in text
                assert not any(c in text for c in [*PEERS, *FEW, *SILENT] if c != a.target)


@pytest.mark.parametrize("purpose", ["service", "marketing"])
def test_no_prediction_under_another_purpose(shop: Shop, purpose: str) -> None:
    with pytest.raises(PurposeNotGranted):
        shop.predict(ME, purpose=purpose)


def test_no_prediction_for_analysts(shop: Shop) -> None:
    analyst, _ = shop.rt.create_principal(name="an", role="analyst",
                                          purposes=["personalization", "analytics"])
    with pytest.raises((Forbidden, PurposeNotGranted)):
        next_best_actions(shop.rt.session(analyst, "personalization"), ME)


def test_no_prediction_without_consent(shop: Shop) -> None:
    with pytest.raises(NotFound):
        shop.predict(SILENT[0])
    shop.rt.operator_session("self_service").withdraw_consent(ME, "personalization")
    shop.clock.advance(seconds=1)  # the next request
    with pytest.raises(NotFound):
        shop.predict(ME)


def test_a_withdrawal_changes_every_prediction_at_once(shop: Shop, tmp_path: Path) -> None:
    assert (FOLLOW_UP, "p_b") in [a.key for a in shop.predict(ME, first=10)]
    shop.rt.operator_session("self_service").withdraw_consent(WITHDRAWER, "personalization")
    shop.clock.advance(seconds=1)  # the next request
    # Another process, opened on the same data directory, sees it on its next request.
    with Pacte.open(shop.path, now=shop.clock) as other:
        app = other._backend.principals.get(shop.app.id)
        assert app is not None
        elsewhere = next_best_actions(other.session(app, "personalization"), ME, first=10)
    after = shop.everyone()
    assert (FOLLOW_UP, "p_b") not in [a.key for a in after[ME]]
    assert elsewhere == after[ME]
    assert after == _world_without(shop, tmp_path, WITHDRAWER) | {WITHDRAWER: []}


def test_an_erasure_changes_every_prediction_at_once(shop: Shop, tmp_path: Path) -> None:
    shop.rt.operator_session("self_service").erase(WITHDRAWER)
    shop.clock.advance(seconds=1)  # the next request
    after = shop.everyone()
    assert (FOLLOW_UP, "p_b") not in [a.key for a in after[ME]]
    assert after == _world_without(shop, tmp_path, WITHDRAWER) | {WITHDRAWER: []}


def test_each_prediction_is_an_audited_use(shop: Shop) -> None:
    s = shop.rt.session(shop.app, "personalization", defer_audit=True)
    served = next_best_actions(s, ME, first=10)
    s.flush()
    auditor, _ = shop.rt.create_principal(name="aud", role="auditor", purposes=["legal"])
    (entry,) = shop.rt.session(auditor, "legal").audit_trail(customer_id=ME, first=100)[-1:]
    rec = entry.record
    ops = {op["action"]: op for op in rec["operations"]}
    assert ops["predict"]["actions"] == [a.kind for a in served]
    assert ops["predict"]["categories"] == ["user.behavior", "user.device", "user.financial"]
    refs = set(rec["subjects"])
    # Every consenting buyer of p_a counts (in the share bought p_b next): all named.
    assert {shop.rt._backend.subject_ref(c) for c in [*PEERS, *FEW]} <= refs
    # Those without consent are not.
    assert not {shop.rt._backend.subject_ref(c) for c in SILENT} & refs
    # A contributor finds the use in their own trail.
    uses = shop.rt.session(auditor, "legal").trace(PEERS[1])
    assert any(e.record.get("request_id") == rec["request_id"] for e in uses)


def test_graphql_field(shop: Shop) -> None:
    if shop.uri is not None:
        pytest.skip("the API over Neo4j is covered by the session tests above")
    _, key = shop.rt.create_principal(name="web", role="app",
                                      purposes=["personalization", "service"])
    api = Api(create_app(shop.rt))
    try:
        q = ('query($id: ID!) { customer(id: $id) { nextBestActions(first: 2) '
             '{ kind target score expiresAt why { category source detail customers } } } }')
        got = api.data(q, key=key, purpose="personalization", variables={"id": ME})
        actions = got["customer"]["nextBestActions"]
        assert len(actions) == 2 and actions[0]["score"] >= actions[1]["score"]
        refused = api.post(q, key=key, purpose="service", variables={"id": ME}).json()
        assert refused["errors"][0]["extensions"]["code"] == "PURPOSE_NOT_GRANTED"
    finally:
        api.close()


@pytest.mark.parametrize("first", [-1, 11, True])
def test_bad_first_is_one_clear_error(shop: Shop, first: int) -> None:
    with pytest.raises(InputError, match="first must be between 0 and 10"):
        shop.predict(ME, first=first)
