"""An erasure interrupted between destroying the keys and deleting the nodes is
finished when the data directory is next opened (on each store)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pacte.crypto.vault import KeyVault
from pacte.errors import DecryptionError, KeyVaultError, StorageError
from pacte.graph.sqlite_store import SQLiteStore
from pacte.graph.store import WriteBatch
from pacte.runtime import Pacte
from tests.helpers import audit_mark, audit_since, build_world


class Crash(BaseException):
    """The process dying: nothing after it runs, no handler catches it."""


def _erase_crashing_before_deletion(rt: Pacte, cid: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Erase `cid`, the process dying once the keys are gone and before the nodes are."""
    write = rt._backend.store.write

    def crashing(batch: WriteBatch) -> Any:
        if batch.delete_nodes:
            raise Crash
        return write(batch)

    monkeypatch.setattr(rt._backend.store, "write", crashing)
    with pytest.raises(Crash):
        rt.operator_session("self_service").erase(cid)
    monkeypatch.undo()


def test_an_interrupted_erasure_is_finished_on_open(tmp_path: Path, store_uri: str | None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(tmp_path, store_uri=store_uri)
    rt, cid = world.rt, world.customers["granted"]
    _erase_crashing_before_deletion(rt, cid, monkeypatch)
    # The defect: keys gone, nodes still there, so every page holding them fails.
    with pytest.raises(DecryptionError):
        rt.operator_session("service").customers(first=100)
    before = audit_mark(rt)
    rt.close()

    with world.another() as again:
        service = again.operator_session("service")
        ids = [c.id for c in service.customers(first=100).items]
        assert cid not in ids and len(ids) == len(world.customers) - 1
        assert again._backend.store.owned_by(cid) == []
        assert again._backend.vault.erasures_pending() == []
        resumed = _erase_entries(again, before)
        assert [r["outcome"] for r in resumed] == ["resumed"]
        assert resumed[0]["subjects"] == [again._backend.subject_ref(cid)]
        size = again._backend.audit.size()
    # Finished once: the next open has nothing left to do.
    with world.another() as third:
        assert third._backend.audit.size() == size


def test_a_finished_erasure_leaves_nothing_pending(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    cid = world.customers["granted"]
    world.rt.operator_session("self_service").erase(cid)
    assert world.rt._backend.vault.erasures_pending() == []
    # The note of the erasure in progress does not outlive it in the vault's files.
    vault = [f for f in world.rt.data_dir.iterdir() if f.name.startswith("keys.db")]
    assert not [f.name for f in vault if cid.encode() in f.read_bytes()]
    world.rt.close()


def _erase_entries(rt: Pacte, before: frozenset[int]) -> list[dict[str, Any]]:
    """The `customer.erase` entries appended since the trail held `before`."""
    return [e.record for e in audit_since(rt, before) if e.record["action"] == "customer.erase"]


@contextlib.contextmanager
def _erasure_paused(rt: Pacte, cid: str, monkeypatch: pytest.MonkeyPatch, target: Any,
                    name: str, *, when: Callable[..., bool] = lambda *a, **k: True
                    ) -> Iterator[None]:
    """Erase `cid` in a thread, paused in `target.name` (when `when` says so) while the
    block runs; then let it finish, and check it did, with one `ok` entry on record."""
    original = getattr(target, name)
    reached, go_on = threading.Event(), threading.Event()

    def held(*args: Any, **kwargs: Any) -> Any:
        if when(*args, **kwargs):
            reached.set()
            go_on.wait(60)
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, held)
    outcome: dict[str, object] = {}

    def erase() -> None:
        try:
            outcome["receipt"] = rt.operator_session("self_service").erase(cid)
        except BaseException as exc:  # reported to the test below
            outcome["error"] = exc

    before = audit_mark(rt)
    eraser = threading.Thread(target=erase)
    eraser.start()
    try:
        assert reached.wait(60)
        yield
    finally:
        go_on.set()
        eraser.join()
    assert "receipt" in outcome, outcome
    assert [r["outcome"] for r in _erase_entries(rt, before)] == ["ok"]


def test_an_open_does_not_resume_an_erasure_under_way(
        tmp_path: Path, store_uri: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    # A second server (or `pacte stats`) opening the directory while an erasure sits
    # between its key destruction and its node deletion used to take it for a crash.
    world = build_world(tmp_path, store_uri=store_uri)
    rt, cid = world.rt, world.customers["granted"]
    with _erasure_paused(rt, cid, monkeypatch, rt._backend.store, "write",
                         when=lambda batch: bool(batch.delete_nodes)), \
            world.another() as other:
        assert other._backend.vault.erasures_pending() == [cid]  # left to its owner
        assert other._backend.store.owned_by(cid) != []


def test_a_busy_graph_file_leaves_the_erasure_done_and_its_scrub_pending(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # graph.db cannot be rewritten after the deletion committed (a long reader): the
    # trail used to say the erasure failed, and no later open rewrote the file.
    world = build_world(tmp_path)
    rt, cid = world.rt, world.customers["granted"]
    scrubs: list[str] = []
    real = SQLiteStore.scrub

    def busy(self: SQLiteStore) -> None:
        scrubs.append("busy")
        raise StorageError("deleted, but the database could not be rewritten "
                           "(database is locked); call scrub() again", retryable=True)

    monkeypatch.setattr(SQLiteStore, "scrub", busy)
    before = audit_mark(rt)
    receipt = rt.operator_session("self_service").erase(cid)
    assert receipt["subject"] == rt._backend.subject_ref(cid)
    assert scrubs == ["busy"]
    assert rt._backend.store.owned_by(cid) == []
    assert [(r["outcome"], r.get("reason")) for r in _erase_entries(rt, before)] == [
        ("ok", None), ("scrub_pending", "STORAGE")]
    assert rt._backend.vault.erasures_pending() == [cid]
    # The directory stays usable meanwhile.
    rt.operator_session("service").customers(first=100)
    # An open while it is still busy leaves it pending, and still opens.
    with Pacte.open(rt.data_dir, now=world.clock) as busy_open:
        assert busy_open._backend.vault.erasures_pending() == [cid]
    rt.close()

    def counted(self: SQLiteStore) -> None:
        scrubs.append("scrub")
        real(self)

    monkeypatch.setattr(SQLiteStore, "scrub", counted)
    with Pacte.open(rt.data_dir, now=world.clock) as again:
        assert scrubs[-1] == "scrub"
        assert again._backend.vault.erasures_pending() == []
        resumed = _erase_entries(again, before)[-1]
        assert (resumed["outcome"], resumed["deleted_nodes"]) == ("resumed", 0)
    graph = [f for f in rt.data_dir.iterdir() if f.name.startswith("graph.db")]
    assert not [f.name for f in graph if cid.encode() in f.read_bytes()]


def test_a_busy_key_vault_does_not_stop_the_deletion(
        tmp_path: Path, store_uri: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    # keys.db cannot be rewritten (readers elsewhere): destroy used to raise after
    # committing, so the nodes stayed, undecryptable, and every list page failed.
    world = build_world(tmp_path, store_uri=store_uri)
    rt, cid = world.rt, world.customers["granted"]
    real = KeyVault._scrub

    def busy(self: KeyVault) -> None:
        raise KeyVaultError("the key vault's write-ahead log could not be truncated "
                            "while other connections read; retry to finish")

    monkeypatch.setattr(KeyVault, "_scrub", busy)
    before = audit_mark(rt)
    rt.operator_session("self_service").erase(cid)
    assert rt._backend.store.owned_by(cid) == []
    ids = [c.id for c in rt.operator_session("service").customers(first=100).items]
    assert cid not in ids and len(ids) == len(world.customers) - 1
    assert [(r["outcome"], r.get("reason")) for r in _erase_entries(rt, before)] == [
        ("ok", None), ("scrub_pending", "KEY")]
    assert rt._backend.vault.erasures_pending() == [cid]
    pending = audit_mark(rt)
    rt.close()

    monkeypatch.setattr(KeyVault, "_scrub", real)
    with world.another() as again:
        assert again._backend.vault.erasures_pending() == []
        assert [r["outcome"] for r in _erase_entries(again, pending)] == ["resumed"]
    vault = [f for f in rt.data_dir.iterdir() if f.name.startswith("keys.db")]
    assert not [f.name for f in vault if cid.encode() in f.read_bytes()]


def test_an_open_does_not_apply_the_erasure_log_to_an_erasure_under_way(
        tmp_path: Path, store_uri: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Between its log line and the destruction of the keys, an erasure looks to the
    # erasure log like one a restore undid: an open at that moment must leave it to
    # its own process, not erase it a second time ("reapplied") beside it.
    world = build_world(tmp_path, store_uri=store_uri)
    rt, cid = world.rt, world.customers["granted"]
    with _erasure_paused(rt, cid, monkeypatch, rt._backend.vault, "destroy"), \
            world.another() as other:
        assert not other._backend.vault.is_destroyed(cid)  # left to its owner
        assert other._backend.store.owned_by(cid) != []
