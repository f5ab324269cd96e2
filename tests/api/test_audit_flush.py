"""G6 over HTTP: when the audit trail cannot record a request, nothing is returned."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pacte.errors import StorageError
from tests.api.conftest import QUERY_360, Api
from tests.helpers import World


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise StorageError("audit append failed: disk I/O error")


@pytest.fixture
def failing(fresh: tuple[World, Api], monkeypatch: pytest.MonkeyPatch) -> tuple[World, Api]:
    world, api = fresh
    monkeypatch.setattr(world.rt._backend.audit, "append", _boom)
    monkeypatch.setattr(world.rt._backend.audit, "append_many", _boom)
    return world, api


@pytest.mark.parametrize("purpose", ["service", "marketing.email"])
def test_read_fails_closed(failing: tuple[World, Api], purpose: str) -> None:
    world, api = failing
    cid = world.customers["granted"]
    r = api.post(QUERY_360, key=world.keys["app"], purpose=purpose, variables={"id": cid})
    assert r.status_code == 503
    body = r.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "AUDIT_FAILED"
    text = json.dumps(body)
    assert not [v for v in world.plaintext[cid].values() if v in text]


def test_list_fails_closed(failing: tuple[World, Api]) -> None:
    world, api = failing
    r = api.post("{ customers(first: 50) { edges { node { name email } } } }",
                 key=world.keys["app"], purpose="service")
    assert r.status_code == 503 and "data" not in r.json()


def test_write_fails_closed(failing: tuple[World, Api]) -> None:
    world, api = failing
    r = api.post('mutation { upsertCustomer(input: {name: "Ada", email: "ada@x.org"}) '
                 "{ id name } }", key=world.keys["app"], purpose="service")
    assert r.status_code == 503 and "data" not in r.json()


def test_refusal_that_cannot_be_recorded(failing: tuple[World, Api]) -> None:
    world, api = failing
    r = api.post("{ me { name } }", key=world.keys["app"], purpose="astrology")
    assert r.status_code == 503
    assert r.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
    r = api.post("{ me { name } }", key="pk_wrong", purpose="service")
    assert r.status_code == 503


def test_a_refusal_inside_a_request_fails_it_whole(failing: tuple[World, Api]) -> None:
    # The refusal of auditTrail is appended at once, with the customer read pending
    # before it; the append fails, so the customer read is not on record either.
    world, api = failing
    q = "query($id: ID!) { customer(id: $id) { name } auditTrail { edges { cursor } } }"
    r = api.post(q, key=world.keys["app"], purpose="service",
                 variables={"id": world.customers["granted"]})
    assert r.status_code == 503
    assert "data" not in r.json()
    assert world.plaintext[world.customers["granted"]]["name"] not in r.text


def test_a_request_that_reads_nothing_needs_no_record(failing: tuple[World, Api]) -> None:
    world, api = failing
    r = api.post("{ __typename }", key=world.keys["app"], purpose="service")
    assert r.status_code == 200


def test_flush_runs_before_the_response(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    before = world.rt._backend.audit.size()
    api.data(QUERY_360, key=world.keys["app"], purpose="service",
             variables={"id": world.customers["granted"]})
    entries = world.rt._backend.audit.entries(after_seq=before - 1)
    # One entry for the request, listing each operation it performed.
    assert len(entries) == 1 and entries[0].record["action"] == "request"
    actions = [op["action"] for op in entries[0].record["operations"]]
    assert {"customer.read", "consent.read", "interaction.list", "product.list"} <= set(actions)
    ref = world.rt._backend.subject_ref(world.customers["granted"])
    assert ref in entries[0].record["subjects"]
