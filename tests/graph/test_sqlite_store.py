"""SQLite-only properties of the store (the shared behaviour is in test_store_conformance)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pacte.graph.sqlite_store import SQLiteStore
from pacte.graph.store import Edge, Node, WriteBatch


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def _consents(store: SQLiteStore) -> None:
    store.write(WriteBatch(nodes=[Node("Customer", "c2", {}, owner="c2"),
                                  Node("Customer", "c1", {}, owner="c1"),
                                  Node("Purpose", "p", {})],
                           edges=[Edge("CONSENTED", "k2", "c2", "p", 1),
                                  Edge("CONSENTED", "k1", "c1", "p", 2)]))


def test_listed_sources_are_read_from_their_index_in_order(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db", create=True, listed_sources=("CONSENTED",))
    plan = store._db.execute("EXPLAIN QUERY PLAN " + store._listed["CONSENTED"],
                             ("p", "", 5)).fetchall()
    detail = " ".join(str(row[-1]) for row in plan)
    # A page costs what it returns: no scan of the purpose's edges, no sort.
    assert "edges_sources_CONSENTED" in detail and "TEMP B-TREE" not in detail
    store.close()


def test_the_store_opened_for_a_runtime_lists_consents_by_index(tmp_path: Path) -> None:
    """Which edge types are listed is the consent layer's word, not the store's."""
    from pacte.graph.consent import LISTED_SOURCES
    from pacte.graph.stores import open_store

    store = open_store(str(tmp_path / "g.db"), create=True)
    store.close()
    assert {f"edges_sources_{t}" for t in LISTED_SOURCES} <= _indexes(tmp_path / "g.db")
    bare = SQLiteStore(tmp_path / "bare.db", create=True)
    _consents(bare)
    assert bare.edge_sources("p", "CONSENTED") == ["c1", "c2"]  # unlisted: same answer
    bare.close()
    assert not any(i.startswith("edges_sources_") for i in _indexes(tmp_path / "bare.db"))


def test_a_file_made_before_the_sources_index_gets_it_on_opening(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    store = SQLiteStore(path, create=True)
    _consents(store)
    store.close()
    with sqlite3.connect(path) as db:  # as the version with one consent index left it
        db.execute("CREATE INDEX edges_consent_sources ON edges(dst, src)"
                   " WHERE type = 'CONSENTED'")
    store = SQLiteStore(path, listed_sources=("CONSENTED",))
    assert "edges_sources_CONSENTED" in _indexes(path)
    assert "edges_consent_sources" not in _indexes(path)
    assert store.edge_sources("p", "CONSENTED") == ["c1", "c2"]
    assert store.edge_sources("p", "CONSENTED", after="c1") == ["c2"]
    store.close()


@pytest.mark.parametrize("type", ["consented", "X' OR 1=1 --", "", "A B"])
def test_a_listed_type_must_be_an_edge_type_name(tmp_path: Path, type: str) -> None:
    from pacte.errors import InputError

    with pytest.raises(InputError):
        SQLiteStore(tmp_path / "g.db", create=True, listed_sources=(type,))


def test_a_file_with_a_raced_event_id_opens_with_its_first_entry(tmp_path: Path) -> None:
    """Files written before the unique event index may hold two entries for one event id;
    opening keeps the first and builds the index, so the race cannot happen again."""
    from pacte.errors import Conflict
    from pacte.graph.store import EVENT_INDEX, IndexEntry, Node, WriteBatch

    path = tmp_path / "graph.db"
    store = SQLiteStore(path, create=True)
    store.write(WriteBatch(nodes=[Node("Interaction", i, {}, "c1") for i in ("i1", "i2")]))
    store.close()
    with sqlite3.connect(path) as db:  # as an older version left it
        db.execute("DROP INDEX blind_index_events")
        db.executemany("INSERT INTO blind_index VALUES (?, ?, ?)",
                       [(EVENT_INDEX, b"tok", "i2"), (EVENT_INDEX, b"tok", "i1")])
    store = SQLiteStore(path)
    try:
        assert store.lookup(EVENT_INDEX, b"tok") == ["i1"]
        assert set(store.get_nodes(["i1", "i2"])) == {"i1", "i2"}
        with pytest.raises(Conflict):
            store.write(WriteBatch(index=[IndexEntry(EVENT_INDEX, b"tok", "i2")]))
    finally:
        store.close()
