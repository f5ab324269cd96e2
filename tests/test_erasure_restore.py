"""An erasure survives the restore of an older backup of the store or of the vault
(issue #18 part 3): the erasure log, kept apart, is applied again on open."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from pacte.errors import IntegrityError, KeyVaultError
from pacte.graph.sqlite_store import SQLiteStore
from pacte.runtime import Pacte
from tests.helpers import World, build_world


def _copy(files: tuple[str, ...], source: Path, target: Path) -> None:
    """Copy database files with their logs: what a file-level backup or restore does."""
    target.mkdir(exist_ok=True)
    for name in files:
        for suffix in ("-wal", "-shm"):
            (target / f"{name}{suffix}").unlink(missing_ok=True)
        for suffix in ("", "-wal", "-shm"):
            if (source / f"{name}{suffix}").exists():
                shutil.copy2(source / f"{name}{suffix}", target / f"{name}{suffix}")


def _reapplied(rt: Pacte) -> list[dict[str, Any]]:
    """The trail's `customer.erase` entries re-applied by an open."""
    return [e.record for e in rt._backend.audit.entries(action="customer.erase", limit=50)
            if e.record["outcome"] == "reapplied"]


def _assert_erased(rt: Pacte, world: World, cid: str) -> None:
    """Unreadable and absent: no node, no key, a tombstone; the others all readable."""
    service = rt.operator_session("service")
    assert service.customer(cid) is None
    assert service.customer_by_email(world.plaintext[cid]["email"]) is None
    assert rt._backend.store.owned_by(cid) == []
    with pytest.raises(KeyVaultError):
        rt._backend.vault.data_key(cid)
    assert rt._backend.vault.is_destroyed(cid)
    ids = [c.id for c in service.customers(first=100).items]
    assert sorted(ids) == sorted(c for c in world.customers.values() if c != cid)
    for other in ids:
        view = service.customer(other)
        assert view is not None and view.fields["email"] == world.plaintext[other]["email"]


@pytest.mark.parametrize("restored", [("graph.db", "keys.db"), ("graph.db",), ("keys.db",)],
                         ids=["both", "graph", "keys"])
def test_an_erasure_survives_the_restore_of_an_older_backup(tmp_path: Path,
                                                            restored: tuple[str, ...]) -> None:
    world = build_world(tmp_path)
    data, cid = world.rt.data_dir, world.customers["granted"]
    world.rt.close()
    _copy(("graph.db", "keys.db"), data, tmp_path / "backup")

    with Pacte.open(data, now=world.clock) as rt:
        rt.operator_session("self_service").erase(cid)
        ref = rt._backend.subject_ref(cid)
    _copy(restored, tmp_path / "backup", data)
    # The restore is real: what was erased is back in the restored files.
    if "graph.db" in restored:
        raw = SQLiteStore(data / "graph.db")
        assert raw.owned_by(cid)
        raw.close()

    with Pacte.open(data, now=world.clock) as rt:
        _assert_erased(rt, world, cid)
        assert not rt._backend.vault.erasures_pending()
    # Re-applied once, on the first open, and on record under the pseudonym only.
    with Pacte.open(data, now=world.clock) as rt:
        again = _reapplied(rt)
        assert [r["subjects"] for r in again] == [[ref]]
        assert again[0]["deleted_nodes"] == (2 if "graph.db" in restored else 0)
        assert rt._backend.audit_verify().ok
        # Erasure is final again: the customer cannot be re-created from the restore.
        assert rt._backend.vault.is_destroyed(cid)


def test_the_log_holds_only_pseudonyms_and_is_authenticated(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    data, cid = world.rt.data_dir, world.customers["granted"]
    world.rt.operator_session("self_service").erase(cid)
    ref = world.rt._backend.subject_ref(cid)
    world.rt.close()
    log = data / "erasures.log"
    text = log.read_text()
    assert ref in text and cid not in text
    assert not [v for v in world.plaintext[cid].values() if v in text]
    assert (log.stat().st_mode & 0o777) == 0o600

    # A line torn by a crash mid-append is not an error, and the next append cuts it off.
    with log.open("a") as f:
        f.write('{"subject":"s_00')
    with Pacte.open(data, now=world.clock) as rt:
        rt.operator_session("self_service").erase(world.customers["none"])
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["mac"] for line in lines)

    # A line not written with the vault's key (planted to delete a customer) is refused.
    forged = {"subject": world.rt._backend.subject_ref(world.customers["withdrawn"]),
              "at": "0", "mac": "00" * 32}
    with log.open("a") as f:
        f.write(json.dumps(forged) + "\n")
    with pytest.raises(IntegrityError, match="line 3"):
        Pacte.open(data, now=world.clock)


def test_the_log_learns_the_erasures_made_before_it(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    data, cid = world.rt.data_dir, world.customers["granted"]
    world.rt.operator_session("self_service").erase(cid)
    ref = world.rt._backend.subject_ref(cid)
    world.rt.close()
    (data / "erasures.log").unlink()  # a directory made before the log existed
    Pacte.open(data, now=world.clock).close()
    assert ref in (data / "erasures.log").read_text()


# -- Neo4j: a restore of the database brings back the graph and the vault at once -----------


def _export(uri: str) -> tuple[list[Any], list[Any]]:
    import neo4j

    with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        nodes, _, _ = driver.execute_query(
            "MATCH (n) RETURN elementId(n), labels(n), properties(n)")
        rels, _, _ = driver.execute_query(
            "MATCH (a)-[r]->(b) RETURN elementId(a), elementId(b), type(r), properties(r)")
    return [list(r) for r in nodes], [list(r) for r in rels]


def _restore(uri: str, nodes: list[Any], rels: list[Any]) -> None:
    """The database as it was when exported (a restore of an older backup)."""
    import neo4j

    with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        driver.execute_query("MATCH (n) DETACH DELETE n")
        ids: dict[str, str] = {}
        for old, labels, props in nodes:
            label = ":".join(f"`{label}`" for label in labels)
            records, _, _ = driver.execute_query(
                f"CREATE (n:{label}) SET n = $props RETURN elementId(n)",  # type: ignore[arg-type]
                props=props)
            ids[old] = records[0][0]
        for src, dst, rtype, props in rels:
            driver.execute_query(
                f"MATCH (a), (b) WHERE elementId(a) = $a AND elementId(b) = $b "  # type: ignore[arg-type]
                f"CREATE (a)-[r:`{rtype}`]->(b) SET r = $props",
                a=ids[src], b=ids[dst], props=props)


def _count(uri: str, query: str, **params: Any) -> int:
    import neo4j

    with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        records, _, _ = driver.execute_query(query, params)  # type: ignore[arg-type]
    return int(records[0][0])


@pytest.mark.neo4j
def test_an_erasure_survives_the_restore_of_an_older_neo4j_backup(
        tmp_path: Path, neo4j_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.neo4j_fixture import clean_database

    monkeypatch.setenv("PACTE_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    clean_database(neo4j_uri)
    world = build_world(tmp_path, store_uri=neo4j_uri)
    data, cid = world.rt.data_dir, world.customers["granted"]
    backup = _export(neo4j_uri)
    assert _count(neo4j_uri, "MATCH (k:PacteDek {customer_id: $cid}) RETURN count(k)", cid=cid)

    world.rt.operator_session("self_service").erase(cid)
    ref = world.rt._backend.subject_ref(cid)
    world.rt.close()
    _restore(neo4j_uri, *backup)
    # The restore is real: the customer's wrapped key and nodes are back, no tombstone.
    assert _count(neo4j_uri, "MATCH (k:PacteDek {customer_id: $cid}) RETURN count(k)", cid=cid)
    assert _count(neo4j_uri, "MATCH (t:PacteTombstone) RETURN count(t)") == 0

    # An attached server given the log (on storage every server mounts) applies it.
    with Pacte.attach(neo4j_uri, policy_file=data / "policy.toml",
                      signing_key_file=data / "signing.key", work_dir=tmp_path / "server",
                      erasure_log=data / "erasures.log", now=world.clock) as rt:
        _assert_erased(rt, world, cid)
        again = _reapplied(rt)
        assert [r["subjects"] for r in again] == [[ref]]
        assert again[0]["deleted_nodes"] == 2
    assert not _count(neo4j_uri, "MATCH (k:PacteDek {customer_id: $cid}) RETURN count(k)",
                      cid=cid)
    # And the data directory's own open finds nothing left to do.
    with Pacte.open(data, now=world.clock) as rt:
        assert not _reapplied(rt)
        _assert_erased(rt, world, cid)


class Crash(BaseException):
    """The process dying: nothing after it runs."""


def test_an_erasure_dead_after_its_log_line_is_finished_on_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(tmp_path)
    rt, cid = world.rt, world.customers["granted"]

    def dying(*args: object, **kwargs: object) -> None:
        raise Crash

    monkeypatch.setattr(rt._backend.vault, "destroy", dying)
    with pytest.raises(Crash):
        rt.operator_session("self_service").erase(cid)
    monkeypatch.undo()
    assert rt._backend.vault.data_key(cid)  # the keys were not destroyed yet
    rt.close()
    with Pacte.open(rt.data_dir, now=world.clock) as again:
        _assert_erased(again, world, cid)
        assert [r["subjects"] for r in _reapplied(again)] == [[again._backend.subject_ref(cid)]]


def test_a_rewrite_that_fails_for_one_restored_customer_does_not_spare_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two erased customers come back with a restore; the files cannot be rewritten after
    # the first is erased again (readers keep them busy). The second must not stay
    # readable until some later open.
    from pacte.errors import StorageError

    world = build_world(tmp_path)
    data = world.rt.data_dir
    world.rt.close()
    _copy(("graph.db", "keys.db"), data, tmp_path / "backup")
    first, second = world.customers["granted"], world.customers["withdrawn"]
    with Pacte.open(data, now=world.clock) as rt:
        session = rt.operator_session("self_service")
        session.erase(first)
        session.erase(second)
    _copy(("graph.db", "keys.db"), tmp_path / "backup", data)

    scrub, calls = SQLiteStore.scrub, []

    def busy_once(store: SQLiteStore) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise StorageError("database is locked by readers", retryable=True)
        scrub(store)

    monkeypatch.setattr(SQLiteStore, "scrub", busy_once)
    with Pacte.open(data, now=world.clock) as rt:
        service = rt.operator_session("service")
        for cid in (first, second):
            assert service.customer(cid) is None
            assert rt._backend.store.owned_by(cid) == []
            with pytest.raises(KeyVaultError):
                rt._backend.vault.data_key(cid)
        assert len(_reapplied(rt)) == 2
