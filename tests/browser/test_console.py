"""The auditor console in a real browser: sign in, search, report, verify."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pacte.api import create_app
from pacte.audit import check_report
from tests.browser.conftest import LiveServer
from tests.helpers import World, build_world

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("console"))
    service = w.rt.operator_session("service")
    for _ in range(40):  # enough entries for more than one page of uses
        service.customer(w.customers["withdrawn"])
    yield w
    w.rt.close()


def sign_in(page: Any, server: LiveServer, key: str) -> None:
    page.goto(server.url + "/console")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_search_report_download_and_verify(
        world: World, page: Any, serve: Callable[[Any], LiveServer], tmp_path: Path) -> None:
    server = serve(create_app(world.rt))
    sign_in(page, server, world.keys["auditor"])
    page.get_by_role("link", name="Data uses").click()

    # Every use, paged: the next page starts after the last entry of the first.
    page.get_by_role("button", name="Search").click()
    first = page.locator("table.entries tbody tr")
    assert first.count() == 50
    last_seq = int(first.last.locator("td").first.inner_text())
    page.get_by_role("button", name="Next page").click()
    assert int(page.locator("table.entries tbody tr").first.locator("td").first.inner_text()) \
        > last_seq

    # By email, through the blind index: the email is in no URL, the results name the id.
    email = world.plaintext[world.customers["granted"]]["email"]
    page.get_by_label("Customer (id or email)").fill(email)
    page.get_by_label("Outcome").select_option("ok")
    page.get_by_role("button", name="Search").click()
    assert world.customers["granted"] in page.inner_text("h2")
    rows = page.locator("table.entries tbody tr")
    assert rows.count() >= 3
    assert "denied" not in page.locator("table.entries").inner_text()
    assert email not in page.url and "@" not in page.url
    assert email not in page.content()  # nor on the page: the search goes on by id

    # The Art. 15 report: on screen, checked, and downloaded as JSON with its proofs.
    page.get_by_role("link", name="Access report").click()
    page.get_by_label("Customer (id or email)").fill(world.customers["granted"])
    page.get_by_role("button", name="Open the report").click()
    assert "none is left out" in page.inner_text("article")
    assert "consent.grant" in page.inner_text("article")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the report (JSON, with its proofs)").click()
    path = tmp_path / "report.json"
    info.value.save_as(path)
    report = json.loads(path.read_text(encoding="utf-8"))
    proven = check_report(report, public_key=world.rt._backend.signer.public_key)
    assert proven["uses"] >= 3

    # The printable letter for the customer, in plain words.
    page.get_by_role("button", name="Printable letter for the customer").click()
    assert "How to object" in page.inner_text("body")
    assert "recorded your consent to marketing.email" in page.inner_text("body")

    # The record of processing lists every purpose of the policy.
    page.goto(server.url + "/console/record")
    cells = page.locator("tbody tr td:first-child").all_inner_texts()
    assert {c.split()[0] for c in cells} == set(world.rt._backend.policy.purposes)

    # Verification runs in the background; the page refreshes itself until it ends.
    page.get_by_role("link", name="Trail").click()
    page.get_by_role("button", name="Verify the whole trail now").click()
    page.wait_for_selector("#verify-state.ok")
    assert "Audit trail is VALID" in page.inner_text("#verify-state")
    assert "valid" in page.locator("table").inner_text()  # the signed checkpoint(s)


def test_a_wrong_key_or_an_app_key_is_refused(
        world: World, page: Any, serve: Callable[[Any], LiveServer]) -> None:
    server = serve(create_app(world.rt))
    sign_in(page, server, "not-a-key")
    assert "cannot open the audit console" in page.inner_text("main")
    sign_in(page, server, world.keys["app"])
    assert "cannot open the audit console" in page.inner_text("main")
    page.goto(server.url + "/console/search")
    assert page.get_by_label("API key").count() == 1  # still signed out


def test_an_erasure_receipt_is_checked(
        world: World, page: Any, serve: Callable[[Any], LiveServer]) -> None:
    receipt = world.rt.operator_session("self_service").erase(world.customers["none"])
    server = serve(create_app(world.rt))
    sign_in(page, server, world.keys["auditor"])
    page.get_by_role("link", name="Erasure receipts").click()
    page.get_by_label("Receipt (JSON)").fill(json.dumps(receipt))
    page.get_by_role("button", name="Check the receipt").click()
    checks = page.locator("#receipt-checks li.ok")
    assert checks.count() == 2, page.inner_text("#receipt-checks")
    forged = {**receipt, "destroyed": {**receipt["destroyed"], "Customer": 0}}
    page.get_by_label("Receipt (JSON)").fill(json.dumps(forged))
    page.get_by_role("button", name="Check the receipt").click()
    assert "not signed by this server" in page.inner_text("#receipt-checks")
    cited = {**receipt, "audit_seq": 0}
    page.get_by_label("Receipt (JSON)").fill(json.dumps(cited))
    page.get_by_role("button", name="Check the receipt").click()
    assert "no erasure of this subject is on record" in page.inner_text("#receipt-checks")
