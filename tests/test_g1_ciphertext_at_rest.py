"""G1 and G8 end to end: scan the raw bytes of every file in the data directory, and
with a Neo4j store everything the database holds.

After seeding 1,000 customers through the real path (generate -> session.ingest ->
codec -> store), no seeded email, phone, name, address, birth date or summary may
appear in any file (database, WAL, shared memory, key vault, audit trail, key files)
nor in Neo4j: its graph, its key vault and its shared audit trail. In every mode
(tests/conftest.py MODES): a data directory on SQLite or on Neo4j, and servers
attached to shared infrastructure, whose files are only their working directories.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pacte.errors import DecryptionError, KeyVaultError
from pacte.graph.store import Node
from pacte.runtime import Pacte
from pacte.seed import generate
from tests.conftest import ATTACHED, backend_uri
from tests.helpers import FakeClock, attached, init_runtime, neo4j_text, open_runtime

N = 1000
SEED = 11


def _raw(data_dir: Path) -> bytes:
    """Every byte of every file in the directory, WAL and journals included."""
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    return b"\x00".join(p.read_bytes() for p in files)


def _stored(root: Path, store_uri: str | None) -> bytes:
    """Everything stored: the files under `root` (the data directory, and the working
    directories of attached servers), and what the Neo4j database holds."""
    return _raw(root) + (b"" if store_uri is None else b"\x00" + neo4j_text(store_uri))


def _personal_values(clock: FakeClock) -> Iterator[tuple[str, str]]:
    for batch in generate(N, seed=SEED, now=clock()):
        for node in batch.nodes:
            if node.kind == "Customer":
                for f in ("name", "email", "phone", "address", "birth_date"):
                    yield f, str(node.props[f])
            elif node.kind == "Interaction" and node.props.get("summary"):
                yield "summary", str(node.props["summary"])
            elif node.kind == "Device":
                for f in ("location", "telemetry"):
                    if node.props.get(f):
                        yield f, str(node.props[f])


Seeded = tuple[Pacte, FakeClock, Callable[[], bytes]]


# A Neo4j data directory keeps in Neo4j what an attached server does (the graph, the
# wrapped keys), and its trail in audit.db as on SQLite: the 1,000 customers are scanned
# at the two ends, where everything is in files and where everything is in Neo4j.
@pytest.fixture(scope="module", params=["sqlite", ATTACHED])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Seeded]:
    """The runtime, its clock, and what reads every byte it has stored."""
    clock = FakeClock()
    root = tmp_path_factory.mktemp("g1")
    uri = backend_uri(request)
    rt = init_runtime(root / "data", store_uri=uri, now=clock)
    rt.seed(N, seed=SEED)
    rt.operator_session("service").customers(first=100)  # reads, audited too
    yield rt, clock, lambda: _stored(root, uri)
    rt.close()


def test_no_personal_value_in_any_file(seeded: Seeded) -> None:
    rt, clock, stored = seeded
    raw = stored()
    if attached(rt):  # the scan saw the trail and the keys in Neo4j
        assert b"PacteAuditEntry" in raw and b"PacteDek" in raw and b"PacteNode" in raw
    # Every seeded email is on the reserved domain, so one search covers all of them,
    # in every encoding a store might use.
    for needle in ("@example.com", "example.com"):
        assert needle.encode() not in raw
        assert needle.encode("utf-16-le") not in raw
    values = list(_personal_values(clock))
    by_field: dict[str, list[str]] = {}
    for f, v in values:
        by_field.setdefault(f, []).append(v)
    rng = random.Random(1)
    checked = 0
    for f, vs in by_field.items():
        # Long enough to be meaningful: short values such as "1990-" would match by chance.
        sample = [v for v in rng.sample(vs, min(len(vs), 150)) if len(v) >= 8]
        for v in sample:
            assert v.encode("utf-8") not in raw, f"plaintext {f} found in the data directory"
            checked += 1
    assert checked > 700
    assert set(by_field) >= {"name", "email", "phone", "address", "birth_date", "summary"}


def test_the_scan_would_catch_plaintext(tmp_path: Path, store_uri: str | None) -> None:
    """The same scan finds a value that did reach the store unencrypted."""
    rt = init_runtime(tmp_path / "data", store_uri=store_uri, now=FakeClock())
    from pacte.graph.store import WriteBatch

    rt._backend.store.write(WriteBatch(nodes=[Node("Product", "p1",
                                                 {"name": "Leaky Widget 9000"})]))
    rt._backend.audit_append([{"action": "test", "note": "Leaky Audit 9000"}])
    rt.close()
    raw = _stored(tmp_path, store_uri)
    assert b"Leaky Widget 9000" in raw and b"Leaky Audit 9000" in raw


def test_a_ciphertext_moved_to_another_customer_or_field_fails(
        seeded: Seeded) -> None:
    rt, _, _ = seeded
    page = rt._backend.store.scan_nodes("Customer", limit=2)
    a, b = page[0], page[1]
    assert isinstance(a.props["email"], bytes)
    swapped = Node("Customer", b.id, {**b.props, "email": a.props["email"]}, owner=b.id)
    with pytest.raises(DecryptionError) as err:
        rt._backend.codec.open(swapped, ["email"])
    assert str(err.value) == "decryption failed"
    moved = Node("Customer", a.id, {**a.props, "name": a.props["email"]}, owner=a.id)
    with pytest.raises(DecryptionError):
        rt._backend.codec.open(moved, ["name"])
    assert "@example.com" in str(rt._backend.codec.open(a, ["email"])["email"])


def test_erasure_shreds_keys_and_leaves_others_readable(tmp_path: Path,
                                                        store_uri: str | None) -> None:
    clock = FakeClock()
    rt = init_runtime(tmp_path / "data", store_uri=store_uri, now=clock)
    rt.seed(30, seed=2)
    service = rt.operator_session("service")
    views = service.customers(first=30).items
    victim, other = views[0], views[1]
    victim_node = rt._backend.store.get_nodes([victim.id])[victim.id]
    victim_email = str(victim.fields["email"])
    receipt = rt.operator_session("self_service").erase(victim.id)
    assert receipt["destroyed"]["Customer"] == 1
    assert victim.id not in str(receipt) and victim_email not in str(receipt)
    # Nodes, edges and blind-index entries are gone...
    assert rt._backend.store.owned_by(victim.id) == []
    assert rt._backend.store.edges(victim.id, "HAD") == []
    assert rt.operator_session("service").customer_by_email(victim_email) is None
    from pacte.graph.codec import index_name

    token = rt._backend.codec.token("Customer", "email", victim_email)
    assert rt._backend.store.lookup(index_name("Customer", "email"), token) == []
    # ...and a backup holding the old ciphertext can no longer be read.
    with pytest.raises((DecryptionError, KeyVaultError)):
        rt._backend.codec.open(victim_node, ["email"])
    assert rt.operator_session("service").customer(other.id) is not None
    assert rt._backend.vault.is_destroyed(victim.id)
    rt.close()
    # Not even on disk: the plaintext is nowhere in the files, nor in Neo4j, where
    # no data key of theirs is left (its rows name the customer).
    raw = _stored(tmp_path, store_uri)
    assert victim_email.encode() not in raw
    if store_uri is not None:
        assert victim.id.encode() not in raw and other.id.encode() in raw


def test_erasure_in_another_process_holds_on_the_next_request(tmp_path: Path,
                                                              store_uri: str | None) -> None:
    """G5: a second handle (as another process, or server, would be) forgets its
    cached keys."""
    clock = FakeClock()
    rt = init_runtime(tmp_path / "data", store_uri=store_uri, now=clock)
    rt.seed(10, seed=4)
    cid = rt.operator_session("service").customers(first=1).items[0].id
    node = rt._backend.store.get_nodes([cid])[cid]
    assert rt._backend.codec.open(node, ["email"])  # warms this handle's key caches
    other = open_runtime(tmp_path / "data", store_uri=store_uri, now=clock)
    other.operator_session("self_service").erase(cid)
    other.close()
    rt.operator_session("service")  # the next request on the first handle
    with pytest.raises((DecryptionError, KeyVaultError)):
        rt._backend.codec.open(node, ["email"])
    rt.close()
