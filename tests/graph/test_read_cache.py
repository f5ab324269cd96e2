"""The SQLite store's read cache (`pacte.graph.read_cache`): exactly as fresh as reading
the file, whoever wrote it; read-only; bounded; off on request."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacte.errors import ConfigError, InputError
from pacte.graph.read_cache import ENV, ReadCache
from pacte.graph.sqlite_store import SQLiteStore
from pacte.graph.store import Cursor, Edge, IndexEntry, Node, WriteBatch, reach
from pacte.graph.stores import open_store
from tests.helpers import World, build_world, open_runtime

ROOT = Path(__file__).resolve().parents[2]
TOKEN = b"t" * 32


@pytest.fixture
def path(tmp_path: Path) -> Path:
    SQLiteStore(tmp_path / "g.db", create=True, listed_sources=("CONSENTED",)).close()
    return tmp_path / "g.db"


@pytest.fixture
def opened(path: Path) -> Iterator[Callable[..., SQLiteStore]]:
    """Opens stores on one file (one connection each); closes them after."""
    stores: list[SQLiteStore] = []

    def open_one(**options: Any) -> SQLiteStore:
        stores.append(SQLiteStore(path, listed_sources=("CONSENTED",), **options))
        return stores[-1]

    yield open_one
    for s in stores:
        s.close()


def _version(n: int) -> WriteBatch:
    """Version `n` of a small graph: every read below sees which version it read."""
    return WriteBatch(
        nodes=[Node("Customer", "c1", {"v": n}, "c1"), Node("Product", f"p{n}", {"v": n}),
               Node("Interaction", f"i{n}", {"v": n}, "c1")],
        edges=[Edge("HAD", f"h{n}", "c1", f"i{n}", 100 + n, {"v": n}),
               Edge("ABOUT", f"a{n}", f"i{n}", f"p{n}", 100 + n),
               Edge("CONSENTED", f"k{n}", "c1", "marketing", 100 + n, {"v": n})],
        index=[IndexEntry("Customer.email", TOKEN, f"x{n}")])


def _reads(store: SQLiteStore) -> Any:
    """Every read the cache serves, as plain values."""
    return (
        {i: (n.kind, dict(n.props)) for i, n in store.get_nodes(["c1", "p1", "nobody"]).items()},
        [(e.id, dict(e.props)) for e in store.edges("c1", "HAD", limit=2)],
        {i: [e.id for e in es] for i, es in store.edges_many(["c1", "i1"], "CONSENTED").items()},
        [(e.id, n and dict(n.props), p) for e, n, p in reach(store, "c1", "HAD", then="ABOUT")],
        [e.id for e, _, _ in reach(store, "c1", "HAD", limit=3, since=102)],
        store.lookup("Customer.email", TOKEN),
        [n.id for n in store.scan_nodes("Product")],
        store.edge_sources("marketing", "CONSENTED"),
    )


def _read_all(store: SQLiteStore) -> Any:
    """The same reads on a store without a cache: what the file holds."""
    plain = SQLiteStore(store.path, read_cache=0)
    try:
        return _reads(plain)
    finally:
        plain.close()


def test_a_write_through_the_store_is_read_next(opened: Callable[..., SQLiteStore]) -> None:
    store = opened()
    store.write(_version(1))
    first = _reads(store)
    assert _reads(store) == first  # served from the cache
    assert store._cache is not None and store._cache.hits
    store.write(_version(2))
    assert _reads(store) == _read_all(store) != first
    store.write(WriteBatch(delete_nodes=["c1"]))
    assert _reads(store) == _read_all(store)
    assert store.get_nodes(["c1"]) == {}


def test_a_write_empties_the_cache_as_it_commits(opened: Callable[..., SQLiteStore]) -> None:
    # An erasure's deletion: nothing of the deleted node stays in this process's memory
    # until its next read (review finding: it stayed until then).
    store = opened()
    store.write(_version(1))
    _reads(store)
    assert store._cache is not None and len(store._cache)
    store.write(WriteBatch(delete_nodes=["c1"]))
    assert len(store._cache) == 0


def test_a_commit_by_another_connection_is_read_next(
        opened: Callable[..., SQLiteStore]) -> None:
    reader, writer = opened(), opened()
    writer.write(_version(1))
    first = _reads(reader)
    assert _reads(reader) == first
    writer.write(_version(2))
    assert _reads(reader) == _read_all(reader) != first
    writer.set_meta("k", "v")
    writer.write(WriteBatch(delete_nodes=["c1", "i1", "i2"]))
    assert _reads(reader) == _read_all(reader)


def test_a_commit_by_another_process_is_read_next(
        path: Path, opened: Callable[..., SQLiteStore]) -> None:
    reader = opened()
    reader.write(_version(1))
    first = _reads(reader)
    assert _reads(reader) == first
    script = (
        "import sys\n"
        "from pacte.graph.sqlite_store import SQLiteStore\n"
        "from tests.graph.test_read_cache import _version\n"
        "s = SQLiteStore(sys.argv[1], listed_sources=('CONSENTED',))\n"
        "s.write(_version(2))\n"
        "s.close()\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert _reads(reader) == _read_all(reader) != first


def test_the_horizon_is_cut_from_the_kept_answer_as_the_store_would(
        opened: Callable[..., SQLiteStore]) -> None:
    cached, plain = opened(), opened(read_cache=0)
    # Ties in time, so that the cursor's id and the limit fall between equal times.
    times = [100, 100, 101, 103, 103, 103, 107, 110, 110, 115]
    cached.write(WriteBatch(
        nodes=[Node("Customer", "c1", {}, "c1")]
        + [Node("Interaction", f"i{n}", {"n": n}, "c1") for n in range(len(times))],
        edges=[Edge("HAD", f"h{n}", "c1", f"i{n}", at) for n, at in enumerate(times)]
        + [Edge("ABOUT", f"a{n}", f"i{n}", "p", at) for n, at in enumerate(times) if n % 3]))

    @settings(max_examples=300, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(limit=st.none() | st.integers(0, 12), since=st.none() | st.integers(98, 117),
           before=st.none() | st.tuples(st.integers(99, 116), st.integers(0, 9)),
           then=st.sampled_from([None, "ABOUT"]))
    def same(limit: int | None, since: int | None, before: tuple[int, int] | None,
             then: str | None) -> None:
        cursor = None if before is None else Cursor(before[0], f"h{before[1]}")
        asked = dict(limit=limit, before=cursor, since=since, then=then)
        want = plain.reach("c1", "HAD", **asked)  # type: ignore[arg-type]
        assert cached.reach("c1", "HAD", **asked) == want  # type: ignore[arg-type]
        assert cached.reach("c1", "HAD", **asked) == want  # type: ignore[arg-type]

    same()
    assert cached._cache is not None and cached._cache.hits


def test_the_cache_keeps_at_most_its_bound(opened: Callable[..., SQLiteStore]) -> None:
    writer = opened(read_cache=0)
    writer.write(WriteBatch(nodes=[Node("Product", f"p{n:02}", {"n": n}) for n in range(40)]))
    store = opened(read_cache=5)
    assert store._cache is not None
    for _ in range(2):
        for n in range(40):
            assert store.get_nodes([f"p{n:02}"])[f"p{n:02}"].props == {"n": n}
            assert store._cache.size <= 5
    assert len(store.scan_nodes("Product", limit=4)) == 4
    assert store._cache.size <= 5
    # An answer larger than the whole cache is read each time, not kept.
    assert len(store.scan_nodes("Product", limit=10)) == 10
    assert store._cache.size <= 5


def test_off_every_read_reads_the_file(opened: Callable[..., SQLiteStore]) -> None:
    store = opened(read_cache=0)
    assert store._cache is None
    store.write(_version(1))
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    try:
        for _ in range(3):
            store.get_nodes(["c1"])
            store.edges("c1", "HAD")
    finally:
        store._db.set_trace_callback(None)
    assert len(statements) == 6
    assert isinstance(store.get_nodes(["c1"])["c1"].props, dict)  # as before


def test_the_environment_sets_the_bound(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "0")
    store = open_store(str(path))
    assert isinstance(store, SQLiteStore) and store._cache is None
    store.close()
    monkeypatch.setenv(ENV, "7")
    store = open_store(str(path))
    assert isinstance(store, SQLiteStore) and store._cache is not None
    assert store._cache._bound == 7
    store.close()
    for bad in ("lots", "-1", "1.5"):
        monkeypatch.setenv(ENV, bad)
        with pytest.raises(ConfigError, match=ENV):
            open_store(str(path))
    with pytest.raises(InputError):
        SQLiteStore(path, read_cache=-1)


def test_what_the_cache_serves_cannot_be_changed(opened: Callable[..., SQLiteStore]) -> None:
    store = opened()
    store.write(_version(1))
    node = store.get_nodes(["c1"])["c1"]
    edge = store.edges("c1", "HAD")[0]
    _, reached, _ = store.reach("c1", "HAD")[0]
    assert reached is not None
    for props in (node.props, edge.props, reached.props, store.scan_nodes("Product")[0].props,
                  store.edges_many(["c1"], "CONSENTED")["c1"][0].props):
        with pytest.raises(TypeError):
            props["v"] = 99  # type: ignore[index]
    # Lists are the caller's own: changing one changes no later answer.
    store.edges("c1", "HAD").clear()
    store.lookup("Customer.email", TOKEN).clear()
    store.edges_many(["c1"], "CONSENTED")["c1"].clear()
    assert store.edges("c1", "HAD") == [edge]
    assert store.lookup("Customer.email", TOKEN) == ["x1"]
    assert len(store.edges_many(["c1"], "CONSENTED")["c1"]) == 1
    assert store.get_nodes(["c1"])["c1"].props == {"v": 1}


def test_no_read_after_a_commit_returns_what_was_there_before(
        opened: Callable[..., SQLiteStore]) -> None:
    """A writer (its own connection) commits versions one after another; readers on
    one cached store note the last version committed before each read: the read must
    show that version or a later one."""
    store, writer = opened(), opened(read_cache=0)
    writer.write(_version(0))
    committed = [0]
    errors: list[str] = []
    done = threading.Event()

    def write() -> None:
        try:
            for n in range(1, 150):
                writer.write(_version(n))
                committed[0] = n
                store.write(WriteBatch(nodes=[Node("Product", "own", {"v": n})]))
        finally:
            done.set()

    def read() -> None:
        while not done.is_set():
            floor = committed[0]
            seen = [store.get_nodes(["c1"])["c1"].props["v"],
                     store.edges("c1", "HAD", limit=1)[0].props["v"],
                     store.reach("c1", "HAD", limit=1)[0][0].props["v"]]
            if any(not isinstance(v, int) or v < floor for v in seen):
                errors.append(f"read {seen!r} after {floor} committed")
            # The writer's own store: its write is read back at once.
            own = store.get_nodes(["own"]).get("own")
            mine = 0 if own is None else own.props["v"]
            if not isinstance(mine, int) or mine < floor - 1:
                errors.append(f"own write {mine!r} read after {floor} committed")

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read)
                                                  for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store._cache is not None and store._cache.hits


def test_a_cache_of_no_rows_is_refused() -> None:
    with pytest.raises(ValueError):
        ReadCache(entries=0)


# -- through the session: another runtime's change holds on the next request --------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = build_world(tmp_path)
    yield w
    w.rt.close()


def _three_sixty(world: World, cid: str) -> Any:
    session = world.rt.session(world.principals["app"], "marketing.email")
    customer = session.customer(cid)
    if customer is None:
        return None
    return (customer, session.interactions(cid, first=20).items, session.products_of(cid),
            session.consents(cid))


def test_another_runtimes_withdrawal_holds_on_the_next_read(world: World) -> None:
    cid = world.customers["granted"]
    assert _three_sixty(world, cid) is not None
    assert _three_sixty(world, cid) is not None  # warm
    other = open_runtime(world.home, store_uri=None, now=world.clock)
    try:
        other.operator_session("self_service").withdraw_consent(cid, "marketing.email")
    finally:
        other.close()
    assert _three_sixty(world, cid) is None


def test_another_runtimes_erasure_holds_on_the_next_read(world: World) -> None:
    cid = world.customers["granted"]
    assert _three_sixty(world, cid) is not None
    assert _three_sixty(world, cid) is not None
    other = open_runtime(world.home, store_uri=None, now=world.clock)
    try:
        other.operator_session("self_service").erase(cid)
    finally:
        other.close()
    assert _three_sixty(world, cid) is None
    assert world.rt._backend.store.get_nodes([cid]) == {}


def test_another_runtimes_revocation_holds_on_the_next_request(world: World) -> None:
    key = world.keys["app"]
    assert world.rt.authenticate(key) == world.principals["app"]
    other = open_runtime(world.home, store_uri=None, now=world.clock)
    try:
        other.revoke_principal(world.principals["app"].id)
    finally:
        other.close()
    from pacte.errors import Unauthenticated

    with pytest.raises(Unauthenticated):
        world.rt.authenticate(key)


def test_what_the_cache_keeps_is_plain_values_the_collector_does_not_walk(
        opened: Callable[..., SQLiteStore]) -> None:
    # Kept as Node and Edge objects (and their props' proxies), every full collection
    # walked each cached row: with a 2,000-customer world cached, ~50 ms pauses that every
    # request in flight paid (the p99). Kept rows are tuples of plain values and untracked
    # dicts: one tracked object per row, whose contents the collector does not follow.
    import gc

    def plain(value: object) -> bool:
        if isinstance(value, tuple):
            return all(plain(v) for v in value)
        if isinstance(value, dict):
            return not gc.is_tracked(value)
        return value is None or isinstance(value, str | int | float | bytes)

    store = opened()
    store.write(_version(1))
    _reads(store)
    assert store._cache is not None
    kept = list(store._cache._answers.values())
    assert kept and all(plain(answer) for answer in kept)
