"""Ingest writes batch k while it reads and looks up batch k+1 (pacte.ingest.runner):
what that overlap must never lose. Each test fails on a defect a review found."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pacte.errors import InputError, StorageError
from pacte.graph.store import WriteBatch
from pacte.runtime import Pacte
from tests.conftest import BACKENDS, backend_uri
from tests.helpers import FakeClock
from tests.ingest.util import hold_writes


@pytest.fixture(params=BACKENDS)
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pacte]:
    runtime = Pacte.init(tmp_path / "data", store_uri=backend_uri(request), now=FakeClock())
    yield runtime
    runtime.close()


def _customers(n: int) -> list[dict[str, Any]]:
    return [{"type": "customer", "customer_id": f"C{i}", "email": f"p{i}@example.com",
             "name": f"Person {i}"} for i in range(n)]


def _file(path: Path, rows: list[dict[str, Any]], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail, encoding="utf-8")
    return path


def _failing_write(rt: Pacte, monkeypatch: pytest.MonkeyPatch, *, nth: int) -> None:
    """The `nth` write of customers fails, as a full disk would."""
    store = rt._backend.store
    write = store.write
    count = [0]

    def failing(batch: WriteBatch) -> None:
        if any(n.kind == "Customer" for n in batch.nodes):
            count[0] += 1
            if count[0] == nth:
                raise StorageError("disk full")
        write(batch)

    monkeypatch.setattr(store, "write", failing)


def test_a_failed_write_is_ingested_again_by_the_rerun(
        rt: Pacte, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Four rows in batches of two: the end of the file (a batch with nothing to write)
    # comes while the second batch is in flight. Its checkpoint must wait for that
    # write, which fails: the rerun then ingests the two rows, not skips them.
    path = _file(tmp_path / "crm.jsonl", _customers(4))
    _failing_write(rt, monkeypatch, nth=2)
    with pytest.raises(StorageError):
        rt.ingest([path], batch_rows=2)
    monkeypatch.undo()
    rt.ingest([path], batch_rows=2)
    assert rt._backend.store.count_nodes()["Customer"] == 4


def test_a_failed_write_is_the_error_even_when_the_next_batch_fails(
        rt: Pacte, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Batch 1 is being written when reading batch 2 stops on too many bad rows: the
    # caller must learn that batch 1 is not in, and the trail must say so (G6).
    path = _file(tmp_path / "crm.jsonl", _customers(2), "{not json\n{not json either\n")
    _failing_write(rt, monkeypatch, nth=1)
    with pytest.raises(StorageError) as failed:
        rt.ingest([path], batch_rows=2, max_errors=1)
    assert isinstance(failed.value.__context__, InputError)  # what stopped the reading
    monkeypatch.undo()
    assert rt._backend.store.count_nodes().get("Customer", 0) == 0
    entries = rt._backend.audit_entries(subject=None, after_seq=None, limit=1000)
    ingests = [e.record for e in entries if e.record.get("action") == "ingest"]
    assert ingests and ingests[-1].get("outcome") not in (None, "ok"), ingests[-1]


def test_a_batch_with_nothing_to_write_keeps_the_one_in_flight_in_view(
        rt: Pacte, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Batch 1 (a new customer) is held until batch 3 has been looked up; batch 2 (the
    # same row again) writes nothing. Batch 3's event names the customer by email: it
    # must find them in what batch 1 is writing, not create a second customer.
    hold_writes(rt, monkeypatch, lambda n: 3 if n == 1 else 0)
    event = {"type": "event", "event_id": "e1", "email": "p0@example.com", "kind": "visit",
             "channel": "web", "occurred_at": 1767225600}
    path = _file(tmp_path / "mixed.jsonl", [*_customers(1), *_customers(1), event])
    report = rt.ingest([path], batch_rows=1)
    assert report.rejected == 0
    assert rt._backend.store.count_nodes()["Customer"] == 1
