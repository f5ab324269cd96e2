"""Beside Neo4j, the revocation stamp and the key vault's state are read in one query under
a lease (pacte.graph.neo4j_shared): no round trip on the request path at steady state,
and a revocation, an erasure or a rotation made by one server still holds from the next
request on every other (G5), because the writer waits the lease out.

Two runtimes on one Neo4j database stand for two servers. They share a fake steady clock,
which the writer's wait moves on instead of sleeping: what a server on another machine
would see once the writer returned."""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pacte.graph.neo4j_shared as neo4j_shared
from pacte.errors import StorageError, Unauthenticated
from pacte.graph.neo4j_shared import SharedState, shared_state
from pacte.graph.neo4j_store import Neo4jStore
from pacte.lease import waiting
from pacte.runtime import Pacte
from tests.helpers import FakeClock, World, build_world
from tests.neo4j_fixture import clean_database

pytestmark = pytest.mark.neo4j

LEASE = 0.25  # exact in binary: a value is "exactly a lease old" when it is


class Steady:
    """The servers' steady clock; a writer's wait moves it on (and is recorded)."""

    def __init__(self) -> None:
        self.t = 5000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


@pytest.fixture
def steady(monkeypatch: pytest.MonkeyPatch) -> Steady:
    clock = Steady()
    monkeypatch.setenv("PACTE_LEASE_MS", str(int(LEASE * 1000)))
    # Every runtime opened from here on takes its shared state with this clock.
    monkeypatch.setattr(neo4j_shared, "SharedState", functools.partial(
        SharedState, clock=clock, sleep=clock.sleep))
    return clock


@pytest.fixture
def world(tmp_path: Path, neo4j_uri: str, steady: Steady,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # The KEK every server derives alike (a rotation with the keys in Neo4j needs it).
    monkeypatch.setenv("PACTE_MASTER_KEY", base64.b64encode(os.urandom(32)).decode("ascii"))
    clean_database(neo4j_uri)
    world = build_world(tmp_path, store_uri=neo4j_uri)
    yield world
    world.rt.close()


@pytest.fixture
def other(world: World) -> Iterator[Callable[[], Pacte]]:
    """Opens more servers on the world's database."""
    opened: list[Pacte] = []

    def open_one() -> Pacte:
        opened.append(Pacte.open(world.rt.data_dir, now=FakeClock()))
        return opened[-1]

    yield open_one
    for rt in opened:
        rt.close()


def _request(rt: Pacte, key: str, purpose: str = "service") -> None:
    """What every GraphQL request does before it reads anything."""
    principal = rt.authenticate(key)
    rt.session(principal, purpose)


def test_at_steady_state_a_request_makes_no_round_trip_and_one_read_renews_both(
        world: World, other: Callable[[], Pacte], steady: Steady) -> None:
    server = other()
    _, key = world.rt.create_principal(name="crm", role="app", purposes=["service"])
    _request(server, key)  # the key is now known to this server
    store = server._backend.store
    before = store.round_trips  # type: ignore[attr-defined]
    for _ in range(5):
        _request(server, key)
    assert store.round_trips == before  # type: ignore[attr-defined]
    steady.t += LEASE / 4  # old enough to renew: the first request does, once
    for _ in range(5):
        _request(server, key)
    assert store.round_trips == before + 1  # type: ignore[attr-defined]
    steady.t += LEASE
    _request(server, key)
    # The stamp and the vault's state in one query, for the authentication and the session.
    assert store.round_trips == before + 2  # type: ignore[attr-defined]


def test_a_revocation_on_one_server_holds_on_the_next_request_on_another(
        world: World, other: Callable[[], Pacte], steady: Steady) -> None:
    server, operator = other(), other()
    principal, key = operator.create_principal(name="crm", role="app", purposes=["service"])
    _, kept = operator.create_principal(name="bi", role="app", purposes=["service"])
    _request(server, key)
    _request(server, kept)
    steady.slept.clear()
    operator.revoke_principal(principal.id)
    with pytest.raises(Unauthenticated):
        _request(server, key)
    _request(server, kept)
    assert steady.slept == [waiting(LEASE)]  # because the revoker waited the lease out


def test_an_erasure_on_one_server_holds_on_the_next_request_on_another(
        world: World, other: Callable[[], Pacte], steady: Steady) -> None:
    server = other()
    app = world.principals["app"]
    cid = world.customers["granted"]
    assert server.session(app, "service").customer(cid) is not None  # its key cached there
    epoch = server._backend.vault.cache_epoch
    steady.slept.clear()
    world.rt.session(app, "self_service").erase(cid)
    reader = server.session(app, "service")
    assert server._backend.vault.cache_epoch > epoch  # its cached keys were dropped
    assert reader.customer(cid) is None
    assert steady.slept and all(s == waiting(LEASE) for s in steady.slept)


def test_a_rotation_on_one_server_is_seen_by_the_next_request_on_another(
        world: World, other: Callable[[], Pacte], steady: Steady) -> None:
    server = other()
    app = world.principals["app"]
    server.session(app, "service")
    steady.slept.clear()
    version = world.rt.rotate_keys()
    assert steady.slept == [waiting(LEASE)]
    server.session(app, "service")
    assert server._backend.vault.kek_version == version


def test_a_writer_waits_out_the_longest_lease_any_server_announced(
        world: World, other: Callable[[], Pacte], steady: Steady,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACTE_LEASE_MS", "1000")
    patient = other()  # announces its lease before its first read (at open)
    monkeypatch.setenv("PACTE_LEASE_MS", "0")
    hasty = other()  # reads per request, and still waits out the others' leases
    principal, key = hasty.create_principal(name="crm", role="app", purposes=["service"])
    _request(patient, key)
    steady.slept.clear()
    hasty.revoke_principal(principal.id)
    with pytest.raises(Unauthenticated):
        _request(patient, key)
    assert steady.slept == [waiting(1.0)]


def test_a_failing_read_is_the_requests_error_once_the_lease_ran_out(
        world: World, other: Callable[[], Pacte], steady: Steady,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = other()
    _, key = world.rt.create_principal(name="crm", role="app", purposes=["service"])
    _request(server, key)
    store = server._backend.store
    assert isinstance(store, Neo4jStore)

    def down(*args: object, **kwargs: object) -> list[list[object]]:
        raise StorageError("neo4j unreachable", retryable=True)

    monkeypatch.setattr(store, "run_read", down)
    with pytest.raises(StorageError):
        shared_state(store).lease.refresh()
    steady.t += LEASE / 2
    _request(server, key)  # its renewal fails; within the lease, still served
    steady.t += LEASE / 2
    with pytest.raises(StorageError, match="unreachable"):
        _request(server, key)  # too old to use: the request's own read, and its error
