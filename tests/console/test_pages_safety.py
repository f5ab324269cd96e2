"""The pages' safety without a browser: CSRF, cookies, rate limits, links, headers."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import httpx
import pytest

from pacte.api import create_app
from pacte.api.access_log import AccessLog
from pacte.console import ROUTES_LOGGED
from tests.api.conftest import Api
from tests.helpers import World

LINK = "mutation($c: ID!, $m: Int) { transparencyLink(customerId: $c, minutes: $m) }"


def csrf(api: Api, path: str = "/console") -> str:
    r = api.request("GET", path)
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', r.text)
    assert found, r.text
    return found.group(1)


def sign_in(api: Api, key: str, token: str | None = None) -> httpx.Response:
    return api.request("POST", "/console/sign-in",
                       data={"csrf": token or csrf(api), "key": key})


def link(api: Api, world: World, customer: str, minutes: int = 15) -> str:
    path: str = api.data(LINK, key=world.keys["app"], purpose="self_service",
                         variables={"c": customer, "m": minutes})["transparencyLink"]
    return path


def test_pages_send_no_script_and_a_strict_policy(api: Api) -> None:
    r = api.request("GET", "/console")
    assert "<script" not in r.text
    assert "script-src" not in r.headers["content-security-policy"]
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-frame-options"] == "DENY"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie


def test_cookies_are_secure_over_https(world: World) -> None:
    client = Api(create_app(world.rt))
    client._client.base_url = httpx.URL("https://pacte.test")
    try:
        r = sign_in(client, world.keys["auditor"])
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "pacte_console=" in cookie and "secure" in cookie and "httponly" in cookie
        assert "samesite=strict" in cookie
        assert world.keys["auditor"] not in r.headers["set-cookie"]
    finally:
        client.close()


def test_a_form_without_its_csrf_token_is_refused(api: Api, world: World) -> None:
    csrf(api)
    r = api.request("POST", "/console/sign-in", data={"key": world.keys["auditor"]})
    assert r.status_code == 403 and "pacte_console" not in r.headers.get("set-cookie", "")
    r = api.request("POST", "/console/sign-in",
                    data={"csrf": "0" * 64, "key": world.keys["auditor"]})
    assert r.status_code == 403
    # A token is bound to the browser's own cookie: another browser's token fails.
    other = Api(api.app)
    try:
        stolen = csrf(other)
    finally:
        other.close()
    assert sign_in(api, world.keys["auditor"], token=stolen).status_code == 403

    # On the customer's page too: a forged withdrawal changes nothing.
    cid = world.customers["granted"]
    assert api.request("GET", link(api, world, cid)).status_code == 200
    r = api.request("POST", "/me/consent", data={"purpose": "marketing.email",
                                                 "choice": "withdraw"})
    assert r.status_code == 403
    assert world.rt.operator_session("marketing.email").customer(cid) is not None


def test_sign_in_is_rate_limited_per_address(api: Api, world: World) -> None:
    token = csrf(api)
    for _ in range(5):
        assert sign_in(api, "wrong", token).status_code == 401
    r = sign_in(api, world.keys["auditor"], token)
    assert r.status_code == 429 and "too many" in r.text
    world.clock.advance(minutes=6)
    assert sign_in(api, world.keys["auditor"], token).status_code == 303


def test_a_revoked_auditor_is_signed_out_at_the_next_request(api: Api, world: World) -> None:
    token = csrf(api)
    assert sign_in(api, world.keys["auditor"], token).status_code == 303
    r = api.request("POST", "/console/search", data={"csrf": token})
    assert r.status_code == 200 and "table" in r.text
    world.rt.revoke_principal(world.principals["auditor"].id)
    r = api.request("POST", "/console/search", data={"csrf": token})
    assert r.status_code == 401 and 'name="key"' in r.text


def test_the_sign_in_cookie_expires(api: Api, world: World) -> None:
    token = csrf(api)
    sign_in(api, world.keys["auditor"], token)
    world.clock.advance(hours=9)
    r = api.request("GET", "/console")
    assert 'name="key"' in r.text


def test_links_only_for_self_service_and_a_visible_customer(api: Api, world: World) -> None:
    cid = world.customers["granted"]
    r = api.post(LINK, key=world.keys["auditor"], purpose="legal", variables={"c": cid})
    assert r.json()["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "PURPOSE_NOT_GRANTED")
    r = api.post(LINK, key=world.keys["app"], purpose="service", variables={"c": cid})
    assert r.json()["errors"][0]["extensions"]["code"] == "PURPOSE_NOT_GRANTED"
    r = api.post(LINK, key=world.keys["app"], purpose="self_service",
                 variables={"c": "c_000000000000"})
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    r = api.post(LINK, key=world.keys["app"], purpose="self_service",
                 variables={"c": cid, "m": 100_000})
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_INPUT"
    # The grant of a link is on record, as the app's, for that customer.
    link(api, world, cid)
    legal = world.rt.operator_session("legal")
    entries = legal.audit_trail(action="customer.link", outcome="ok", first=10)
    assert [e.record["principal"] for e in entries] == [world.principals["app"].id]
    assert len(legal.audit_trail(action="customer.link", outcome="denied", first=10)) == 2


def test_a_link_names_no_one_and_cannot_be_a_sign_in(api: Api, world: World) -> None:
    cid = world.customers["granted"]
    path = link(api, world, cid)
    assert cid not in path and cid.removeprefix("c_") not in path
    token = csrf(api)
    sign_in(api, world.keys["auditor"], token)
    session_cookie = api._client.cookies["pacte_console"]
    # A sign-in cookie offered as a link, and a link offered as a sign-in cookie.
    assert api.request("GET", "/me/link/" + session_cookie).status_code == 403
    api._client.cookies.set("pacte_console", path.rsplit("/", 1)[1])
    assert 'name="key"' in api.request("GET", "/console").text


def test_a_revoked_app_kills_its_links(api: Api, world: World) -> None:
    path = link(api, world, world.customers["granted"])
    world.rt.revoke_principal(world.principals["app"].id)
    r = api.request("GET", path)
    assert r.status_code == 403 and "no longer valid" in r.text


def test_an_erasure_from_the_page(api: Api, world: World) -> None:
    cid = world.customers["granted"]
    api.request("GET", link(api, world, cid))
    token = csrf(api, "/me")
    r = api.request("POST", "/me/erase", data={"csrf": token, "confirm": "yes"})
    assert r.status_code == 200 and "signature" in r.text
    assert world.rt.operator_session("service").customer(cid) is None
    assert "pacte_me=\"\"" in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]


def test_the_access_log_never_names_a_link(world: World, caplog: pytest.LogCaptureFixture
                                           ) -> None:
    client = Api(AccessLog(create_app(world.rt), routes=("/graphql", *ROUTES_LOGGED)))
    try:
        with caplog.at_level(logging.INFO, logger="pacte.access"):
            client.request("GET", "/me/link/abcdef")
            client.request("GET", "/console")
        lines = [r.getMessage() for r in caplog.records]
        assert lines == ["GET - 403", "GET /console 200"]
    finally:
        client.close()


def test_audit_trail_filters_through_graphql(api: Api, world: World) -> None:
    query = """query($a: String, $o: String, $p: String, $pr: ID, $s: DateTime, $u: DateTime) {
      auditTrail(first: 100, action: $a, outcome: $o, purpose: $p, principal: $pr,
                 since: $s, until: $u) { edges { node { action outcome purpose principal at } } }
    }"""

    def nodes(**variables: object) -> list[dict[str, object]]:
        data = api.data(query, key=world.keys["auditor"], purpose="legal",
                        variables=variables)
        return [e["node"] for e in data["auditTrail"]["edges"]]

    grants = nodes(a="consent.grant")
    assert grants and {n["action"] for n in grants} == {"consent.grant"}
    api.post("{ me { id } }", key=world.keys["app"], purpose="nope")  # a denial
    denied = nodes(o="denied")
    assert denied and {n["outcome"] for n in denied} == {"denied"}
    app = nodes(pr=world.principals["app"].id)
    assert app and {n["principal"] for n in app} == {world.principals["app"].id}
    ss = nodes(p="self_service", a="consent.withdraw")
    assert ss and all(n["purpose"] == "self_service" for n in ss)
    later = (world.clock.now + timedelta(days=1)).isoformat()
    assert nodes(s=later) == []
    assert nodes(u=later)
