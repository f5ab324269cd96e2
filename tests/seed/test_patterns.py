"""Planted patterns (issue #21): opt-in, reproducible, consistent, truth kept apart."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

from pacte.graph.store import Edge, Node
from pacte.predict import AT_RISK, CHANNEL_CHANGE, DEVICE_REPLACE, DEVICE_SERVICE, FOLLOW_UP
from pacte.seed import generate
from pacte.seed.patterns import FOLLOWS, Planted

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _flat(planted: Planted) -> tuple[list[Node], list[Edge]]:
    batches = list(planted.batches())
    return [n for b in batches for n in b.nodes], [e for b in batches for e in b.edges]


def test_same_people_and_consents_as_the_default_seed() -> None:
    nodes, edges = _flat(Planted(600, seed=4, now=NOW))
    plain = [n for b in generate(600, seed=4, now=NOW) for n in b.nodes]
    assert [n for n in nodes if n.kind == "Customer"] == \
        [n for n in plain if n.kind == "Customer"]
    plain_consents = [e for b in generate(600, seed=4, now=NOW) for e in b.edges
                      if e.type == "CONSENTED"]
    assert [e for e in edges if e.type == "CONSENTED"] == plain_consents


def test_reproducible() -> None:
    a, b = Planted(300, seed=2, now=NOW), Planted(300, seed=2, now=NOW)
    assert _flat(a) == _flat(b) and a.truth == b.truth


def test_the_world_is_consistent() -> None:
    nodes, edges = _flat(Planted(600, seed=4, now=NOW))
    ids = {n.id for n in nodes}
    assert len(ids) == len(nodes)
    assert len({e.id for e in edges}) == len(edges)
    for e in edges:
        assert (e.src in ids and e.dst in ids) or e.type == "CONSENTED"
    for n in nodes:
        if n.kind == "Device":
            assert isinstance(json.loads(str(n.props["telemetry"]))["hours_on"], int)


def test_the_truth_holds_every_planted_kind_and_stays_apart() -> None:
    planted = Planted(2000, seed=1, now=NOW)
    nodes, edges = _flat(planted)
    kinds = Counter(kind for actions in planted.truth.values() for kind, _ in actions)
    assert {AT_RISK, CHANNEL_CHANGE, DEVICE_REPLACE, DEVICE_SERVICE, FOLLOW_UP} <= set(kinds)
    assert set(planted.truth) == {n.id for n in nodes if n.kind == "Customer"}
    # Every planted follow-up is a B of a pair, not yet bought by that customer.
    bought = {(e.src, e.dst) for e in edges if e.type == "BOUGHT"}
    for cid, actions in planted.truth.items():
        for kind, target in actions:
            if kind == FOLLOW_UP:
                assert target in FOLLOWS.values() and (cid, target) not in bought
