"""The README's screenshots of the console and the transparency page.

    python3 -m tests.browser.screenshots docs/screenshots

Builds the tests' small world in a temporary directory, serves it, and saves one PNG
per page (a phone-sized one of the customer's page).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from pacte.api import create_app
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, LiveServer
from tests.helpers import build_world


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        world = build_world(Path(tmp))
        cid = world.customers["granted"]
        try:
            with LiveServer(create_app(world.rt)) as server, sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1100, "height": 720})
                page.goto(server.url + "/console")
                page.get_by_label("API key").fill(world.keys["auditor"])
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("link", name="Access report").click()
                page.get_by_label("Customer (id or email)").fill(cid)
                page.get_by_role("button", name="Open the report").click()
                page.screenshot(path=str(out / "console-report.png"))
                page.get_by_role("link", name="Data uses").click()
                page.get_by_label("Customer (id or email)").fill(
                    world.plaintext[cid]["email"])
                page.get_by_role("button", name="Search").click()
                page.screenshot(path=str(out / "console-search.png"))
                page.get_by_role("link", name="Trail").click()
                page.get_by_role("button", name="Verify the whole trail now").click()
                page.wait_for_selector("#verify-state.ok")
                page.screenshot(path=str(out / "console-trail.png"))
                r = httpx.post(server.url + "/graphql", json={
                    "query": "mutation($c: ID!) { transparencyLink(customerId: $c) }",
                    "variables": {"c": cid}}, headers={
                    "Authorization": f"Bearer {world.keys['app']}",
                    "X-Purpose": "self_service"})
                phone = browser.new_page(viewport={"width": 390, "height": 844})
                phone.goto(server.url + r.json()["data"]["transparencyLink"])
                phone.wait_for_url(server.url + "/me")
                phone.screenshot(path=str(out / "transparency-phone.png"))
                browser.close()
        finally:
            world.rt.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
