"""Neo4j batch writes: CREATE for the nodes found absent, and the replay with MERGE when
another writer created one of them meanwhile (see pacte.graph.neo4j_write)."""

from __future__ import annotations

import pytest

from pacte.errors import Conflict, StorageError
from pacte.graph import neo4j_write
from pacte.graph.neo4j_store import Neo4jStore
from pacte.graph.store import EVENT_INDEX, Edge, IndexEntry, Node, WriteBatch

pytestmark = pytest.mark.neo4j

# What the existence read answers when every node was created by another transaction
# after it looked.
_SAW_NOTHING = "UNWIND $ids AS nid RETURN collect(null)[..0]"


def test_a_node_created_meanwhile_by_another_writer_is_updated(
        neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    neo4j_store.write(WriteBatch(nodes=[Node("Customer", "c_1", {"v": 1}, owner="c_1")]))
    monkeypatch.setattr(neo4j_write, "_EXISTING_NODES", _SAW_NOTHING)
    neo4j_store.write(WriteBatch(nodes=[Node("Customer", "c_1", {"v": 2}, owner="c_1"),
                                        Node("Customer", "c_2", {"v": 3})],
                                 edges=[Edge("REFERRED", "r_1", "c_1", "c_2", 5)]))
    nodes = neo4j_store.get_nodes(["c_1", "c_2"])
    assert nodes["c_1"].props == {"v": 2} and nodes["c_2"].props == {"v": 3}
    assert [e.id for e in neo4j_store.edges("c_1", "REFERRED")] == ["r_1"]
    assert neo4j_store.count_nodes() == {"Customer": 2}


def test_an_edge_moved_to_a_new_node_is_moved(neo4j_store: Neo4jStore) -> None:
    """Only edges between nodes that existed are looked for; an upserted edge whose new
    end is a new node existed elsewhere, and is still moved, not doubled."""
    neo4j_store.write(WriteBatch(nodes=[Node("Customer", "c_1"), Node("Customer", "c_2")],
                                 edges=[Edge("REFERRED", "r_1", "c_1", "c_2", 5)]))
    neo4j_store.write(WriteBatch(nodes=[Node("Customer", "c_3")],
                                 edges=[Edge("REFERRED", "r_1", "c_1", "c_3", 6)]))
    assert [(e.dst, e.at) for e in neo4j_store.edges("c_1", "REFERRED")] == [("c_3", 6)]
    assert neo4j_store.count_edges() == {"REFERRED": 1}


def test_bulk_batch_of_new_nodes_and_edges_round_trips(neo4j_store: Neo4jStore) -> None:
    nodes = [Node("Customer", f"c_{i}", {"n": i}, owner=f"c_{i}") for i in range(50)]
    edges = [Edge("REFERRED", f"r_{i}", f"c_{i}", f"c_{i + 1}", i) for i in range(49)]
    neo4j_store.write(WriteBatch(nodes=nodes, edges=edges))
    neo4j_store.write(WriteBatch(nodes=nodes[:10], edges=edges[:10]))  # the same again
    assert neo4j_store.count_nodes() == {"Customer": 50}
    assert neo4j_store.count_edges() == {"REFERRED": 49}
    assert neo4j_store.get_nodes(["c_7"])["c_7"].props == {"n": 7}


def test_a_real_conflict_still_fails_after_the_replay(
        neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    token = b"\x01" * 32
    neo4j_store.write(WriteBatch(nodes=[Node("Interaction", "i_1")],
                                 index=[IndexEntry(EVENT_INDEX, token, "i_1")]))
    monkeypatch.setattr(neo4j_write, "_EXISTING_NODES", _SAW_NOTHING)
    with pytest.raises(Conflict):
        neo4j_store.write(WriteBatch(nodes=[Node("Interaction", "i_2")],
                                     index=[IndexEntry(EVENT_INDEX, token, "i_2")]))
    assert neo4j_store.count_nodes() == {"Interaction": 1}


def test_index_entries_of_new_nodes_are_created_once(neo4j_store: Neo4jStore) -> None:
    # Entries of a node new in the batch are CREATEd: one named twice in a batch (the
    # same row twice in a file) is written once, and one of an existing node is MERGEd.
    token = b"\x02" * 16
    twice = IndexEntry("Ingest.row", token, "c_1")
    neo4j_store.write(WriteBatch(nodes=[Node("Customer", "c_1")], index=[twice, twice]))
    neo4j_store.write(WriteBatch(nodes=[Node("Customer", "c_1"), Node("Customer", "c_2")],
                                 index=[twice, IndexEntry("Ingest.row", token, "c_2")]))
    assert neo4j_store.lookup("Ingest.row", token) == ["c_1", "c_2"]
    assert sum(len(e) for e in neo4j_store.iter_index()) == 2


def test_an_entry_left_without_its_node_is_merged_on_replay(
        neo4j_store: Neo4jStore) -> None:
    # An entry whose node is gone (never written so by pacte, but a store may hold one)
    # makes the CREATE of the node's entry fail; the replay with MERGE writes the batch.
    token = b"\x03" * 16
    neo4j_store.write(WriteBatch(nodes=[Node("Customer", "c_1")],
                                 index=[IndexEntry("Ingest.row", token, "c_9")]))
    neo4j_store.write(WriteBatch(nodes=[Node("Customer", "c_9", {"v": 1})],
                                 index=[IndexEntry("Ingest.row", token, "c_9")]))
    assert neo4j_store.get_nodes(["c_9"])["c_9"].props == {"v": 1}
    assert neo4j_store.lookup("Ingest.row", token) == ["c_9"]


# A batch's puts go out in chunks of CHUNK_ROWS rows, each sent before the one before it
# has run; with 2-row chunks these batches span several statements per kind of row.

def test_a_batch_sent_in_chunks_is_written_whole(neo4j_store: Neo4jStore,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(neo4j_write, "CHUNK_ROWS", 2)
    nodes = [Node("Customer", f"c_{i}", {"n": i}, owner=f"c_{i}") for i in range(7)]
    # Edges of later chunks end at nodes of earlier node chunks, and the reverse.
    edges = [Edge("REFERRED", f"r_{i}", f"c_{6 - i}", f"c_{i}", i) for i in range(6)]
    index = [IndexEntry("Ingest.row", bytes([i]) * 16, f"c_{i}") for i in range(5)]
    neo4j_store.write(WriteBatch(nodes=nodes, edges=edges, index=index))
    assert neo4j_store.count_nodes() == {"Customer": 7}
    assert neo4j_store.count_edges() == {"REFERRED": 6}
    assert neo4j_store.get_nodes(["c_5"])["c_5"].props == {"n": 5}
    assert neo4j_store.lookup("Ingest.row", bytes([4]) * 16) == ["c_4"]
    # Updated and new nodes, each in chunks, in one batch.
    neo4j_store.write(WriteBatch(nodes=[Node("Customer", f"c_{i}", {"n": -i})
                                        for i in range(3, 10)]))
    assert neo4j_store.count_nodes() == {"Customer": 10}
    assert neo4j_store.get_nodes(["c_4"])["c_4"].props == {"n": -4}


def test_a_missing_endpoint_in_the_last_chunk_undoes_the_whole_batch(
        neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(neo4j_write, "CHUNK_ROWS", 2)
    nodes = [Node("Customer", f"c_{i}") for i in range(5)]
    edges = [Edge("REFERRED", f"r_{i}", f"c_{i}", f"c_{i + 1}", i) for i in range(4)]
    edges.append(Edge("REFERRED", "r_x", "c_0", "c_missing", 9))
    with pytest.raises(StorageError):
        neo4j_store.write(WriteBatch(nodes=nodes, edges=edges))
    assert neo4j_store.count_nodes() == {} and neo4j_store.count_edges() == {}


def test_a_conflict_in_a_later_chunk_undoes_the_whole_batch(
        neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(neo4j_write, "CHUNK_ROWS", 2)
    token = b"\x04" * 32
    neo4j_store.write(WriteBatch(nodes=[Node("Interaction", "i_0")],
                                 index=[IndexEntry(EVENT_INDEX, token, "i_0")]))
    nodes = [Node("Interaction", f"i_{i}") for i in range(1, 6)]
    # The fifth entry, in the third chunk, records an event id already recorded.
    index = [IndexEntry(EVENT_INDEX, bytes([i]) * 32, f"i_{i}") for i in range(1, 5)]
    with pytest.raises(Conflict):
        neo4j_store.write(WriteBatch(nodes=nodes,
                                     index=[*index, IndexEntry(EVENT_INDEX, token, "i_5")]))
    assert neo4j_store.count_nodes() == {"Interaction": 1}
    assert sum(len(e) for e in neo4j_store.iter_index()) == 1


def test_a_value_that_cannot_be_encoded_in_a_later_chunk_undoes_the_whole_batch(
        neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rows are encoded chunk by chunk inside the transaction: a failure there rolls back
    # the chunks already sent.
    monkeypatch.setattr(neo4j_write, "CHUNK_ROWS", 2)
    nodes = [Node("Customer", f"c_{i}") for i in range(4)]
    nodes.append(Node("Customer", "c_bad", {"v": {1, 2}}))  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        neo4j_store.write(WriteBatch(nodes=nodes))
    assert neo4j_store.count_nodes() == {}


def test_the_driver_does_not_format_the_rows_of_a_statement(
        neo4j_store: Neo4jStore, caplog: pytest.LogCaptureFixture) -> None:
    # The driver formats every RUN's parameters for its debug log, on or off; a batch's
    # rows are shown by their number, not formatted row by row (see neo4j_write._Rows).
    caplog.set_level("DEBUG", logger="neo4j")
    nodes = [Node("Customer", f"c_{i}", {"v": f"value-{i}"}, owner=f"c_{i}") for i in range(3)]
    neo4j_store.write(WriteBatch(nodes=nodes))
    runs = [r.getMessage() for r in caplog.records if "C: RUN" in r.getMessage()]
    assert any("<3 rows>" in line for line in runs)
    assert not any("value-1" in line for line in runs)
    assert neo4j_store.get_nodes(["c_1"])["c_1"].props == {"v": "value-1"}
