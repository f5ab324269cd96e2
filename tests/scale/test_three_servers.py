"""Part 3 of scale-out: three `pacte serve` processes with separate, empty working
directories against one real Neo4j. What one server does (a write, a withdrawal, an
erasure, a key rotation, a revocation) holds from the next request on every other;
nothing personal is stored in plaintext (G1, scanning what Neo4j holds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pacte.audit.shared_trail import CHAIN_SPAN, SharedTrail
from pacte.audit.shared_verify import verify_shared
from pacte.graph.neo4j_store import Neo4jStore
from tests.helpers import neo4j_properties, neo4j_text
from tests.scale.conftest import Shared
from tests.scale.servers import Server, start

pytestmark = pytest.mark.neo4j

UPSERT = "mutation($i: CustomerInput!) { upsertCustomer(input: $i) { id } }"
READ = "query($id: ID!) { customer(id: $id) { id name email phone } }"
GRANT = ('mutation($id: ID!) { grantConsent(customerId: $id, purpose: "marketing.email", '
         'source: "web") { status } }')
WITHDRAW = ('mutation($id: ID!) { withdrawConsent(customerId: $id, purpose: "marketing.email")'
            ' { status } }')
ERASE = "mutation($id: ID!) { eraseCustomer(customerId: $id) { subject } }"
USES = "query($id: ID!) { myDataUses(customerId: $id, first: 100) { edges { node { action } } } }"
TRAIL = ("query($id: ID!) { auditTrail(customerId: $id, first: 100) { edges { node { action "
         "seq } } } }")
VERIFY = "{ auditVerification { ok firstBad lines } }"


@pytest.fixture
def servers(shared: Shared) -> Iterator[list[Server]]:
    args = ["--store", shared.uri, "--policy", str(shared.policy_file),
            "--signing-key", str(shared.signing_key_file)]
    started: list[Server] = []
    try:
        for n in range(3):
            work = shared.outside / f"server-{n}"
            started.append(start(work, env=shared.env(), args=args))
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def app_key(shared: Shared) -> str:
    _, key = shared.world.rt.create_principal(
        name="shop", role="app", purposes=["service", "self_service", "marketing.email"])
    return key


def _visible(server: Server, key: str, purpose: str, cid: str) -> bool:
    return server.data(key, purpose, READ, {"id": cid})["customer"] is not None


def test_write_on_one_read_on_another_withdraw_and_erase_on_a_third(
        shared: Shared, servers: list[Server], app_key: str) -> None:
    s0, s1, s2 = servers
    person = {"name": "Quill Spanner", "email": "quill.spanner@example.com",
              "phone": "+15550199999"}
    cid = s0.data(app_key, "service", UPSERT, {"i": person})["upsertCustomer"]["id"]
    got = s1.data(app_key, "service", READ, {"id": cid})["customer"]
    assert {k: got[k] for k in person} == person
    s1.data(app_key, "self_service", GRANT, {"id": cid})
    assert all(_visible(s, app_key, "marketing.email", cid) for s in servers)

    s2.data(app_key, "self_service", WITHDRAW, {"id": cid})
    # From the next request on, on every server.
    assert not any(_visible(s, app_key, "marketing.email", cid) for s in servers)
    assert all(_visible(s, app_key, "service", cid) for s in servers)

    # A customer every server has read (their key is in every server's caches).
    old = shared.world.customers["granted"]
    assert all(_visible(s, app_key, "service", old) for s in servers)
    for victim in (cid, old):
        s2.data(app_key, "self_service", ERASE, {"id": victim})
        assert not any(_visible(s, app_key, "service", victim) for s in servers)
        # And re-creating them under the same id is refused on every server.
        for server in servers:
            r = server.graphql(app_key, "service", UPSERT, {"i": {"id": victim, "name": "X"}})
            assert "errors" in r.json() and not (r.json().get("data") or {}).get(
                "upsertCustomer")
    # No data key of theirs anywhere in Neo4j, and no node.
    rows = neo4j_properties(shared.uri)
    for victim in (cid, old):
        assert not [p for _, p in rows if p.get("customer_id") == victim or
                    p.get("owner") == victim or p.get("id") == victim]


def test_a_revoked_key_is_refused_by_every_server_from_the_next_request(
        shared: Shared, servers: list[Server]) -> None:
    rt = shared.world.rt
    principal, key = rt.create_principal(name="temp", role="app", purposes=["service"])
    cid = shared.world.customers["none"]
    assert all(_visible(s, key, "service", cid) for s in servers)
    rt.revoke_principal(principal.id)
    for server in servers:
        r = server.graphql(key, "service", READ, {"id": cid})
        assert r.status_code == 401, r.text


def test_a_key_rotation_on_one_server_holds_on_every_other(
        shared: Shared, servers: list[Server], app_key: str) -> None:
    rt = shared.world.rt
    cid = shared.world.customers["none"]
    before = [s.data(app_key, "service", READ, {"id": cid})["customer"] for s in servers]
    assert rt.rotate_keys() == 2
    for n, server in enumerate(servers):
        assert server.data(app_key, "service", READ, {"id": cid})["customer"] == before[n]
        made = server.data(app_key, "service", UPSERT, {"i": {
            "name": f"Rota Tion{n}", "email": f"rota.tion{n}@example.com"}})
        assert made["upsertCustomer"]["id"]
    # Every key, old ones re-wrapped and new ones made after, is under the new KEK.
    deks = [p for labels, p in neo4j_properties(shared.uri) if "PacteDek" in labels]
    assert {p["kek_version"] for p in deks} == {2}


def test_neo4j_holds_no_personal_value_in_plaintext(
        shared: Shared, servers: list[Server], app_key: str) -> None:
    written: list[str] = []
    for n, server in enumerate(servers):
        person = {"name": f"Plain Texter{n}", "email": f"plain.texter{n}@example.com",
                  "phone": f"+1555077{n:04}", "address": f"{n} Plaintext Road, Leakville"}
        cid = server.data(app_key, "service", UPSERT, {"i": person})["upsertCustomer"]["id"]
        servers[(n + 1) % 3].data(app_key, "service", READ, {"id": cid})
        written += person.values()
    for values in shared.world.plaintext.values():
        written += values.values()
    raw = neo4j_text(shared.uri)
    assert b"PacteDek" in raw and b"PacteNode" in raw  # the scan sees what is there
    for value in written:
        if len(value) >= 8:
            assert value.encode() not in raw, f"plaintext in Neo4j: {value[:3]}..."
    assert b"example.com" not in raw and b"Plaintext" not in raw


def test_the_scan_would_catch_plaintext(shared: Shared) -> None:
    from pacte.graph.store import Node, WriteBatch

    store = shared.world.rt._backend.store
    store.write(WriteBatch(nodes=[Node("Note", "n_1", {"x": "Leaky Value"})]))
    assert b"Leaky Value" in neo4j_text(shared.uri)


def test_a_server_killed_during_writes_loses_no_acknowledged_write(
        shared: Shared, servers: list[Server], app_key: str) -> None:
    import threading

    from pacte.crypto import SigningKey

    auditor = shared.world.keys["auditor"]
    s0, s1, _ = servers
    acknowledged: list[str] = []
    started = threading.Event()

    def write() -> None:
        n = 0
        while True:
            try:
                r = s0.graphql(app_key, "service", UPSERT, {"i": {
                    "name": f"Kill Nine{n}", "email": f"kill.nine{n}@example.com"}})
            except Exception:
                return  # the server is gone
            if r.status_code != 200 or "errors" in r.json():
                return
            acknowledged.append(r.json()["data"]["upsertCustomer"]["id"])
            n += 1
            if n == 10:
                started.set()

    writer = threading.Thread(target=write)
    writer.start()
    started.wait(timeout=120)
    s0.kill()  # kill -9, while the writer keeps sending
    writer.join()
    assert len(acknowledged) >= 10
    # Every write it acknowledged is there for another server...
    for cid in acknowledged:
        assert s1.data(app_key, "service", READ, {"id": cid})["customer"] is not None
    # ...and the shared trail verifies, holding a record of each (the killed server
    # left no audit.db: its entries are in Neo4j, with every other server's).
    assert not (s0.work_dir / "audit.db").exists()
    key = SigningKey.load(shared.signing_key_file)
    store = shared.world.rt._backend.store
    assert isinstance(store, Neo4jStore)
    report = verify_shared(store, public_key=key.public_key)
    assert report.ok and report.chains >= 2, report.lines()  # s0 and s1 (s2 wrote nothing)
    trail = SharedTrail.open(store, signer=key)
    for cid in acknowledged:
        ref = shared.world.rt._backend.subject_ref(cid)
        assert [e for e in trail.entries(subject=ref, limit=10)
                if e.record["outcome"] == "ok"], cid
    # Through a surviving server too, as an auditor asks it.
    verified = s1.data(auditor, "legal", VERIFY)["auditVerification"]
    assert verified["ok"] and verified["firstBad"] is None, verified["lines"]


def test_the_three_servers_write_one_trail_that_verifies(
        shared: Shared, servers: list[Server], app_key: str) -> None:
    auditor = shared.world.keys["auditor"]
    made = []
    for n, server in enumerate(servers):
        made.append(server.data(app_key, "service", UPSERT, {"i": {
            "name": f"Tri Trail{n}", "email": f"tri.trail{n}@example.com"}})[
            "upsertCustomer"]["id"])
    # Each customer read on the next server, and their own uses asked on a third.
    for n, cid in enumerate(made):
        servers[(n + 1) % 3].data(app_key, "service", READ, {"id": cid})
        uses = servers[(n + 2) % 3].data(app_key, "self_service", USES, {"id": cid})
        actions = [e["node"]["action"] for e in uses["myDataUses"]["edges"]]
        assert "customer.write" in actions and "customer.read" in actions, actions
    # Entries of all three in one trail, one chain per server, that verifies.
    entries = servers[0].data(auditor, "legal", TRAIL, {"id": made[2]})["auditTrail"]["edges"]
    assert {e["node"]["action"] for e in entries} >= {"customer.write", "customer.read"}
    chains = {e["node"]["seq"] // CHAIN_SPAN for e in entries}  # seq = chain ord * span + n
    # Written on server 2, read on server 0, its uses asked on server 1.
    assert len(chains) == 3, chains
    for server in servers:
        verified = server.data(auditor, "legal", VERIFY)["auditVerification"]
        assert verified["ok"], verified["lines"]
    for server in servers:
        server.stop()  # each signs its chain's final checkpoint
    store = shared.world.rt._backend.store
    assert isinstance(store, Neo4jStore)
    report = verify_shared(store, public_key=shared.world.rt.signing_public_key)
    assert report.ok and report.chains == 3 and report.unsigned == 0, report.lines()
