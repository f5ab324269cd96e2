"""Part 1 of scale-out: beside a Neo4j store the wrapped data keys live in Neo4j, so a
server with no data directory (given the store, the KEK, the signing key and the
policy) serves the same customers; erasure leaves no data key anywhere."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from pacte.crypto import FileKeyProvider, KeyVault
from pacte.crypto.neo4j_vault import Neo4jVaultRows
from pacte.errors import ConfigError, DecryptionError, KeyVaultError
from pacte.graph.neo4j_store import Neo4jStore
from pacte.runtime import Pacte
from tests.scale.conftest import Shared

pytestmark = pytest.mark.neo4j


def _attach(shared: Shared, name: str, **options: object) -> Pacte:
    return Pacte.attach(shared.uri, policy_file=shared.policy_file,
                        signing_key_file=shared.signing_key_file,
                        work_dir=shared.outside / name, now=shared.world.clock,
                        **options)  # type: ignore[arg-type]


def _all_properties(uri: str) -> list[tuple[list[str], dict[str, object]]]:
    import neo4j

    with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        records, _, _ = driver.execute_query("MATCH (n) RETURN labels(n), properties(n)")
    return [(list(r[0]), dict(r[1])) for r in records]


def test_the_keys_live_in_neo4j_and_another_server_reads_the_customers(shared: Shared
                                                                       ) -> None:
    world = shared.world
    assert not (world.rt.data_dir / "keys.db").exists()
    labels = {label for labels, _ in _all_properties(shared.uri) for label in labels}
    assert {"PacteVault", "PacteDek"} <= labels
    with _attach(shared, "second") as other:
        # Nothing of the first machine's directory is read: not its keys, not its files.
        assert other.data_dir == shared.outside / "second"
        service = other.operator_session("service")
        for cid, values in world.plaintext.items():
            view = service.customer(cid)
            assert view is not None and view.fields["email"] == values["email"]
        # Both servers derive the same blind-index tokens and subject references.
        assert other._backend.subject_ref(world.customers["none"]) == world.rt._backend.subject_ref(
            world.customers["none"])
        email = world.plaintext[world.customers["granted"]]["email"]
        found = service.customer_by_email(email)
        assert found is not None and found.id == world.customers["granted"]


def test_neo4j_holds_wrapped_keys_only_never_the_kek(shared: Shared) -> None:
    secret = base64.b64decode(shared.master_key)
    rows = _all_properties(shared.uri)
    for _, props in rows:
        for value in props.values():
            blob = value if isinstance(value, bytes | bytearray) else str(value).encode()
            assert secret not in blob and shared.master_key.encode() not in blob
    deks = [p for labels, p in rows if "PacteDek" in labels]
    assert len(deks) == len(shared.world.customers)
    # A wrapped key opens with the KEK alone: without it, the database gives nothing.
    store = Neo4jStore(shared.uri)
    try:
        wrong = base64.b64encode(bytes(32)).decode()
        from pacte.crypto import EnvKeyProvider

        with pytest.raises(KeyVaultError, match="master key does not match"):
            KeyVault.over(Neo4jVaultRows(store), EnvKeyProvider(wrong))
    finally:
        store.close()


def test_an_erasure_on_one_server_holds_on_the_other_from_its_next_request(
        shared: Shared) -> None:
    world = shared.world
    cid = world.customers["granted"]
    with _attach(shared, "second") as other:
        # The other server has the customer's key in its caches.
        sealed = other._backend.cipher.encrypt(cid, cid, "email", b"zelda@example.com")
        assert other.operator_session("service").customer(cid) is not None
        world.rt.operator_session("self_service").erase(cid)
        # Its next request: nothing of theirs, and their ciphertext opens no more.
        assert other.operator_session("service").customer(cid) is None
        with pytest.raises(DecryptionError):
            other._backend.cipher.decrypt(cid, cid, "email", sealed)
        assert other._backend.vault.is_destroyed(cid)
        with pytest.raises(KeyVaultError, match="cannot be re-created"):
            other._backend.vault.data_keys([cid], create=True)
    # No data key of theirs is left in Neo4j (the tombstone names a pseudonym only).
    rows = _all_properties(shared.uri)
    assert not [p for labels, p in rows if "PacteDek" in labels and p["customer_id"] == cid]
    assert not [p for _, p in rows if cid in str(p.values())]
    assert not [p for labels, p in rows if "PacteErasing" in labels]


def test_a_key_rotation_on_one_server_holds_on_the_other(shared: Shared) -> None:
    world = shared.world
    with _attach(shared, "second") as other:
        before = other.operator_session("service").customer(world.customers["none"])
        version = world.rt.rotate_keys()
        assert version == 2
        service = other.operator_session("service")
        view = service.customer(world.customers["none"])
        assert before is not None and view is not None
        assert view.fields["email"] == before.fields["email"]
        # A customer created on the other server after the rotation: under the new KEK.
        made = service.upsert_customer(name="Ada Newcomer", email="ada.new@example.com")
        assert other._backend.vault.kek_version == 2
        rows = _all_properties(shared.uri)
        assert {p["kek_version"] for labels, p in rows if "PacteDek" in labels} == {2}
        assert world.rt.operator_session("service").customer(made.id) is not None


def test_a_key_file_works_but_rotation_asks_for_the_master_key(
        shared: Shared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Any server can take the KEK from a key file; a rotation would write the new
    # version to this machine's file alone, so it is refused.
    key_file = tmp_path / "master.key"
    FileKeyProvider.create(key_file)
    monkeypatch.delenv("PACTE_MASTER_KEY")
    with pytest.raises(KeyVaultError, match="master key does not match"):
        _attach(shared, "keyfile", master_key_file=key_file)
    with pytest.raises(ConfigError, match="PACTE_MASTER_KEY"):
        _attach(shared, "nokey")


def test_rotation_with_a_key_file_is_refused_when_the_keys_are_shared(
        tmp_path: Path, neo4j_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.neo4j_fixture import clean_database

    monkeypatch.delenv("PACTE_MASTER_KEY", raising=False)
    clean_database(neo4j_uri)
    with Pacte.init(tmp_path / "data", store_uri=neo4j_uri) as rt:
        key_file = tmp_path / "data" / "master.key"
        cid = rt.operator_session("service").upsert_customer(
            name="Bo Keyfile", email="bo.keyfile@example.com").id
        with Pacte.attach(neo4j_uri, policy_file=tmp_path / "data" / "policy.toml",
                          signing_key_file=tmp_path / "data" / "signing.key",
                          master_key_file=key_file, work_dir=tmp_path / "w") as other:
            view = other.operator_session("service").customer(cid)
            assert view is not None and view.fields["name"] == "Bo Keyfile"
        with pytest.raises(ConfigError, match="PACTE_MASTER_KEY"):
            rt.rotate_keys()
        assert rt._backend.vault.kek_version == 1


def test_attach_needs_a_neo4j_store(shared: Shared, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="only a Neo4j store"):
        Pacte.attach(str(tmp_path / "graph.db"), policy_file=shared.policy_file,
                     signing_key_file=shared.signing_key_file, work_dir=tmp_path / "w")


def test_init_refuses_a_database_that_holds_a_vault(shared: Shared, tmp_path: Path) -> None:
    with pytest.raises(KeyVaultError, match="already holds"):
        Pacte.init(tmp_path / "again", store_uri=shared.uri)
    # The failed init left nothing behind, and the first directory is intact.
    assert not (tmp_path / "again" / "policy.toml").exists()
    assert shared.world.rt.operator_session("service").customer(
        shared.world.customers["none"]) is not None
    shutil.rmtree(tmp_path / "again", ignore_errors=True)
