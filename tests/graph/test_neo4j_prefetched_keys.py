"""On Neo4j, a customer-360's prefetch reads the customer's wrapped data key with it, so
a key this process has not cached costs no second round trip; a key read before a
destruction that this process has since seen is never used (G5)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.errors import KeyVaultError
from pacte.graph.neo4j_store import Neo4jStore
from pacte.graph.store import Hop
from pacte.runtime import Pacte
from tests.helpers import World, build_world

pytestmark = pytest.mark.neo4j

_HOPS = (Hop("CONSENTED"),)


@pytest.fixture
def world(tmp_path: Path, neo4j_uri: str) -> Iterator[World]:
    from tests.neo4j_fixture import clean_database

    clean_database(neo4j_uri)
    w = build_world(tmp_path, store_uri=neo4j_uri)
    yield w
    w.rt.close()


def _other(world: World) -> Pacte:
    """Another process on the same data: its key cache is empty."""
    return Pacte.open(world.rt.data_dir, now=world.clock)


def test_a_prefetch_brings_the_data_key_and_saves_its_round_trip(world: World) -> None:
    cid = world.customers["granted"]
    with _other(world) as other:
        store, vault = other._backend.store, other._backend.vault
        assert isinstance(store, Neo4jStore)
        expected = _other_key(world, cid)
        with store.read_scope(around=cid, hops=_HOPS):
            before = store.round_trips
            key = vault.data_key(cid)
            assert store.round_trips == before  # answered from the prefetch
        assert key._material == expected
        # A customer the scope did not read is asked of the server, as before.
        with store.read_scope(around=cid, hops=_HOPS):
            before = store.round_trips
            vault.data_key(world.customers["none"])
            assert store.round_trips == before + 1


def _other_key(world: World, cid: str) -> bytes:
    with _other(world) as fresh:
        return fresh._backend.vault.data_key(cid)._material


def test_a_key_read_before_a_destruction_seen_since_is_not_used(world: World) -> None:
    cid = world.customers["granted"]
    with _other(world) as other:
        store, vault = other._backend.store, other._backend.vault
        assert isinstance(store, Neo4jStore)
        with store.read_scope(around=cid, hops=_HOPS):
            # The prefetch holds the key; then another process erases the customer and
            # this one notices (its next request's sync empties its caches).
            world.rt._backend.vault.destroy(cid)
            vault.sync()
            with pytest.raises(KeyVaultError):
                vault.data_key(cid)
        with pytest.raises(KeyVaultError):  # and nothing stale was cached
            vault.data_key(cid)
