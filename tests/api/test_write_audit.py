"""G6 for writes: no write is committed without its audit entry (issue 14, item 1).

A write's record is appended before its commit (`Session._commit`), so a trail that
cannot record it stops the write; and text that could not be recorded (a lone
surrogate, which no pseudonym or canonical JSON can encode) is refused as BAD_INPUT
before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pacte.errors import InputError, PurposeNotGranted, StorageError
from pacte.graph.session import Session
from tests.api.conftest import Api, make_world
from tests.conftest import ATTACHED
from tests.helpers import World

LONE = "\ud800"
MUTATION = """
mutation($c: ID!, $bad: ID!) {
  withdrawConsent(customerId: $c, purpose: "marketing.email") { status }
  upsertCustomer(input: {id: $c, segment: "silver"}) { id }
  exportCustomer(customerId: $bad)
}
"""


def _post_raw(api: Api, world: World, variables: dict[str, Any]) -> httpx.Response:
    # json.dumps escapes the lone surrogate as \ud800, as an attacker's client would.
    body = json.dumps({"query": MUTATION, "variables": variables})
    return api.request("POST", content=body, headers={
        "Authorization": f"Bearer {world.keys['app']}", "X-Purpose": "self_service",
        "Content-Type": "application/json"})


def _actions_since(world: World, seq: int) -> list[str]:
    """Every action recorded after entry `seq`, operations of merged entries included."""
    out: list[str] = []
    for e in world.rt._backend.audit.entries(after_seq=seq, limit=1000):
        ops = e.record.get("operations")
        out.extend(op["action"] for op in ops) if ops else out.append(e.record["action"])
    return out


def _consent_status(world: World, cid: str) -> str:
    views = world.rt.operator_session("self_service").consents(cid)
    return next(v.status for v in views if v.purpose == "marketing.email")


def test_a_lone_surrogate_is_bad_input_and_nothing_is_written(
        fresh: tuple[World, Api]) -> None:
    """The issue's document: the HTTP layer refuses it whole, before any write."""
    world, api = fresh
    cid = world.customers["granted"]
    r = _post_raw(api, world, {"c": cid, "bad": "c_" + LONE})
    body = r.json()
    assert r.status_code == 400, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_INPUT"]
    assert _consent_status(world, cid) == "granted"
    assert world.rt._backend.audit_verify().ok


def test_writes_before_a_failing_field_are_committed_and_audited(
        fresh: tuple[World, Api]) -> None:
    """The same shape with an error the HTTP layer cannot see coming: the writes before
    it are committed, and each is in the trail."""
    world, api = fresh
    cid = world.customers["granted"]
    last = world.rt._backend.audit.size() - 1
    r = _post_raw(api, world, {"c": cid, "bad": "c_000000000000"})
    body = r.json()
    assert r.status_code == 404, body  # data is null: nothing answered
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert body["errors"][0]["path"] == ["exportCustomer"]
    assert _consent_status(world, cid) == "withdrawn"
    actions = _actions_since(world, last)
    assert "consent.withdraw" in actions and "customer.write" in actions
    assert world.rt._backend.audit_verify().ok


def test_a_trail_that_cannot_record_stops_the_write(fresh: tuple[World, Api],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    world, api = fresh
    cid = world.customers["granted"]

    def broken(records: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(world.rt._backend, "audit_append", broken)
    r = api.post('mutation($c: ID!) { withdrawConsent(customerId: $c, '
                 'purpose: "marketing.email") { status } }',
                 key=world.keys["app"], purpose="self_service", variables={"c": cid})
    assert r.status_code >= 500 and "data" not in r.json()
    monkeypatch.undo()
    # Nothing was committed: the customer still consents.
    assert _consent_status(world, cid) == "granted"


def test_python_writes_are_on_record_before_they_commit(fresh: tuple[World, Api],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    world, _ = fresh
    cid = world.customers["granted"]
    session = world.rt.operator_session("self_service")
    order: list[str] = []
    real_append, real_write = world.rt._backend.audit_append, world.rt._backend.store.write
    monkeypatch.setattr(world.rt._backend, "audit_append",
                        lambda records: order.append("audit") or real_append(records))
    monkeypatch.setattr(world.rt._backend.store, "write",
                        lambda batch: order.append("write") or real_write(batch))
    session.withdraw_consent(cid, "marketing.email")
    session.upsert_customer(id=cid, segment="silver")
    session.record_interaction(customer_id=cid, channel="web", kind="visit", event_id="ev-o")
    session.erase(world.customers["none"])
    assert order == ["audit", "write"] * 4


def test_a_write_that_fails_after_its_record_is_recorded_as_failed(
        fresh: tuple[World, Api], monkeypatch: pytest.MonkeyPatch) -> None:
    world, _ = fresh
    cid = world.customers["granted"]
    last = world.rt._backend.audit.size() - 1

    def refuse(batch: object) -> None:
        raise StorageError("write failed: disk I/O error")

    monkeypatch.setattr(world.rt._backend.store, "write", refuse)
    with pytest.raises(StorageError):
        world.rt.operator_session("self_service").withdraw_consent(cid, "marketing.email")
    records = [e.record for e in world.rt._backend.audit.entries(after_seq=last)]
    assert [(r["action"], r["outcome"]) for r in records] == [
        ("consent.withdraw", "ok"), ("consent.withdraw", "failed")]
    assert records[1]["reason"] == "STORAGE"


def _calls(world: World) -> list[tuple[str, Callable[[Session], object]]]:
    cid, product = world.customers["granted"], world.product
    bad_id = "c_" + LONE
    return [
        ("customer", lambda s: s.customer(bad_id)),
        ("customers_by_id", lambda s: s.customers_by_id([cid, bad_id])),
        ("customer_by_email", lambda s: s.customer_by_email(f"a{LONE}@example.com")),
        ("interactions", lambda s: s.interactions(bad_id)),
        ("products_of", lambda s: s.products_of(bad_id)),
        ("product", lambda s: s.product("p_" + LONE)),
        ("buyers", lambda s: s.buyers("p_" + LONE)),
        ("devices", lambda s: s.devices(bad_id)),
        ("consents", lambda s: s.consents(bad_id)),
        ("explain", lambda s: s.explain(customer_id=bad_id)),
        ("upsert id", lambda s: s.upsert_customer(id=bad_id, segment="x")),
        ("upsert name", lambda s: s.upsert_customer(id=cid, name=f"Zed{LONE}")),
        ("upsert email", lambda s: s.upsert_customer(id=cid, email=f"z{LONE}@example.com")),
        ("upsert address", lambda s: s.upsert_customer(id=cid, address=LONE)),
        ("event id", lambda s: s.record_interaction(
            customer_id=cid, channel="web", kind="visit", event_id=LONE)),
        ("summary", lambda s: s.record_interaction(
            customer_id=cid, channel="web", kind="visit", event_id="e1", summary=LONE)),
        ("product id", lambda s: s.record_interaction(
            customer_id=cid, channel="web", kind="visit", event_id="e2",
            product_id=product + LONE)),
        ("consent customer", lambda s: s.grant_consent(bad_id, "marketing", source="web")),
        ("consent source", lambda s: s.grant_consent(cid, "marketing", source=LONE)),
        ("consent proof", lambda s: s.grant_consent(cid, "marketing", source="web",
                                                    proof=LONE)),
        ("erase", lambda s: s.erase(bad_id)),
        ("export", lambda s: s.export(bad_id)),
        ("my data uses", lambda s: s.my_data_uses(bad_id)),
        ("audit trail", lambda s: s.audit_trail(customer_id=bad_id)),
        ("trace", lambda s: s.trace(bad_id)),
        ("access report", lambda s: s.access_report(bad_id)),
    ]


def test_a_lone_surrogate_in_any_python_argument_is_bad_input(
        fresh: tuple[World, Api]) -> None:
    world, _ = fresh
    service = "self_service"
    for name, call in _calls(world):
        snapshot = world.rt._backend.store.count_nodes(), world.rt._backend.store.count_edges()
        with pytest.raises(InputError):
            call(world.rt.session(world.principals["admin"], service))
        store = world.rt._backend.store
        assert (store.count_nodes(), store.count_edges()) == snapshot, name
    # A claimed purpose is written into the refusal's record: escaped, it still is.
    with pytest.raises(PurposeNotGranted):
        world.rt.session(world.principals["app"], "marketing" + LONE)
    assert world.rt._backend.audit_verify().ok


def test_a_write_refused_by_the_trail_is_not_recorded_later(
        fresh: tuple[World, Api], monkeypatch: pytest.MonkeyPatch) -> None:
    """A deferred session keeps its pending reads for the final flush, not the write."""
    world, _ = fresh
    cid = world.customers["granted"]
    session = world.rt.session(world.principals["app"], "self_service", defer_audit=True)
    session.customer(cid)
    real = world.rt._backend.audit_append

    def broken(records: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(world.rt._backend, "audit_append", broken)
    with pytest.raises(OSError):
        session.withdraw_consent(cid, "marketing.email")
    monkeypatch.setattr(world.rt._backend, "audit_append", real)
    last = world.rt._backend.audit.size() - 1
    session.flush()
    (entry,) = world.rt._backend.audit.entries(after_seq=last)
    assert entry.record["action"] == "customer.read"
    assert _consent_status(world, cid) == "granted"


GRAPHQL_CALLS = [
    ("service", "query($v: String!) { customerByEmail(email: $v) { id } }"),
    ("service", "query($v: ID!) { customer(id: $v) { id } }"),
    ("service", "query($v: ID!) { product(id: $v) { id } }"),
    ("service", 'mutation($v: String!) { upsertCustomer(input: {id: "%(cid)s", name: $v}) '
                "{ id } }"),
    ("service", 'mutation($v: String!) { recordInteraction(input: {customerId: "%(cid)s", '
                'channel: web, kind: visit, eventId: "e-1", summary: $v}) { id } }'),
    ("service", 'mutation($v: String!) { recordInteraction(input: {customerId: "%(cid)s", '
                'channel: web, kind: visit, eventId: $v}) { id } }'),
    ("self_service", 'mutation($v: String!) { grantConsent(customerId: "%(cid)s", '
                     'purpose: "marketing", source: $v) { status } }'),
    ("self_service", "mutation($v: ID!) { eraseCustomer(customerId: $v) { signature } }"),
    ("self_service", "query($v: ID!) { myDataUses(customerId: $v) { edges { cursor } } }"),
]


@pytest.mark.parametrize(("purpose", "query"), GRAPHQL_CALLS)
def test_a_lone_surrogate_in_a_graphql_argument_is_bad_input(
        fresh: tuple[World, Api], purpose: str, query: str) -> None:
    world, api = fresh
    before = world.rt._backend.store.count_nodes(), world.rt._backend.store.count_edges()
    body = json.dumps({"query": query % {"cid": world.customers["granted"]},
                       "variables": {"v": "x" + LONE}})
    r = api.request("POST", content=body, headers={
        "Authorization": f"Bearer {world.keys['app']}", "X-Purpose": purpose,
        "Content-Type": "application/json"})
    # Refused whole by the HTTP layer, before admission (the session refuses the same
    # text on its own in every argument: see the Python cases above).
    assert r.status_code == 400, r.text
    assert [e["extensions"]["code"] for e in r.json()["errors"]] == ["BAD_INPUT"]
    assert (world.rt._backend.store.count_nodes(), world.rt._backend.store.count_edges()) == before


def test_a_principal_is_on_record_before_it_is_stored(
        tmp_path: Path, store_uri: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Operator writes too (review of issue 14): a trail that cannot record stops the
    write, and a write that fails after its record is recorded as failed."""
    world = make_world(tmp_path / "w", store_uri=store_uri)
    rt = world.rt
    try:
        before = rt._backend.store.count_nodes()

        def broken(records: object) -> int:
            raise OSError("disk full")

        monkeypatch.setattr(rt._backend, "audit_append", broken)
        with pytest.raises(OSError):
            rt.create_principal(name="late", role="app", purposes=["service"])
        monkeypatch.undo()
        assert rt._backend.store.count_nodes() == before

        def failing_write(batch: object) -> None:
            raise StorageError("the store is gone")

        last = rt._backend.audit.size() - 1
        monkeypatch.setattr(rt._backend.store, "write", failing_write)
        with pytest.raises(StorageError):
            rt.revoke_principal(world.principals["app"].id)
        monkeypatch.undo()
        outcomes = [(e.record["action"], e.record["outcome"])
                    for e in rt._backend.audit.entries(after_seq=last, limit=10)]
        assert outcomes == [("principal.revoke", "ok"), ("principal.revoke", "failed")]
        assert not rt._backend.principals.get(world.principals["app"].id).revoked  # type: ignore[union-attr]
    finally:
        rt.close()


# A Neo4j data directory with a key file may not rotate (admin.rotate_keys): its keys are
# shared, its file is not. Rotated here: a key file beside SQLite, PACTE_MASTER_KEY
# on attached servers.
@pytest.mark.parametrize("store_uri", ["sqlite", ATTACHED], indirect=True)
def test_a_key_rotation_is_on_record_before_it_starts(
        tmp_path: Path, store_uri: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world(tmp_path / "w", store_uri=store_uri)
    rt = world.rt
    try:
        def broken(records: object) -> int:
            raise OSError("disk full")

        version = rt._backend.vault.kek_version
        monkeypatch.setattr(rt._backend, "audit_append", broken)
        with pytest.raises(OSError):
            rt.rotate_keys()
        monkeypatch.undo()
        assert rt._backend.vault.kek_version == version  # nothing rotated without its record
        last = rt._backend.audit.size() - 1
        made = rt.rotate_keys()
        outcomes = [(e.record["outcome"], e.record.get("from_kek_version"),
                     e.record.get("kek_version"))
                    for e in rt._backend.audit.entries(after_seq=last, limit=10)]
        assert outcomes == [("started", version, None), ("ok", None, made)]
        # Another process (or attached server) reads every customer under the new KEK.
        cid = world.customers["none"]
        with world.another() as other:
            view = other.operator_session("service").customer(cid)
            assert view is not None and view.fields["email"] == world.plaintext[cid]["email"]
            assert other._backend.vault.kek_version == made
    finally:
        rt.close()
