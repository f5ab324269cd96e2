"""An erasure interrupted between destroying the keys and deleting the nodes is
finished when the data directory is next opened (on each store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pacte.errors import DecryptionError
from pacte.graph.store import WriteBatch
from pacte.runtime import Pacte
from tests.helpers import build_world


class Crash(BaseException):
    """The process dying: nothing after it runs, no handler catches it."""


def test_an_interrupted_erasure_is_finished_on_open(tmp_path: Path, store_uri: str | None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(tmp_path, store_uri=store_uri)
    rt, cid = world.rt, world.customers["granted"]
    write = rt.store.write

    def crashing(batch: WriteBatch) -> Any:
        if batch.delete_nodes:
            raise Crash
        return write(batch)

    monkeypatch.setattr(rt.store, "write", crashing)
    with pytest.raises(Crash):
        rt.operator_session("self_service").erase(cid)
    monkeypatch.undo()
    # The defect: keys gone, nodes still there, so every page holding them fails.
    with pytest.raises(DecryptionError):
        rt.operator_session("service").customers(first=100)
    before = rt.audit.size()
    rt.close()

    with Pacte.open(rt.data_dir, store_uri=store_uri, now=world.clock) as again:
        service = again.operator_session("service")
        ids = [c.id for c in service.customers(first=100).items]
        assert cid not in ids and len(ids) == len(world.customers) - 1
        assert again.store.owned_by(cid) == []
        assert again.vault.erasures_pending() == []
        resumed = [e.record for e in again.audit.entries(after_seq=before - 1, limit=20)
                   if e.record["action"] == "customer.erase"]
        assert [r["outcome"] for r in resumed] == ["resumed"]
        assert resumed[0]["subjects"] == [again.subject_ref(cid)]
        size = again.audit.size()
    # Finished once: the next open has nothing left to do.
    with Pacte.open(rt.data_dir, store_uri=store_uri, now=world.clock) as third:
        assert third.audit.size() == size


def test_a_finished_erasure_leaves_nothing_pending(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    cid = world.customers["granted"]
    world.rt.operator_session("self_service").erase(cid)
    assert world.rt.vault.erasures_pending() == []
    # The note of the erasure in progress does not outlive it in the vault's files.
    vault = [f for f in world.rt.data_dir.iterdir() if f.name.startswith("keys.db")]
    assert not [f.name for f in vault if cid.encode() in f.read_bytes()]
    world.rt.close()
