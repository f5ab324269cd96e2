"""Part 5 of scale-out: `pacte migrate --to neo4j://... --switch` moves the graph, the
wrapped data keys (never the KEK) and the audit trail, verifies them, and a run killed
mid-way is finished by running it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pacte.audit import AuditTrail
from pacte.audit.shared_verify import verify_shared
from pacte.errors import KeyVaultError
from pacte.graph.neo4j_store import Neo4jStore
from pacte.runtime import Pacte, signing_public_key
from pacte.trails import NeoTrail
from tests.helpers import World, build_world
from tests.neo4j_fixture import clean_database

pytestmark = pytest.mark.neo4j

ROOT = Path(__file__).resolve().parents[2]


class Crash(BaseException):
    """The process dying: nothing after it runs."""


def _world(tmp_path: Path, uri: str, *, filler: int) -> tuple[World, str, int]:
    """A SQLite data directory with an erased customer and `filler` more audit entries;
    the erased customer's id and the trail's size."""
    clean_database(uri)
    world = build_world(tmp_path)
    b = world.rt._backend
    erased = world.customers["withdrawn"]
    world.rt.operator_session("self_service").erase(erased)
    b.audit_append([b.system_record("test.filler", extra={"i": i}) for i in range(filler)])
    return world, erased, b.audit.size()


def _query(uri: str, query: str) -> Any:
    import neo4j

    with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        records, _, _ = driver.execute_query(query)  # type: ignore[arg-type]
    return records[0][0]


def _assert_moved(world: World, erased: str, uri: str, tmp_path: Path, *, trail: int) -> None:
    data = world.rt.data_dir
    # The keys left the directory, and the KEK never went to Neo4j.
    assert not [p.name for p in data.iterdir() if p.name.startswith("keys.db")]
    assert (data / "store.uri").read_text().strip() == uri
    key_file = (data / "master.key").read_bytes()
    props = _query(uri, "MATCH (n) RETURN collect(properties(n))")
    assert not [p for p in props for v in p.values() if isinstance(v, bytes) and v in key_file]
    # The trail verifies there under the same signing key, each entry copied once.
    store = Neo4jStore(uri)
    try:
        public = signing_public_key(data)
        import base64

        report = verify_shared(store, public_key=base64.b64decode(public))
        assert report.ok, report.lines()
    finally:
        store.close()
    bodies = _query(uri, "MATCH (e:PacteAuditEntry) WHERE e.body CONTAINS '\"migrated\"' "
                         "RETURN collect(e.body)")
    seqs = [json.loads(b)["migrated"]["seq"] for b in bodies]
    # audit.db is kept aside, no longer written: every entry of it, this run's last ones
    # (`migrate.done`) included, is in the shared trail once, which the directory now
    # writes like every server.
    assert not (data / "audit.db").exists()
    with AuditTrail.open(data / "audit.db.migrated", signer=None, read_only=True) as old:
        size = old.size()
    assert size > trail and sorted(seqs) == list(range(size))
    # Every customer decrypts through a server attached with no data directory of its own.
    with Pacte.attach(uri, policy_file=data / "policy.toml",
                      signing_key_file=data / "signing.key", work_dir=tmp_path / "server",
                      master_key_file=data / "master.key", now=world.clock) as other:
        service = other.operator_session("service")
        for cid, values in world.plaintext.items():
            view = service.customer(cid)
            if cid == erased:
                assert view is None and other._backend.vault.is_destroyed(cid)
                with pytest.raises(KeyVaultError):
                    other._backend.vault.data_key(cid)
            else:
                assert view is not None and view.fields["email"] == values["email"]
    # And the data directory itself now reads its keys from Neo4j.
    with Pacte.open(data, now=world.clock) as again:
        assert again._backend.vault.path is None
        assert isinstance(again._backend.trail, NeoTrail)  # one more writer of the shared one
        assert len(again.operator_session("service").customers(first=100).items) == (
            len(world.plaintext) - 1)


def test_a_migration_crashed_after_a_trail_batch_is_finished_without_copying_twice(
        tmp_path: Path, neo4j_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    world, erased, _ = _world(tmp_path, neo4j_uri, filler=450)
    set_meta = Neo4jStore.set_meta

    def dying(self: Neo4jStore, key: str, value: str) -> None:
        # After the batch holding entries 100-199 committed, before it is noted.
        if key == "migrate.trail" and json.loads(value)["done"] >= 200:
            raise Crash
        set_meta(self, key, value)

    monkeypatch.setattr(Neo4jStore, "set_meta", dying)
    with pytest.raises(Crash):
        world.rt.migrate(neo4j_uri, switch=True, batch=100)
    monkeypatch.undo()
    world.rt.close()
    assert (world.rt.data_dir / "keys.db").exists()  # not switched

    with Pacte.open(world.rt.data_dir, now=world.clock) as rt:
        report = rt.migrate(neo4j_uri, switch=True, batch=100)
    assert report.keys == len(world.plaintext) - 1
    assert report.decrypted == len(world.plaintext) - 1
    assert report.trail is not None and report.trail > 450
    _assert_moved(world, erased, neo4j_uri, tmp_path, trail=report.trail)


def test_pacte_migrate_killed_mid_way_is_finished_by_running_it_again(
        tmp_path: Path, neo4j_uri: str) -> None:
    world, erased, _ = _world(tmp_path, neo4j_uri, filler=3000)
    world.rt.close()
    data = world.rt.data_dir
    cmd = [sys.executable, "-m", "pacte", "migrate", "--data", str(data), "--to", neo4j_uri,
           "--switch", "--batch", "50"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
                            stdout=subprocess.DEVNULL)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.strip().startswith("trail:"):
            proc.send_signal(signal.SIGKILL)  # kill -9, mid-way through the trail
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = Neo4jStore(neo4j_uri)
    try:
        state = json.loads(store.get_meta("migrate.trail") or "{}")
    finally:
        store.close()
    assert state["chain"] and 0 < state["done"] < 3000  # killed mid-way indeed
    assert (data / "keys.db").exists()

    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "migrated and verified" in done.stdout
    with Pacte.open(data, now=world.clock) as rt:
        size = [e.record for e in rt._backend.audit.entries(action="migrate.done", limit=5)]
        assert size and size[-1]["keys"] == len(world.plaintext) - 1
        assert size[-1]["decrypted"] == len(world.plaintext) - 1
        trail = int(size[-1]["trail"])
    _assert_moved(world, erased, neo4j_uri, tmp_path, trail=trail)


def test_migrated_entries_keep_their_own_times_even_when_the_source_clock_went_back(
        tmp_path: Path, neo4j_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A batch took its last entry's time for all its entries; and a run resumed after a
    # crash looked for the unnoted batch after the noted one in time order, so a batch
    # whose times went back was copied twice and the migration failed for good.
    from datetime import timedelta

    from pacte.audit import AuditTrail
    from pacte.crypto import SigningKey
    from pacte.errors import IntegrityError
    from pacte.graph.migrate_trail import copy_trail
    from tests.helpers import FakeClock

    clean_database(neo4j_uri)
    clock = FakeClock()
    start = clock.now
    signer = SigningKey.generate()
    source = AuditTrail.open(tmp_path / "audit.db", signer=signer, now=clock)
    for i in range(9):
        clock.now = start + timedelta(seconds=100 - 10 * i)  # the clock going back
        source.append({"action": "test.filler", "i": i})
    set_meta = Neo4jStore.set_meta

    def dying(self: Neo4jStore, key: str, value: str) -> None:
        if key == "migrate.trail" and json.loads(value)["done"] >= 6:
            raise Crash  # after the second batch committed, before it is noted
        set_meta(self, key, value)

    store = Neo4jStore(neo4j_uri)
    try:
        monkeypatch.setattr(Neo4jStore, "set_meta", dying)
        with pytest.raises(Crash):
            copy_trail(source, store, signer=signer, batch=3)
        monkeypatch.undo()
        try:
            copied = copy_trail(source, store, signer=signer, batch=3)
        except IntegrityError as exc:
            pytest.fail(f"the resumed migration failed: {exc}")
        assert copied.entries == 9 and copied.copied == 3
        rows = store.run_read("test", "MATCH (e:PacteAuditEntry) WHERE e.body CONTAINS "
                                      "'\"migrated\"' RETURN e.time, e.body")
        migrated = {json.loads(body)["migrated"]["seq"]: (time, json.loads(body)["migrated"])
                    for time, body in rows}
        assert sorted(migrated) == list(range(9))
        assert all(time == m["time"] for time, m in migrated.values())
    finally:
        store.close()
        source.close()
