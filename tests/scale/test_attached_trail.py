"""An attached server's audit trail is the one every server shares in Neo4j: what the
sessions of two attached runtimes record is one trail that verifies, and every reader
of the trail (pages, traces, a customer's own uses, the access report, checkpoints,
privacy budgets, `pacte audit verify --store`) sees the uses made on every server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pacte.audit.shared_trail import SharedTrail
from pacte.audit.shared_verify import verify_shared
from pacte.errors import PrivacyBudgetSpent
from pacte.runtime import Pacte
from tests.scale.conftest import Shared
from tests.scale.servers import ROOT

pytestmark = pytest.mark.neo4j


@pytest.fixture
def attached(shared: Shared) -> Iterator[list[Pacte]]:
    rts = [Pacte.attach(shared.uri, policy_file=shared.policy_file,
                        signing_key_file=shared.signing_key_file,
                        work_dir=shared.outside / f"server-{n}", now=shared.world.clock)
           for n in range(2)]
    try:
        yield rts
    finally:
        for rt in rts:
            rt.close()


def test_two_attached_servers_write_one_trail_that_every_reader_sees(
        shared: Shared, attached: list[Pacte]) -> None:
    a, b = attached
    world = shared.world
    app, auditor = world.principals["app"], world.principals["auditor"]
    assert isinstance(a._backend.audit, SharedTrail)
    assert not (shared.outside / "server-0" / "audit.db").exists()
    cid = a.session(app, "service").upsert_customer(name="Tess Trail",
                                                    email="tess.trail@example.com").id
    assert b.session(app, "service").customer(cid) is not None
    a.session(app, "service").customer(cid)
    # A customer's own uses, asked on b, list what a did, merged by time.
    uses = b.session(app, "self_service").my_data_uses(cid, first=50)
    actions = [u.record["action"] for u in uses]
    assert actions.count("customer.read") >= 2 and "customer.write" in actions
    chains = {u.chain for u in uses}
    assert {a._backend.audit.chain, b._backend.audit.chain} <= chains
    # The auditor's view pages through every chain with the entries' own cursors.
    s = b.session(auditor, "legal")
    first = s.audit_trail(customer_id=cid, first=2)
    rest = s.audit_trail(customer_id=cid, first=50, after=first[-1].seq)
    whole = s.audit_trail(customer_id=cid, first=50)

    def uses(entries: list[Any]) -> list[int]:  # leaving out the auditor's own reads
        return [e.seq for e in entries if e.record["action"] != "audit.read"]

    assert len(first) == 2 and uses(first + rest) == uses(whole)
    assert [e.record["action"] for e in s.audit_trail(first=50, action="customer.write",
                                                     customer_id=cid)] == ["customer.write"]
    traced = a.session(auditor, "legal").trace(cid)
    assert len(traced) >= 4
    report = a.session(auditor, "legal").access_report(cid)
    assert {u["action"] for u in report["uses"]} >= {"customer.write", "customer.read"}
    assert report["checkpoint"] is None and report["proofs"].startswith("none")
    # One trail, verified against the pinned key, from either server.
    cp = a.checkpoint()
    assert cp.verify(world.rt.signing_public_key)
    verified = b.session(auditor, "legal").audit_verification()
    assert verified.ok and verified.first_bad is None, verified.lines()
    assert verified.size >= len(traced)


def test_a_privacy_budget_is_one_budget_across_servers(
        shared: Shared, attached: list[Pacte]) -> None:
    a, b = attached
    who = shared.world.principals["analyst"]
    assert a.session(who, "analytics").record_release(
        "analytics.dp_release", details={}, epsilon=0.6) == pytest.approx(0.4)
    with pytest.raises(PrivacyBudgetSpent):
        b.session(who, "analytics").record_release("analytics.dp_release", details={},
                                                   epsilon=0.6)
    assert b.session(who, "analytics").privacy_spent() == pytest.approx(0.6)


def test_the_command_line_verifies_the_shared_trail(
        shared: Shared, attached: list[Pacte], tmp_path: Path) -> None:
    a, _ = attached
    a.session(shared.world.principals["app"], "service").customer(
        shared.world.customers["none"])
    a.close()
    args = [sys.executable, "-m", "pacte", "audit", "verify", "--store", shared.uri,
            "--signing-key", str(shared.signing_key_file), "--data", str(tmp_path / "none")]
    done = subprocess.run(args, cwd=ROOT, env=shared.env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VALID" in done.stdout
    # Tampered, it says so (exit 1) and names the entry.
    chain = a._backend.audit.chain
    store = shared.world.rt._backend.store
    store.run_write("test", lambda tx: tx.run(  # type: ignore[attr-defined]
        "MATCH (e:PacteAuditEntry {key: $k}) SET e.body = replace(e.body, 'service', 'legal')",
        k=f"{chain}/1").consume())
    done = subprocess.run(args, cwd=ROOT, env=shared.env(), capture_output=True, text=True)
    assert done.returncode == 1 and f"{chain}/1" in done.stdout, done.stdout + done.stderr
    assert not verify_shared(store, public_key=shared.world.rt.signing_public_key).ok


def test_a_console_link_made_on_one_server_opens_on_every_other(
        shared: Shared, attached: list[Pacte]) -> None:
    from pacte.console.links import LINK_PATH, open_link, transparency_link
    from pacte.console.seal import Sealer

    a, b = attached
    world = shared.world
    cid = world.customers["none"]
    path = transparency_link(a, a.session(world.principals["app"], "self_service"), cid)
    token = path.removeprefix(LINK_PATH)
    for rt in (b, world.rt):  # another attached server, and the directory's own
        link = open_link(rt, Sealer.for_runtime(rt), token)
        assert link.customer_id == cid and link.principal.id == world.principals["app"].id
    # The sign-in cookie and the CSRF digest too; and nothing of the key on disk.
    cookie = Sealer.for_runtime(b).seal("pacte.console/session", {"p": "pr_x"},
                                        expires=world.clock() + timedelta(hours=1))
    assert Sealer.for_runtime(a).open("pacte.console/session", cookie, now=world.clock())
    assert Sealer.for_runtime(a).mac("x", "y") == Sealer.for_runtime(b).mac("x", "y")
    assert not list(shared.outside.rglob("console.key"))


class Crash(BaseException):
    """A server dying: nothing after it runs, no handler catches it."""


def _attach(shared: Shared, name: str) -> Pacte:
    return Pacte.attach(shared.uri, policy_file=shared.policy_file,
                        signing_key_file=shared.signing_key_file,
                        work_dir=shared.outside / name, now=shared.world.clock)


def _erasures(rt: Pacte, cid: str) -> list[str]:
    ref = rt._backend.subject_ref(cid)
    return [str(e.record["outcome"]) for e in rt._backend.audit.entries(
        subject=ref, action="customer.erase", limit=100)]


def test_a_server_starting_during_another_ones_erasure_leaves_it_to_it(
        shared: Shared, attached: list[Pacte]) -> None:
    from pacte.graph.store import WriteBatch

    a, _ = attached
    cid = shared.world.customers["none"]
    store = a._backend.store
    with a._backend.shredding(cid):  # under way on server a: keys gone, nodes not yet
        assert a._backend.vault.erasures_pending() == [cid]
        _attach(shared, "late").close()  # another server starts meanwhile
        store.write(WriteBatch(delete_nodes=store.owned_by(cid)))
    assert not a._backend.vault.erasures_pending()
    assert _erasures(a, cid) == []  # no spurious "resumed" (the session records its own)


def test_an_erasure_whose_server_died_is_resumed_once_by_the_next_server(
        shared: Shared, attached: list[Pacte]) -> None:
    a, b = attached
    cid = shared.world.customers["granted"]
    with pytest.raises(Crash), a._backend.shredding(cid):
        raise Crash  # the server dies with the keys destroyed, the nodes still there
    assert a._backend.vault.erasures_pending() == [cid]
    late = _attach(shared, "late")
    try:
        assert _erasures(b, cid) == ["resumed"]
        assert not late._backend.store.owned_by(cid)
    finally:
        late.close()
    _attach(shared, "later").close()
    assert _erasures(b, cid) == ["resumed"]


def test_an_erasure_receipt_is_found_among_other_servers_erasures(
        shared: Shared, attached: list[Pacte]) -> None:
    # The receipt check read the first erasure after entry seq - 1, which on the shared
    # trail is the merged (time) order: another server's erasure in between was taken
    # for the receipt's, and a valid receipt was rejected.
    from pacte.console.auditor import erasure_on_record

    a, b = attached
    world = shared.world
    x, y = world.customers["none"], world.customers["granted"]
    world.clock.advance(seconds=1)
    a.session(world.principals["app"], "service").customer(x)  # a's chain, before
    world.clock.advance(seconds=1)
    other = b.operator_session("self_service").erase(y)
    world.clock.advance(seconds=1)
    receipt = a.operator_session("self_service").erase(x)
    auditor = b.session(world.principals["auditor"], "legal")
    assert erasure_on_record(auditor, receipt["audit_seq"], receipt["subject"])
    assert erasure_on_record(auditor, other["audit_seq"], other["subject"])
    assert not erasure_on_record(auditor, receipt["audit_seq"], other["subject"])


@pytest.mark.parametrize("attack", ["edit", "delete", "rewrite_consistently"])
def test_a_tampered_trail_is_named_by_the_verification_of_every_server(
        shared: Shared, attached: list[Pacte], attack: str) -> None:
    # G7 on shared infrastructure: the trail's nodes edited in Neo4j, as an attacker
    # with write access to the database would; every server's verification (the one
    # the API, the console and /metrics show) fails and names the first bad entry.
    from tests.scale.conftest import rewrite_consistently

    a, b = attached
    world = shared.world
    app, auditor = world.principals["app"], world.principals["auditor"]
    for cid in list(world.customers.values())[:8]:
        a.session(app, "service").customer(cid)  # entries 1..8 of a's chain
    a.checkpoint()  # signs 9 entries
    a.session(app, "service").customer(world.customers["none"])
    assert b.session(auditor, "legal").audit_verification().ok
    trail = a._backend.audit
    assert isinstance(trail, SharedTrail) and trail.chain is not None
    chain, store = trail.chain, shared.world.rt._backend.store
    if attack == "edit":
        store.run_write("test", lambda tx: tx.run(  # type: ignore[attr-defined]
            "MATCH (e:PacteAuditEntry {key: $k}) SET e.body = replace(e.body, 'service', "
            "'legal')", k=f"{chain}/4").consume())
        bad = 4
    elif attack == "delete":
        store.run_write("test", lambda tx: tx.run(  # type: ignore[attr-defined]
            "MATCH (e:PacteAuditEntry {key: $k}) DETACH DELETE e", k=f"{chain}/4").consume())
        bad = 4
    else:
        # Every link recomputed: the checkpoint at 9 no longer matches; what it covers
        # past the previous one (the opening, at 1) is named.
        rewrite_consistently(store, chain, 4)
        bad = 1
    for rt in (a, b):
        report = rt.session(auditor, "legal").audit_verification()
        assert not report.ok, report.lines()
        assert report.first_bad == trail.seq_of(chain, bad), report.lines()
        assert report.first_bad_entry == f"{chain}/{bad}"
        assert f"{chain}/{bad}" in "\n".join(report.lines())
    assert "pacte_audit_verify_ok 0" in b.metrics.text()
