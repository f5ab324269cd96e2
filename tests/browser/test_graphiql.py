"""GraphiQL (`pacte serve --dev`) renders and runs a query with the network cut off."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pacte.api import create_app
from tests.browser.conftest import LiveServer, cut_network_off
from tests.helpers import World, build_world

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("graphiql"))
    yield w
    w.rt.close()


def test_graphiql_renders_and_runs_a_query_offline(
        world: World, browser: Any, page: Any,
        serve: Callable[[Any], LiveServer]) -> None:
    server = serve(create_app(world.rt, dev=True))
    aborted = cut_network_off(browser, server)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.goto(server.url + "/graphql")
    page.wait_for_selector(".graphiql-container")
    assert "Loading" not in page.inner_text("body")
    # The header editor: the API key and the purpose, then a query through the page.
    page.get_by_text("Headers", exact=True).click()
    headers = page.locator(".graphiql-editor-tool .CodeMirror").last
    headers.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(
        f'{{"Authorization": "Bearer {world.keys["auditor"]}", "X-Purpose": "legal"}}')
    query = page.locator(".graphiql-query-editor .CodeMirror").first
    query.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text("{ me { name role } }")
    page.locator(".graphiql-execute-button").click()
    page.wait_for_function(
        "() => document.querySelector('.result-window')?.innerText.includes('auditor-1')")
    assert aborted == [], aborted
    assert violations == [], violations
