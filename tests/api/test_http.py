"""The HTTP layer: admission (G2 over HTTP), request shape, status codes, headers."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from pacte.runtime import Pacte
from tests.api.conftest import Api
from tests.helpers import World

ME = "{ me { name role purposes } }"


def _code(body: dict[str, object]) -> str:
    errors = body["errors"]
    assert isinstance(errors, list) and errors
    code = errors[0]["extensions"]["code"]
    assert isinstance(code, str)
    return code


def test_healthz(api: Api) -> None:
    r = api.request("GET", "/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_me(api: Api, world: World) -> None:
    data = api.data(ME, key=world.keys["app"], purpose="service")
    assert data["me"]["role"] == "app" and "service" in data["me"]["purposes"]


def test_response_headers(api: Api, world: World) -> None:
    r = api.post(ME, key=world.keys["app"], purpose="service",
                 headers={"X-Request-Id": "req-42"})
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-request-id"] == "req-42"
    r = api.post(ME, key=world.keys["app"], purpose="service",
                 headers={"X-Request-Id": "bad id!"})
    assert r.headers["x-request-id"] != "bad id"


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer pk_nope",
                                           "Basic dXNlcjpwdw==", "bearer  "])
def test_unauthenticated_is_refused_and_audited(api: Api, world: World,
                                                authorization: str | None) -> None:
    before = world.rt._backend.audit.size()
    headers = {"X-Purpose": "service"}
    if authorization is not None:
        headers["Authorization"] = authorization
    r = api.request("POST", json={"query": ME}, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert _code(r.json()) == "UNAUTHENTICATED"
    assert "data" not in r.json()
    world.rt.flush_refusals()  # refusals after the first of a window are counted
    entries = world.rt._backend.audit.entries(after_seq=before - 1, limit=10)
    assert [e.record["action"] for e in entries] == ["auth"]
    assert entries[0].record["outcome"] == "denied"
    assert entries[0].record.get("count", 1) == 1


@pytest.mark.parametrize(("purpose", "code", "status"), [
    (None, "PURPOSE_REQUIRED", 400),
    ("", "PURPOSE_REQUIRED", 400),
    ("astrology", "UNKNOWN_PURPOSE", 400),       # unknown: the policy is public
    ("analytics", "PURPOSE_NOT_GRANTED", 403),   # not granted to this key
])
def test_purpose_admission(api: Api, world: World, purpose: str | None, code: str,
                           status: int) -> None:
    before = world.rt._backend.audit.size()
    r = api.post(ME, key=world.keys["app"], purpose=purpose)
    assert r.status_code == status
    assert _code(r.json()) == code
    entries = world.rt._backend.audit.entries(after_seq=before - 1, limit=10)
    assert [(e.record["action"], e.record["outcome"]) for e in entries] == [
        ("session.open", "denied")]


def test_malformed_json(api: Api, world: World) -> None:
    r = api.request("POST", content=b'{"query": "{ me { name } }"',
                    headers={"Content-Type": "application/json",
                             "Authorization": f"Bearer {world.keys['app']}",
                             "X-Purpose": "service"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["message"] == "the request body is not valid JSON"
    assert _code(r.json()) == "BAD_REQUEST"


@pytest.mark.parametrize("body", [
    [{"query": ME}, {"query": ME}],
    "just a string",
    {"query": 42},
    {"query": ""},
    {"query": ME, "variables": [1, 2]},
    {"query": ME, "operationName": 7},
    {},
])
def test_bad_request_shapes(api: Api, world: World, body: object) -> None:
    r = api.request("POST", content=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json",
                             "Authorization": f"Bearer {world.keys['app']}",
                             "X-Purpose": "service"})
    assert r.status_code == 400, r.text
    assert _code(r.json()) == "BAD_REQUEST"


def test_batching_is_refused_clearly(api: Api, world: World) -> None:
    r = api.request("POST", json=[{"query": ME}], headers={
        "Authorization": f"Bearer {world.keys['app']}", "X-Purpose": "service"})
    assert r.status_code == 400
    assert "batched" in r.json()["errors"][0]["message"]


def test_wrong_content_type(api: Api, world: World) -> None:
    r = api.request("POST", content=ME.encode(), headers={
        "Content-Type": "text/plain", "Authorization": f"Bearer {world.keys['app']}",
        "X-Purpose": "service"})
    assert r.status_code == 415


@pytest.mark.parametrize("declared", [True, False])
def test_huge_body(api: Api, world: World, declared: bool) -> None:
    big = json.dumps({"query": "{ me { name } }" + " " * 70_000}).encode()

    async def stream():  # type: ignore[no-untyped-def]
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    headers = {"Content-Type": "application/json",
               "Authorization": f"Bearer {world.keys['app']}", "X-Purpose": "service"}
    r = api.request("POST", content=big if declared else stream(), headers=headers)
    assert r.status_code == 413
    assert _code(r.json()) == "BAD_REQUEST"


def test_get_query_works(api: Api, world: World) -> None:
    r = api.request("GET", params={"query": ME}, headers={
        "Authorization": f"Bearer {world.keys['app']}", "X-Purpose": "service"})
    assert r.status_code == 200 and r.json()["data"]["me"]["role"] == "app"


def test_mutation_over_get_is_refused(api: Api, world: World) -> None:
    cid = world.customers["granted"]
    before = world.rt._backend.audit.size()
    r = api.request("GET", params={
        "query": f'mutation {{ withdrawConsent(customerId: "{cid}", purpose: "marketing") '
                 "{ status } }"},
        headers={"Authorization": f"Bearer {world.keys['app']}", "X-Purpose": "self_service"})
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert "POST" in r.json()["errors"][0]["message"]
    assert world.rt._backend.audit.size() == before  # nothing was executed


def test_other_methods(api: Api) -> None:
    assert api.request("PUT", content=b"{}").status_code == 405
    assert api.request("DELETE").status_code == 405


def test_several_operations(api: Api, world: World) -> None:
    # Without `operationName`, strawberry runs the first operation.
    r = api.post("query A { me { name } } query B { me { role } }",
                 key=world.keys["app"], purpose="service")
    assert r.json() == {"data": {"me": {"name": "app-1"}}}
    r = api.request("POST", json={"query": "query A { me { name } }", "operationName": "Z"},
                    headers={"Authorization": f"Bearer {world.keys['app']}",
                             "X-Purpose": "service"})
    assert r.status_code == 400
    r = api.request("POST", json={"query": "query A { me { name } } query B { me { role } }",
                                  "operationName": "B"},
                    headers={"Authorization": f"Bearer {world.keys['app']}",
                             "X-Purpose": "service"})
    assert r.status_code == 200 and r.json()["data"] == {"me": {"role": "app"}}


def test_validation_errors_are_400_with_code(api: Api, world: World) -> None:
    r = api.post("{ nope }", key=world.keys["app"], purpose="service")
    assert r.status_code == 400
    assert _code(r.json()) == "GRAPHQL_VALIDATION_FAILED"
    assert "data" not in r.json()
    r = api.post("{ me { ", key=world.keys["app"], purpose="service")
    assert r.status_code == 400
    assert _code(r.json()) == "GRAPHQL_PARSE_FAILED"


def test_graphiql_only_in_dev(api: Api, world: World) -> None:
    r = api.request("GET", headers={"Accept": "text/html"})
    assert r.status_code != 200 or "graphiql" not in r.text.lower()
    from pacte.api import create_app

    dev = Api(create_app(world.rt, dev=True))
    try:
        r = dev.request("GET", headers={"Accept": "text/html"})
        assert r.status_code == 200 and "graphiql" in r.text.lower()
    finally:
        dev.close()


def _refusals(world: World, after: int) -> list[dict[str, object]]:
    return [dict(e.record) for e in world.rt._backend.audit.entries(after_seq=after - 1, limit=100)
            if e.record["action"] == "auth"]


def test_unauthenticated_refusals_are_counted_not_each_appended(fresh: tuple[World, Api]
                                                                 ) -> None:
    world, api = fresh
    before = world.rt._backend.audit.size()
    for n in range(500):
        r = api.request("POST", json={"query": ME},
                        headers={"Authorization": f"Bearer pk_guess{n}"})
        assert r.status_code == 401
    # The first is on record at once; the other 499 are counted.
    assert [e.get("count", 1) for e in _refusals(world, before)] == [1]
    # A refusal in a later window writes the count of the one before.
    world.clock.advance(minutes=2)
    api.request("POST", json={"query": ME})
    world.clock.advance(seconds=10)
    api.request("POST", json={"query": ME})
    recs = _refusals(world, before)
    assert [e.get("count", 1) for e in recs] == [1, 499, 1]
    assert all(e["reason"] == "UNAUTHENTICATED" for e in recs)
    # The count of the window still open is written when the directory closes.
    world.rt.close()
    with Pacte.open(world.rt.data_dir) as again:
        entries = again._backend.audit.entries(after_seq=before - 1, limit=100)
        counts = [e.record.get("count", 1) for e in entries if e.record["action"] == "auth"]
    assert counts == [1, 499, 1, 1] and sum(counts) == 502


def test_a_huge_purpose_is_not_copied_into_the_trail(api: Api, world: World) -> None:
    before = world.rt._backend.audit.size()
    claimed = "grace.west10@example.com" + "x" * 8000
    r = api.post(ME, key=world.keys["app"], purpose=claimed)
    assert r.status_code == 400 and len(r.text) < 1000  # UNKNOWN_PURPOSE
    assert "grace" not in r.text
    entries = world.rt._backend.audit.entries(after_seq=before - 1, limit=10)
    assert [e.record["outcome"] for e in entries] == ["denied"]
    text = json.dumps(dict(entries[0].record))
    assert "grace" not in text and len(text) < 1000
    assert str(entries[0].record["purpose"]).startswith("sha256:")
    # Two different claims stay told apart; a purpose-like name is kept as it is.
    api.post(ME, key=world.keys["app"], purpose=claimed + "y")
    api.post(ME, key=world.keys["app"], purpose="astrology")
    later = world.rt._backend.audit.entries(after_seq=before, limit=10)
    assert [e.record["purpose"] for e in later][1:] != [entries[0].record["purpose"]] * 2
    assert later[-1].record["purpose"] == "astrology"


# -- one status rule for every error code (issue #22) ---------------------------------


def test_the_status_follows_one_rule(api: Api, world: World) -> None:
    """Nothing answered: the status of the error's code; something answered: 200."""
    from pacte.api.errors import HTTP_STATUS

    key = world.keys["app"]
    cid = world.customers["granted"]
    alone = api.post('{ customer(id: "") { id } }', key=key, purpose="service")
    assert (alone.status_code, _code(alone.json())) == (HTTP_STATUS["BAD_INPUT"], "BAD_INPUT")
    partial = api.post(f'{{ a: customer(id: "") {{ id }} b: customer(id: "{cid}") {{ id }} }}',
                       key=key, purpose="service")
    body = partial.json()
    assert partial.status_code == 200 and body["data"]["b"] == {"id": cid}
    assert _code(body) == "BAD_INPUT"
    forbidden = api.post("{ auditVerification { ok } }", key=key, purpose="service")
    assert (forbidden.status_code, _code(forbidden.json())) == (403, "FORBIDDEN")
    parse = api.post("{ customer(", key=key, purpose="service")
    assert (parse.status_code, _code(parse.json())) == (400, "GRAPHQL_PARSE_FAILED")
    for code, status in HTTP_STATUS.items():  # client errors 4xx, our failures 5xx
        assert (400 <= status < 500) != (code in {"AUDIT_FAILED", "UNAVAILABLE"}), code


def test_cors_is_off_by_default_and_configurable(world: World) -> None:
    from pacte.api import create_app

    preflight = {"Origin": "https://crm.example.com", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, x-purpose, content-type"}
    closed = Api(create_app(world.rt))
    try:
        r = closed.request("OPTIONS", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    finally:
        closed.close()
    open_ = Api(create_app(world.rt, cors_origins=["https://crm.example.com"]))
    try:
        r = open_.request("OPTIONS", headers=preflight)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://crm.example.com"
        allowed = r.headers["access-control-allow-headers"].lower()
        assert "x-purpose" in allowed and "authorization" in allowed
        r = open_.request("OPTIONS", headers={**preflight, "Origin": "https://evil.example"})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
        r = open_.post(ME, key=world.keys["app"], purpose="service",
                       headers={"Origin": "https://crm.example.com"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://crm.example.com"
    finally:
        open_.close()


@pytest.mark.parametrize("cors", [(), ("https://crm.example.com",)])
def test_graphql_is_served_by_its_endpoint_on_either_path(world: World,
                                                          cors: tuple[str, ...]) -> None:
    """Without CORS, `/graphql` skips starlette's router; with it, the route serves it."""
    from pacte.api import create_app

    client = Api(create_app(world.rt, cors_origins=list(cors)))
    r = client.post("{ __typename }", key=world.keys["app"], purpose="service")
    assert r.status_code == 200 and r.json() == {"data": {"__typename": "Query"}}
    assert r.headers["x-request-id"] and r.headers["cache-control"] == "no-store"
    assert client.request("PUT", json={}).status_code == 405
    client.close()


def test_an_endpoint_failing_unexpectedly_is_a_500_with_no_data(
        world: World, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """On the direct path starlette's error middleware is not there to answer: the
    endpoint's own wrapper does, logged and counted."""
    from pacte.api import create_app
    from pacte.api.app import GraphQLEndpoint

    async def respond(self: GraphQLEndpoint, incoming: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(GraphQLEndpoint, "respond", respond)
    client = Api(create_app(world.rt))
    with caplog.at_level(logging.ERROR):
        r = client.request("POST", json={"query": "{ __typename }"}, headers={
            "Authorization": f"Bearer {world.keys['app']}", "X-Purpose": "service",
            "X-Request-Id": "trace-42"})
    assert r.status_code == 500 and r.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
    assert r.headers["x-request-id"] == "trace-42"  # the client's, to find the log line
    assert "data" not in r.json() and "boom" not in r.text
    assert any("RuntimeError" in m and "endpoint" in m for m in caplog.messages)
    assert 'outcome="500"} 1' in client.request("GET", "/metrics").text
    client.close()
