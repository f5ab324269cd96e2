"""The synthetic data: reproducible, realistic in shape, consistent, and lazy."""

from __future__ import annotations

import gc
import hashlib
import json
import re
import sys
import tracemalloc
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from pacte.clock import to_micros
from pacte.graph.model import CHANNELS, INTERACTION_KINDS, NODE_KINDS
from pacte.graph.store import Edge, Node, WriteBatch
from pacte.seed import CONSENT_PURPOSES, SeedStats, generate
from pacte.seed.catalogue import CATALOGUE_SIZE

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NOW_US = to_micros(NOW)
TWO_YEARS_US = 730 * 86_400 * 1_000_000


def digest(batches: list[WriteBatch]) -> str:
    h = hashlib.sha256()
    for b in batches:
        h.update(repr((b.nodes, b.edges, b.index)).encode())
    return h.hexdigest()


def flatten(batches: list[WriteBatch]) -> tuple[list[Node], list[Edge]]:
    return [n for b in batches for n in b.nodes], [e for b in batches for e in b.edges]


@pytest.fixture(scope="module")
def world() -> tuple[list[Node], list[Edge]]:
    return flatten(list(generate(1000, seed=3, now=NOW)))


def of(nodes: list[Node], kind: str) -> list[Node]:
    return [n for n in nodes if n.kind == kind]


# -- reproducibility --------------------------------------------------------------


def test_same_arguments_give_the_same_batches() -> None:
    assert digest(list(generate(300, seed=5, now=NOW))) == \
        digest(list(generate(300, seed=5, now=NOW)))


def test_another_seed_gives_other_data() -> None:
    assert digest(list(generate(300, seed=5, now=NOW))) != \
        digest(list(generate(300, seed=6, now=NOW)))


def test_batch_size_only_groups_customers() -> None:
    """Documented: customer k depends on (seed, k) alone, not on batch_customers."""
    small = list(generate(300, seed=1, batch_customers=7, now=NOW))
    large = list(generate(300, seed=1, batch_customers=1000, now=NOW))
    assert len(small) == 43 and len(large) == 1
    assert flatten(small) == flatten(large)


def test_fewer_customers_is_a_prefix() -> None:
    few = flatten(list(generate(10, now=NOW)))
    many = flatten(list(generate(1000, now=NOW)))
    assert many[0][:len(few[0])] == few[0]
    assert many[1][:len(few[1])] == few[1]


@pytest.mark.parametrize("customers", [10, 1000])
def test_sizes(customers: int) -> None:
    batches = list(generate(customers, batch_customers=400, now=NOW))
    assert len(batches) == -(-customers // 400)
    stats = SeedStats()
    for b in batches:
        stats.add(b)
    assert stats.customers == customers
    assert stats.products == CATALOGUE_SIZE
    assert stats.batches == len(batches)
    assert all(not b.index for b in batches), "blind-index entries are the sealing layer's job"


def test_no_customers_still_gives_the_catalogue() -> None:
    batches = list(generate(0, now=NOW))
    assert len(batches) == 1
    assert {n.kind for n in batches[0].nodes} == {"Product"}


@pytest.mark.parametrize("kwargs", [{"customers": -1}, {"customers": 10, "batch_customers": 0}])
def test_bad_arguments_fail_at_the_call(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        generate(now=NOW, **kwargs)


# -- shape ------------------------------------------------------------------------


def test_catalogue_comes_first_and_once() -> None:
    batches = list(generate(30, batch_customers=10, now=NOW))
    assert [sum(n.kind == "Product" for n in b.nodes) for b in batches] == [CATALOGUE_SIZE, 0, 0]
    products = of(batches[0].nodes, "Product")
    assert len({p.props["sku"] for p in products}) == CATALOGUE_SIZE
    assert len({p.props["name"] for p in products}) == CATALOGUE_SIZE
    for p in products:
        assert p.owner is None
        assert set(p.props) == {"sku", "name", "category", "price"}
        assert isinstance(p.props["price"], float) and p.props["price"] > 0


def test_every_channel_and_kind_appears(world: tuple[list[Node], list[Edge]]) -> None:
    interactions = of(world[0], "Interaction")
    assert {n.props["channel"] for n in interactions} == set(CHANNELS)
    assert {n.props["kind"] for n in interactions} == set(INTERACTION_KINDS)


def test_about_fifteen_interactions_each(world: tuple[list[Node], list[Edge]]) -> None:
    per_customer = len(of(world[0], "Interaction")) / len(of(world[0], "Customer"))
    assert 14.0 <= per_customer <= 16.0


def test_emails_are_reserved_and_unique(world: tuple[list[Node], list[Edge]]) -> None:
    emails = [str(c.props["email"]) for c in of(world[0], "Customer")]
    assert all(e.endswith("@example.com") for e in emails)
    assert len(set(emails)) == len(emails)


def test_customer_fields(world: tuple[list[Node], list[Edge]]) -> None:
    for c in of(world[0], "Customer"):
        assert c.owner == c.id and re.fullmatch(r"c_[0-9a-f]{12}", c.id)
        assert set(c.props) <= {f.name for f in NODE_KINDS["Customer"].fields}
        assert re.fullmatch(r"\+1\d{3}55501\d{2}", str(c.props["phone"]))
        born = date.fromisoformat(str(c.props["birth_date"]))
        assert 17 <= NOW.year - born.year <= 89
        assert isinstance(c.props["created_at"], int) and c.props["created_at"] < NOW_US
        assert str(c.props["name"]).count(" ") == 1 and c.props["address"]


def test_interactions(world: tuple[list[Node], list[Edge]]) -> None:
    nodes, edges = world
    about = {e.src for e in edges if e.type == "ABOUT"}
    bought = {e.id[2:]: e for e in edges if e.type == "BOUGHT"}
    had = {e.dst: e for e in edges if e.type == "HAD"}
    summaries = []
    for i in of(nodes, "Interaction"):
        at = i.props["occurred_at"]
        assert isinstance(at, int) and NOW_US - TWO_YEARS_US <= at <= NOW_US
        assert had[i.id].at == at and had[i.id].src == i.owner
        summary = str(i.props["summary"])
        assert 10 < len(summary) < 120
        summaries.append(summary)
        if i.props["kind"] == "purchase":
            assert bought[i.id].props["amount"] == i.props["amount"]
            assert i.id in about
        else:
            assert "amount" not in i.props and i.id not in bought
    # Specific enough to search raw files for one of them.
    assert len(set(summaries)) > 0.95 * len(summaries)
    ratings = Counter(e.props["rating"] for e in edges if e.type == "REVIEWED")
    assert set(ratings) == {1, 2, 3, 4, 5}


def test_devices(world: tuple[list[Node], list[Edge]]) -> None:
    nodes, edges = world
    devices = of(nodes, "Device")
    owners = {d.owner for d in devices}
    assert 0.25 <= len(owners) / len(of(nodes, "Customer")) <= 0.35
    owns = {e.dst: e.src for e in edges if e.type == "OWNS"}
    for d in devices:
        assert owns[d.id] == d.owner
        lat, lon = (float(x) for x in str(d.props["location"]).split(","))
        assert -90 <= lat <= 90 and -180 <= lon <= 180
        telemetry = json.loads(str(d.props["telemetry"]))
        assert set(telemetry) == {"usage_minutes_per_day", "times_of_use", "energy_kwh_30d"}
    telemetry_owners = {i.owner for i in of(nodes, "Interaction") if i.props["kind"] == "telemetry"}
    assert telemetry_owners <= owners


def test_ids_are_unique_and_prefixed(world: tuple[list[Node], list[Edge]]) -> None:
    nodes, edges = world
    assert len({n.id for n in nodes}) == len(nodes)
    assert len({e.id for e in edges}) == len(edges)
    prefix = {"Customer": "c_", "Interaction": "i_", "Device": "d_", "Product": "p_"}
    assert all(n.id.startswith(prefix[n.kind]) and len(n.id) <= 20 for n in nodes)


def test_owners(world: tuple[list[Node], list[Edge]]) -> None:
    customers = {c.id for c in of(world[0], "Customer")}
    for n in world[0]:
        if n.kind == "Product":
            assert n.owner is None
        else:
            assert n.owner in customers


def test_every_edge_endpoint_exists(world: tuple[list[Node], list[Edge]]) -> None:
    nodes, edges = world
    kinds = {n.id: n.kind for n in nodes}
    expected = {"CONSENTED": ("Customer", None), "HAD": ("Customer", "Interaction"),
                "ABOUT": ("Interaction", "Product"), "BOUGHT": ("Customer", "Product"),
                "REVIEWED": ("Customer", "Product"), "OWNS": ("Customer", "Device"),
                "REFERRED": ("Customer", "Customer")}
    assert {e.type for e in edges} == set(expected)
    for e in edges:
        src, dst = expected[e.type]
        assert kinds.get(e.src) == src
        if dst is None:
            assert e.dst in CONSENT_PURPOSES
        else:
            assert kinds.get(e.dst) == dst


def test_referrals_point_back(world: tuple[list[Node], list[Edge]]) -> None:
    nodes, edges = world
    order = {c.id: k for k, c in enumerate(of(nodes, "Customer"))}
    created = {c.id: c.props["created_at"] for c in of(nodes, "Customer")}
    referrals = [e for e in edges if e.type == "REFERRED"]
    assert 50 <= len(referrals) <= 150
    for e in referrals:
        assert order[e.src] < order[e.dst]
        assert created[e.src] < created[e.dst] == e.at  # type: ignore[operator]


# -- consent ----------------------------------------------------------------------


def test_consent_mix(world: tuple[list[Node], list[Edge]]) -> None:
    nodes, edges = world
    consents = [e for e in edges if e.type == "CONSENTED"]
    customers = of(nodes, "Customer")
    with_any = {e.src for e in consents}
    assert 0.35 <= 1 - len(with_any) / len(customers) <= 0.45
    granted = Counter(e.dst for e in consents if e.props["status"] == "granted")
    assert set(granted) == set(CONSENT_PURPOSES)
    assert granted["marketing"] > granted["marketing.sms"]
    for e in consents:
        assert set(e.props) == {"status", "until", "source", "policy_version", "proof"}
        assert e.props["policy_version"] == "seed"
        assert re.fullmatch(r"[0-9a-f]{64}", str(e.props["proof"]))
        assert e.at <= NOW_US
        until = e.props["until"]
        assert until is None or (isinstance(until, int) and until > e.at)


def test_withdrawals_keep_the_grant(world: tuple[list[Node], list[Edge]]) -> None:
    consents = [e for e in world[1] if e.type == "CONSENTED"]
    withdrawn = [e for e in consents if e.props["status"] == "withdrawn"]
    assert withdrawn
    for w in withdrawn:
        grants = [g for g in consents if (g.src, g.dst) == (w.src, w.dst)
                  and g.props["status"] == "granted"]
        assert grants and max(g.at for g in grants) < w.at


# -- memory -----------------------------------------------------------------------


def test_peak_memory_is_one_batch() -> None:
    """tracemalloc is slow (~1 ms per customer), so this checks a few batches; the
    test below checks that nothing accumulates over 50k customers."""
    tracemalloc.start()
    try:
        for batch in generate(1500, batch_customers=250, now=NOW):
            del batch
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000


@pytest.mark.slow
def test_memory_stays_flat_over_50k_customers() -> None:
    gc.collect()
    samples: list[int] = []
    for n, batch in enumerate(generate(50_000, batch_customers=1000, now=NOW)):
        del batch
        if n % 5 == 4:
            samples.append(sys.getallocatedblocks())
    # Blocks alive between batches do not grow with the customers generated so far.
    assert max(samples) - min(samples) < 20_000, samples
