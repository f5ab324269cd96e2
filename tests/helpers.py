"""Test helpers: a settable clock, the runtimes of each mode, and a small, hand-built
world of customers."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pacte.clock import Clock
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


class Attached(str):
    """The URI of a Neo4j store that tests serve the shared-infrastructure way: a data
    directory is made on it once (`pacte init --store`), and the runtimes the tests get
    are servers attached to the store (`Pacte.attach`) with working directories of their
    own, given the directory's policy and signing key and the KEK in PACTE_MASTER_KEY.
    Their graph, wrapped keys and audit trail all live in Neo4j."""


def init_runtime(data_dir: Path, *, store_uri: str | None, now: Clock) -> Pacte:
    """A new data directory on the store, and a runtime serving it: the directory's own
    (`Pacte.init`), or for an `Attached` URI a server attached to its store."""
    rt = Pacte.init(data_dir, store_uri=None if store_uri is None else str(store_uri),
                    now=now)
    if not isinstance(store_uri, Attached):
        return rt
    rt.close()
    return open_runtime(data_dir, store_uri=store_uri, now=now)


def open_runtime(data_dir: Path, *, store_uri: str | None, now: Clock) -> Pacte:
    """Another runtime on the data of `data_dir`, as another process would open it
    (`Pacte.open`); for an `Attached` URI, another server with an empty working directory
    of its own. Every server shares the directory's erasure log, as the deployment
    section of the README has them share one file (PACTE_ERASURE_LOG)."""
    if not isinstance(store_uri, Attached):
        return Pacte.open(data_dir, store_uri=store_uri, now=now)
    work = Path(tempfile.mkdtemp(prefix="server-", dir=data_dir.parent))
    return Pacte.attach(str(store_uri), policy_file=data_dir / "policy.toml",
                        signing_key_file=data_dir / "signing.key", work_dir=work,
                        erasure_log=data_dir / "erasures.log", now=now)


def attached(rt: Pacte) -> bool:
    """Whether `rt` is a server attached to shared infrastructure (no data directory)."""
    return not (rt.data_dir / "policy.toml").exists()


def audit_mark(rt: Pacte) -> frozenset[int]:
    """The entries on the audit trail now (their `seq`), to tell the ones appended later
    (by any runtime) with `audit_since`. On the shared trail each server appends to a
    chain of its own, so a later entry need not have a larger `seq`."""
    return frozenset(e.seq for e in _every_entry(rt))


def audit_since(rt: Pacte, mark: frozenset[int]) -> list[Any]:
    """The entries appended since `mark`, in the trail's order."""
    return [e for e in _every_entry(rt) if e.seq not in mark]


def _every_entry(rt: Pacte) -> list[Any]:
    out: list[Any] = []
    while True:
        page = rt._backend.audit.entries(after_seq=out[-1].seq if out else None, limit=1000)
        out += page
        if len(page) < 1000:
            return out


def neo4j_properties(uri: str) -> list[tuple[list[str], dict[str, Any]]]:
    """Every node and relationship the Neo4j database holds, with all its properties:
    the graph, the key vault's and the shared audit trail's nodes alike."""
    import neo4j

    with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        nodes, _, _ = driver.execute_query("MATCH (n) RETURN labels(n), properties(n)")
        edges, _, _ = driver.execute_query("MATCH ()-[r]->() RETURN [type(r)], properties(r)")
    return [(list(r[0]), dict(r[1])) for r in [*nodes, *edges]]


def neo4j_text(uri: str) -> bytes:
    """What the database stores, as one byte string to search: labels, property names
    and values (bytes as they are, anything else as text)."""
    parts: list[bytes] = []
    for labels, props in neo4j_properties(uri):
        parts.append(" ".join(labels).encode())
        for name, value in props.items():
            parts.append(name.encode())
            parts.append(bytes(value) if isinstance(value, bytes | bytearray)
                         else str(value).encode())
    return b"\x00".join(parts)


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
    home: Path = Path()  # the data directory
    store_uri: str | None = None

    def another(self) -> Pacte:
        """Another runtime on the world's data, as another process (or server) opens it."""
        return open_runtime(self.home, store_uri=self.store_uri, now=self.clock)


def build_world(tmp_path: Path, *, store_uri: str | None = None) -> World:
    """The world in `tmp_path`/data on the store, built through the runtime it returns
    (with an `Attached` URI: through a server attached to the store)."""
    clock = FakeClock()
    rt = init_runtime(tmp_path / "data", store_uri=store_uri, now=clock)
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
    world = World(rt, clock, customers, plaintext, product=product, home=tmp_path / "data",
                  store_uri=store_uri)
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
