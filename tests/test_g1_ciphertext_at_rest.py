"""G1 and G8 end to end: scan the raw bytes of every file in the data directory.

After seeding 1,000 customers through the real path (generate -> session.ingest ->
codec -> SQLite), no seeded email, phone, name, address, birth date or summary may
appear in any file: database, WAL, shared memory, key vault, audit trail, key files.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.errors import DecryptionError, KeyVaultError
from pacte.graph.store import Node
from pacte.runtime import Pacte
from pacte.seed import generate
from tests.helpers import FakeClock

N = 1000
SEED = 11


def _raw(data_dir: Path) -> bytes:
    """Every byte of every file in the directory, WAL and journals included."""
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    return b"\x00".join(p.read_bytes() for p in files)


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


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pacte, FakeClock]]:
    clock = FakeClock()
    rt = Pacte.init(tmp_path_factory.mktemp("g1") / "data", now=clock)
    rt.seed(N, seed=SEED)
    yield rt, clock
    rt.close()


def test_no_personal_value_in_any_file(seeded: tuple[Pacte, FakeClock]) -> None:
    rt, clock = seeded
    raw = _raw(rt.data_dir)
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


def test_the_scan_would_catch_plaintext(tmp_path: Path) -> None:
    """The same scan finds a value that did reach the store unencrypted."""
    rt = Pacte.init(tmp_path / "data", now=FakeClock())
    from pacte.graph.store import WriteBatch

    rt._backend.store.write(WriteBatch(nodes=[Node("Product", "p1",
                                                 {"name": "Leaky Widget 9000"})]))
    rt.close()
    assert b"Leaky Widget 9000" in _raw(tmp_path / "data")


def test_a_ciphertext_moved_to_another_customer_or_field_fails(
        seeded: tuple[Pacte, FakeClock]) -> None:
    rt, _ = seeded
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


def test_erasure_shreds_keys_and_leaves_others_readable(tmp_path: Path) -> None:
    clock = FakeClock()
    rt = Pacte.init(tmp_path / "data", now=clock)
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
    rt.close()
    # Not even on disk: the wrapped key and the plaintext are nowhere in the files.
    assert victim_email.encode() not in _raw(tmp_path / "data")


def test_erasure_in_another_process_holds_on_the_next_request(tmp_path: Path) -> None:
    """G5: a second handle (as another process would be) forgets its cached keys."""
    clock = FakeClock()
    rt = Pacte.init(tmp_path / "data", now=clock)
    rt.seed(10, seed=4)
    cid = rt.operator_session("service").customers(first=1).items[0].id
    node = rt._backend.store.get_nodes([cid])[cid]
    assert rt._backend.codec.open(node, ["email"])  # warms this handle's key caches
    other = Pacte.open(tmp_path / "data", now=clock)
    other.operator_session("self_service").erase(cid)
    other.close()
    rt.operator_session("service")  # the next request on the first handle
    with pytest.raises((DecryptionError, KeyVaultError)):
        rt._backend.codec.open(node, ["email"])
    rt.close()
