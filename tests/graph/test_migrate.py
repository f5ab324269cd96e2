"""Migration copies ciphertext as is, resumes after an interruption, and verifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacte.errors import IntegrityError, StorageError
from pacte.graph.migrate import checksum, migrate
from pacte.graph.sqlite_store import SQLiteStore
from pacte.graph.store import Store, WriteBatch
from pacte.runtime import Pacte
from tests.helpers import FakeClock


@pytest.fixture
def seeded(tmp_path: Path) -> Pacte:
    rt = Pacte.init(tmp_path / "data", now=FakeClock())
    rt.seed(40, seed=9)
    return rt


class Flaky:
    """A target store that fails after a number of writes, like a dropped connection."""

    def __init__(self, inner: Store, *, fail_after: int) -> None:
        self._inner = inner
        self._left = fail_after

    def write(self, batch: WriteBatch) -> None:
        if self._left == 0:
            raise StorageError("connection lost", retryable=True)
        self._left -= 1
        self._inner.write(batch)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_copy_is_exact_and_verified_both_ways(seeded: Pacte, store: Store, tmp_path: Path
                                              ) -> None:
    report = migrate(seeded._backend.store, store, batch=100)
    assert report.counts["nodes"] == sum(seeded._backend.store.count_nodes().values())
    assert store.count_nodes() == seeded._backend.store.count_nodes()
    assert store.count_edges() == seeded._backend.store.count_edges()
    assert checksum(store) == checksum(seeded._backend.store)
    back = SQLiteStore(tmp_path / "back.db", create=True)
    migrate(store, back, batch=100)
    assert checksum(back) == checksum(seeded._backend.store)
    seeded.close()


def test_an_interrupted_migration_resumes_without_rewriting(seeded: Pacte, tmp_path: Path
                                                           ) -> None:
    target = SQLiteStore(tmp_path / "copy.db", create=True)
    with pytest.raises(StorageError):
        migrate(seeded._backend.store, Flaky(target, fail_after=3), batch=100)  # type: ignore[arg-type]
    whole = sum(seeded._backend.store.count_nodes().values())
    assert 0 < sum(target.count_nodes().values()) < whole
    writes: list[int] = []
    counting = Flaky(target, fail_after=10**9)
    original = counting.write

    def counted(batch: WriteBatch) -> None:
        writes.append(len(batch.nodes) + len(batch.edges) + len(batch.index))
        original(batch)

    counting.write = counted  # type: ignore[method-assign]
    report = migrate(seeded._backend.store, counting, batch=100)  # type: ignore[arg-type]
    assert report.skipped["nodes"] == 300
    assert sum(writes) == sum(report.copied.values())
    assert checksum(target) == checksum(seeded._backend.store)
    seeded.close()


def test_a_tampered_copy_is_caught(seeded: Pacte, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    target = SQLiteStore(tmp_path / "copy.db", create=True)
    real_write = target.write

    def lossy(batch: WriteBatch) -> None:
        batch.edges = batch.edges[1:]  # drops one edge per batch
        real_write(batch)

    monkeypatch.setattr(target, "write", lossy)
    with pytest.raises(IntegrityError, match="migration check failed"):
        migrate(seeded._backend.store, target, batch=100)
    seeded.close()


def test_migrated_data_reads_back_through_the_session(seeded: Pacte, tmp_path: Path,
                                                      directory_store_uri: str | None
                                                      ) -> None:
    before = [v.fields for v in seeded.operator_session("service").customers(first=10).items]
    target = directory_store_uri or str(tmp_path / "copy.db")
    seeded.migrate(target, switch=True)
    data_dir = seeded.data_dir
    seeded.close()
    with Pacte.open(data_dir, now=FakeClock()) as rt:
        assert rt._backend.store.uri != str(data_dir / "graph.db")
        after = [v.fields for v in rt.operator_session("service").customers(first=10).items]
    assert after == before
