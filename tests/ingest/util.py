"""Helpers for the ingestion tests: a graph digest that ignores ciphertext nonces, and
writes held back while later batches are looked up."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from pacte.graph.model import NODE_KINDS
from pacte.graph.store import WriteBatch
from pacte.ingest.loader import Loader
from pacte.runtime import Pacte


def graph_digest(rt: Pacte) -> tuple[dict[str, int], str]:
    """Counts per kind and one order-independent digest of every node (personal fields
    decrypted, so two runs with fresh nonces compare equal), edge and index entry."""
    items: list[str] = []
    for nodes in rt._backend.store.iter_nodes():
        for n in nodes:
            names = [f.name for f in NODE_KINDS[n.kind].fields] if n.kind in NODE_KINDS else []
            props = rt._backend.codec.open(n, names) if n.owner else dict(n.props)
            items.append(json.dumps(["N", n.kind, n.id, n.owner, props], sort_keys=True,
                                    default=str))
    for edges in rt._backend.store.iter_edges():
        items.extend(json.dumps(["E", e.type, e.id, e.src, e.dst, e.at, dict(e.props)],
                                sort_keys=True, default=str) for e in edges)
    for entries in rt._backend.store.iter_index():
        items.extend(f"I {i.name} {i.token.hex()} {i.node_id}" for i in entries)
    counts = {**rt._backend.store.count_nodes(), **rt._backend.store.count_edges()}
    return counts, hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()


def hold_writes(rt: Pacte, monkeypatch: pytest.MonkeyPatch,
                lookups_before: Callable[[int], int]) -> None:
    """Ingest writes batch k while it looks batch k+1 up: the n-th write (from 1) is
    held until `lookups_before(n)` batches have been looked up, so those lookups cannot
    see it in the store and must take it from what the loader knows is in flight."""
    looked_up = threading.Condition()
    lookups: list[int] = []
    known = Loader._known

    def counted(self: Loader, records: list[Any]) -> Any:
        found = known(self, records)
        with looked_up:
            lookups.append(len(records))
            looked_up.notify_all()
        return found

    monkeypatch.setattr(Loader, "_known", counted)
    store = rt._backend.store
    write = store.write
    writes: list[WriteBatch] = []

    def held(batch: WriteBatch) -> None:
        writes.append(batch)
        wanted = lookups_before(len(writes))
        with looked_up:
            assert looked_up.wait_for(lambda: len(lookups) >= wanted, timeout=60)
        write(batch)

    monkeypatch.setattr(store, "write", held)
