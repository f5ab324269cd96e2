"""Authentication answers keys it has seen without the store, and a revocation made by
any process still holds from the next request on every other one (G5)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pacte.errors import RevocationNotPropagated, StorageError, Unauthenticated
from pacte.graph.key_cache import KeyCache, RevocationStamp
from pacte.graph.principals import Principal
from pacte.runtime import Pacte
from tests.helpers import FakeClock, init_runtime, open_runtime

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(tmp_path: Path, store_uri: str | None) -> Path:
    """A data directory on each store, with nobody holding it open."""
    init_runtime(tmp_path / "data", store_uri=store_uri, now=FakeClock()).close()
    return tmp_path / "data"


@pytest.fixture
def opened(data: Path, store_uri: str | None) -> Iterator[Callable[[], Pacte]]:
    """Opens runtimes on `data` (one per server process, say; attached servers in the
    attached mode); closes them after."""
    runtimes: list[Pacte] = []

    def open_one() -> Pacte:
        runtimes.append(open_runtime(data, store_uri=store_uri, now=FakeClock()))
        return runtimes[-1]

    yield open_one
    for rt in runtimes:
        rt.close()


def _count_lookups(rt: Pacte, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    lookup, get_nodes = rt._backend.store.lookup, rt._backend.store.get_nodes
    monkeypatch.setattr(rt._backend.store, "lookup",
                        lambda *a, **k: calls.append(a) or lookup(*a, **k))
    monkeypatch.setattr(rt._backend.store, "get_nodes",
                        lambda *a, **k: calls.append(a) or get_nodes(*a, **k))
    return calls


def test_a_known_key_is_answered_without_the_store(
        opened: Callable[[], Pacte], monkeypatch: pytest.MonkeyPatch) -> None:
    rt = opened()
    principal, key = rt.create_principal(name="crm", role="app", purposes=["service"])
    calls = _count_lookups(rt, monkeypatch)
    assert rt.authenticate(key) == principal
    assert calls, "the first use of a key reads the store"
    calls.clear()
    for _ in range(3):
        assert rt.authenticate(key) == principal
    assert calls == []


def test_a_revocation_by_another_runtime_holds_on_the_next_request(
        opened: Callable[[], Pacte]) -> None:
    server, operator = opened(), opened()
    principal, key = operator.create_principal(name="crm", role="app", purposes=["service"])
    other, other_key = operator.create_principal(name="bi", role="app", purposes=["service"])
    assert server.authenticate(key) == principal  # now remembered by `server`
    assert server.authenticate(other_key) == other
    operator.revoke_principal(principal.id)
    with pytest.raises(Unauthenticated):
        server.authenticate(key)
    assert server.authenticate(other_key) == other  # read again, still active


def test_a_revocation_by_another_process_holds_on_the_next_request(
        data: Path, opened: Callable[[], Pacte]) -> None:
    server = opened()
    principal, key = server.create_principal(name="crm", role="app", purposes=["service"])
    assert server.authenticate(key) == principal
    done = subprocess.run(
        [sys.executable, "-m", "pacte", "apikey", "revoke", principal.id, "--data", str(data)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
        timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    with pytest.raises(Unauthenticated):
        server.authenticate(key)


def test_unknown_keys_always_ask_the_store(
        opened: Callable[[], Pacte], monkeypatch: pytest.MonkeyPatch) -> None:
    server, operator = opened(), opened()
    calls = _count_lookups(server, monkeypatch)
    missing = "pk_" + "a" * 43
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            server.authenticate(missing)
    assert len(calls) == 2
    # A key created elsewhere works at once.
    principal, key = operator.create_principal(name="crm", role="app", purposes=["service"])
    assert server.authenticate(key) == principal


# -- the cache alone ----------------------------------------------------------------------

_P = Principal(id="pr_1", name="crm", role="app", purposes=("service",))


def test_a_read_filed_under_an_older_stamp_is_not_kept(tmp_path: Path) -> None:
    """A thread that read the store before a revocation, and files its answer after another
    thread saw the new stamp, must not leave that answer in the cache."""
    stamp = RevocationStamp(tmp_path / "revocations.stamp")
    cache = KeyCache(stamp)
    before = cache.check()
    stamp.move()  # a revocation elsewhere, after this thread's store read
    cache.check()  # another thread's request sees it
    cache.put(b"k", _P, under=before)
    assert cache.get(b"k") is None
    now = cache.check()
    cache.put(b"k", _P, under=now)
    assert cache.get(b"k") == _P


def test_an_unreadable_stamp_turns_the_cache_off(tmp_path: Path) -> None:
    (tmp_path / "revocations.stamp").mkdir()  # read_bytes fails: not a file
    cache = KeyCache(RevocationStamp(tmp_path / "revocations.stamp"))
    cache.put(b"k", _P, under=cache.check())
    assert cache.get(b"k") is None


def test_every_move_is_a_new_value(tmp_path: Path) -> None:
    stamp = RevocationStamp(tmp_path / "revocations.stamp")
    seen = {stamp.read()}
    for _ in range(5):
        stamp.move()
        seen.add(stamp.read())
    assert len(seen) == 6
    assert (tmp_path / "revocations.stamp").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["revocations.stamp"]


def test_a_revocation_whose_stamp_cannot_move_is_on_record_as_made(
        data: Path, opened: Callable[[], Pacte], monkeypatch: pytest.MonkeyPatch) -> None:
    rt = opened()
    principal, key = rt.create_principal(name="crm", role="app", purposes=["service"])
    assert rt.authenticate(key) == principal
    (data / "revocations.stamp").mkdir()  # SQLite: the stamp file cannot be replaced

    def down(*args: object, **kwargs: object) -> None:
        raise StorageError("the store is gone")

    monkeypatch.setattr(rt._backend.store, "set_meta", down)  # Neo4j: nor the stamp moved
    with pytest.raises(RevocationNotPropagated, match="revoked in the store"):
        rt.revoke_principal(principal.id)
    records = [e.record for e in rt._backend.audit.entries(limit=1000)
               if e.record["action"] == "principal.revoke"]
    assert [r["outcome"] for r in records] == ["ok", "incomplete"]
    # The store holds it: a process that had not remembered the key refuses it.
    with pytest.raises(Unauthenticated):
        opened().authenticate(key)
