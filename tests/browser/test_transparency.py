"""The customer's transparency page in a real browser, on both stores: a link an app
made, a withdrawal that holds on the next GraphQL request, export, refused links."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pacte.api import create_app
from tests.browser.conftest import LiveServer
from tests.helpers import World, build_world

pytestmark = pytest.mark.browser

LINK = "mutation($c: ID!, $m: Int) { transparencyLink(customerId: $c, minutes: $m) }"
CUSTOMER = "query($c: ID!) { customer(id: $c) { id } }"


@pytest.fixture
def world(tmp_path: Path, store_uri: str | None) -> Iterator[World]:
    w = build_world(tmp_path, store_uri=store_uri)
    yield w
    w.rt.close()


def graphql(server: LiveServer, key: str, purpose: str, query: str,
            **variables: Any) -> dict[str, Any]:
    # Plain synchronous httpx: the browser's driver holds this thread's event loop.
    r = httpx.post(server.url + "/graphql", json={"query": query, "variables": variables},
                   headers={"Authorization": f"Bearer {key}", "X-Purpose": purpose})
    body = r.json()
    assert r.status_code == 200 and "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def test_follow_a_link_withdraw_and_graphql_sees_it_at_once(
        world: World, page: Any, serve: Callable[[Any], LiveServer], tmp_path: Path) -> None:
    server = serve(create_app(world.rt))
    cid = world.customers["granted"]
    app = world.keys["app"]
    assert graphql(server, app, "marketing.email", CUSTOMER, c=cid)["customer"] == {"id": cid}
    link = graphql(server, app, "self_service", LINK, c=cid, m=10)["transparencyLink"]

    page.goto(server.url + link)
    page.wait_for_url(server.url + "/me")  # the token leaves the address bar
    assert "Who used your data" in page.inner_text("main")
    assert "changed your" in page.inner_text("main")  # a use, in plain words
    for value in world.plaintext[cid].values():
        assert value not in page.content()  # the page names no personal value

    assert page.inner_text("#state-marketing\\.email").startswith("You agreed")
    page.get_by_role("button", name="Withdraw consent to marketing.email").click()
    assert "withdrawn" in page.inner_text(".notice")
    assert page.inner_text("#state-marketing\\.email").startswith("You have not agreed")
    # The very next request under that purpose no longer sees the customer (G5).
    assert graphql(server, app, "marketing.email", CUSTOMER, c=cid)["customer"] is None

    with page.expect_download() as info:
        page.get_by_role("button", name="Download my data").click()
    path = tmp_path / "mine.json"
    info.value.save_as(path)
    mine = json.loads(path.read_text(encoding="utf-8"))
    assert mine["customer"]["email"] == world.plaintext[cid]["email"]


def test_expired_or_tampered_links_are_refused(
        world: World, page: Any, serve: Callable[[Any], LiveServer]) -> None:
    server = serve(create_app(world.rt))
    cid = world.customers["granted"]
    link = graphql(server, world.keys["app"], "self_service", LINK, c=cid, m=5)[
        "transparencyLink"]
    token = link.rsplit("/", 1)[1]
    tampered = link[:-len(token)] + token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    response = page.goto(server.url + tampered)
    assert response.status == 403
    assert "This link cannot be used" in page.inner_text("h1")
    page.goto(server.url + "/me")
    assert "This link cannot be used" in page.inner_text("h1")

    page.goto(server.url + link)
    page.wait_for_url(server.url + "/me")
    world.clock.advance(minutes=6)
    page.reload()
    assert "expired" in page.inner_text("main")
    response = page.goto(server.url + link)
    assert response.status == 403 and "expired" in page.inner_text("main")
