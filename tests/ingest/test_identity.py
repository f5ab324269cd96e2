"""Identity resolution while ingesting: normal forms, transitive chains, households, G1, G8."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.errors import InputError
from pacte.identity import normalise_identifier
from pacte.identity.rules import resolve
from pacte.runtime import Pacte
from tests.conftest import BACKENDS, backend_uri
from tests.helpers import FakeClock


@pytest.fixture(params=BACKENDS)
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pacte]:
    runtime = Pacte.init(tmp_path / "data", store_uri=backend_uri(request), now=FakeClock())
    yield runtime
    runtime.close()


@pytest.mark.parametrize(("kind", "raw", "normal"), [
    ("email", "  Ann.Lee@Example.COM ", "ann.lee@example.com"),
    ("email", "ａｎｎ@example.com", "ann@example.com"),  # full-width letters (NFKC)
    ("phone", "(415) 555-0101", "+14155550101"),
    ("phone", "1 415 555 0101", "+14155550101"),
    ("phone", "+44 20 7946 0958", "+442079460958"),
    ("loyalty", "lc-0012 345", "LC0012345"),
    ("crm", " c-17 ", "C17"),
    ("device", "sn 1", "SN1"),
])
def test_normal_forms(kind: str, raw: str, normal: str) -> None:
    assert normalise_identifier(kind, raw).value == normal


@pytest.mark.parametrize(("kind", "raw"), [
    ("email", "ann"), ("email", "@example.com"), ("email", "ann@example"), ("phone", "12"),
    ("phone", "+0123456789"), ("phone", "call me"), ("crm", "   "), ("iban", "x"),
])
def test_values_that_are_not_identifiers(kind: str, raw: str) -> None:
    with pytest.raises(InputError):
        normalise_identifier(kind, raw)


def test_phone_national_numbers_take_the_mapping_country_code() -> None:
    assert normalise_identifier("phone", "020 7946 0958",
                                default_country_code="+44").value == "+442079460958"


def test_the_rule() -> None:
    assert resolve(strong={"a"}, weak={"b"}, has_email=True, emails={}).customer == "a"
    assert resolve(strong={"a", "b"}, weak=(), has_email=True, emails={}).conflict == (
        "a", "b")
    # A phone alone: that customer, unless the record and the customer both have emails.
    assert resolve(strong=(), weak={"b"}, has_email=False, emails={"b": True}).customer == "b"
    assert resolve(strong=(), weak={"b"}, has_email=True, emails={"b": False}).customer == "b"
    household = resolve(strong=(), weak={"b"}, has_email=True, emails={"b": True})
    assert household.customer is None and household.rule == "household"
    assert resolve(strong=(), weak={"b", "c"}, has_email=False, emails={}).customer is None


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_transitive_chain_is_one_customer(rt: Pacte, tmp_path: Path) -> None:
    # A~B by email, B~C by phone, C~D by loyalty card: one person, over three files.
    crm = _jsonl(tmp_path / "crm.jsonl", [
        {"customer_id": "C1", "name": "Ann Lee", "email": "ann@example.com"}])
    shop = _jsonl(tmp_path / "shop_customers.jsonl", [
        {"email": "ANN@example.com", "phone": "415 555 0101"}])
    pos = _jsonl(tmp_path / "pos_customers.jsonl", [
        {"phone": "+1 (415) 555-0101", "loyalty_card": "LC-9"}])
    events = _jsonl(tmp_path / "events.jsonl", [
        {"event_id": "e1", "loyalty_card": "lc9", "channel": "store", "kind": "visit",
         "occurred_at": "2026-05-01T10:00:00Z"}])
    report = rt.ingest([crm, shop, pos, events])
    assert report.rejected == 0, report.summary()
    assert rt._backend.store.count_nodes()["Customer"] == 1
    assert report.count("created") == 2 and report.count("updated") == 2


def test_a_shared_household_phone_does_not_merge_two_people(rt: Pacte,
                                                             tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "customers.jsonl", [
        {"name": "Ann Lee", "email": "ann@example.com", "phone": "4155550101"},
        {"name": "Ben Lee", "email": "ben@example.com", "phone": "415-555-0101"},
        # The phone alone now points at two people: not enough to say which.
        {"name": "A. Lee", "phone": "(415) 555 0101", "loyalty_card": "LC-1"},
    ])
    report = rt.ingest([src])
    assert report.rejected == 0
    assert rt._backend.store.count_nodes()["Customer"] == 3
    s = rt.operator_session()
    ann, ben = (s.customer_by_email(e) for e in ("ann@example.com", "ben@example.com"))
    assert ann is not None and ben is not None and ann.id != ben.id


def test_two_customers_named_by_one_record_are_merged_and_said_so(
        rt: Pacte, tmp_path: Path) -> None:
    crm = _jsonl(tmp_path / "crm.jsonl", [
        {"customer_id": "C1", "email": "ann@example.com"},
        {"customer_id": "C2", "email": "bob@example.com"}])
    conflict = _jsonl(tmp_path / "conflict_customers.jsonl", [
        {"customer_id": "C1", "email": "bob@example.com", "name": "Who"}])
    rt.ingest([crm])
    report = rt.ingest([conflict])
    # Merged (tests/ingest/test_merge.py), counted as such, never rejected.
    assert report.rejected == 0 and report.count("merged") == 1
    assert rt._backend.store.count_nodes().get("Customer") == 1
    assert rt._backend.store.count_nodes().get("MergedCustomer") == 1


def _raw(data_dir: Path) -> bytes:
    return b"\x00".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


def test_no_identifier_is_stored_in_plaintext(tmp_path: Path) -> None:
    """G1: scan every raw byte of the data directory (SQLite, WAL, audit, rejects)."""
    values = {"customer_id": "CRM-ZQ81734", "email": "zoe.quill@example.org",
              "phone": "+1 415 555 0177", "loyalty_card": "LOYAL-88812"}
    crm = _jsonl(tmp_path / "crm.jsonl", [{**values, "name": "Zoe Quill"}])
    orders = _jsonl(tmp_path / "orders.jsonl", [
        {"order_id": "ORD-5551234", "line": 1, "email": values["email"], "product": "SKU-1",
         "amount": 3, "ordered_at": "2026-05-01T10:00:00Z"},
        {"order_id": "ORD-5551235", "line": 1, "email": "bad email", "product": "SKU-1",
         "amount": 3, "ordered_at": "2026-05-01T10:00:00Z"}])
    devices = _jsonl(tmp_path / "devices.jsonl", [
        {"device_serial": "SER-XK-40411", "email": values["email"], "device_type": "bulb"}])
    with Pacte.init(tmp_path / "data", now=FakeClock()) as rt:
        report = rt.ingest([crm, orders, devices])
        assert report.count("created") == 3 and report.rejected == 1
        rt._backend.store.checkpoint()  # type: ignore[attr-defined]
    raw = _raw(tmp_path / "data")
    needles = ["CRM-ZQ81734", "CRMZQ81734", "zoe.quill", "5550177", "LOYAL-88812",
               "LOYAL88812", "ORD-5551234", "ORD5551234", "5551235", "SER-XK-40411",
               "SERXK40411", "Zoe Quill", "bad email"]
    for needle in needles:
        for encoded in (needle.encode(), needle.encode("utf-16-le")):
            assert encoded not in raw, needle


def test_erasure_removes_every_identifier(rt: Pacte, tmp_path: Path) -> None:
    crm = _jsonl(tmp_path / "crm.jsonl", [
        {"customer_id": "C1", "email": "ann@example.com", "phone": "4155550101",
         "loyalty_card": "L1"}])
    rt.ingest([crm])
    cid = rt.operator_session().customer_by_email("ann@example.com")
    assert cid is not None
    rt.operator_session("self_service").erase(cid.id)
    left = [e for entries in rt._backend.store.iter_index() for e in entries if e.node_id == cid.id]
    assert left == []
    # Ingesting the same row again makes a new customer: nothing remembered them.
    assert rt.ingest([crm]).count("created") == 1


POLICY_RULES = """
[identity]
match = ["crm", "email", "phone", "loyalty", "order", "device"]
weak = ["phone"]
[identity.sources.callcentre]
match = ["crm"]
"""


def test_the_policy_file_says_which_kinds_match_per_source(rt: Pacte, tmp_path: Path) -> None:
    policy = rt.data_dir / "policy.toml"
    policy.write_text(policy.read_text(encoding="utf-8") + POLICY_RULES, encoding="utf-8")
    crm = _jsonl(tmp_path / "crm.jsonl", [
        {"customer_id": "C1", "email": "ann@example.com", "phone": "4155550101"}])
    rt.ingest([crm])
    calls = _jsonl(tmp_path / "calls.jsonl", [
        # The call centre's caller ids are not trusted: no match by phone...
        {"event_id": "k1", "phone": "4155550101", "channel": "phone", "kind": "support",
         "occurred_at": "2026-05-01T10:00:00Z"},
        # ... but its CRM ids are.
        {"event_id": "k2", "customer_id": "c1", "phone": "4155550199", "channel": "phone",
         "kind": "support", "occurred_at": "2026-05-01T11:00:00Z"}])
    report = rt.ingest([calls], source="callcentre")
    assert report.count("created") == 1 and report.rejected == 1
    # The untrusted phone of k2 was not linked to the customer either.
    token = rt._backend.codec.keyed_token("id.phone", "+14155550199")
    assert rt._backend.store.lookup("Identity.phone", token) == []
    assert rt._backend.store.count_nodes()["Customer"] == 1


def test_a_bad_identity_table_is_one_clear_error(rt: Pacte, tmp_path: Path) -> None:
    from pacte.errors import ConfigError

    policy = rt.data_dir / "policy.toml"
    policy.write_text(policy.read_text(encoding="utf-8") + '\n[identity]\nmatch = ["iban"]\n',
                      encoding="utf-8")
    src = _jsonl(tmp_path / "crm.jsonl", [{"customer_id": "C1"}])
    with pytest.raises(ConfigError, match="unknown identifier kind 'iban'"):
        rt.ingest([src])


def test_explain_lists_identifier_kinds_and_refs_never_values(tmp_path: Path) -> None:
    crm = _jsonl(tmp_path / "crm.jsonl", [
        {"customer_id": "CRM-77", "email": "ann@example.com", "phone": "4155550101"}])
    shop = _jsonl(tmp_path / "shop_customers.jsonl", [
        {"email": "ANN@example.com", "loyalty_card": "LC-5"}])
    with Pacte.init(tmp_path / "data", now=FakeClock()) as rt:
        rt.ingest([crm, shop])
        view = rt.operator_session().customer_by_email("ann@example.com")
        assert view is not None
        explanation = rt.explain_identity(view.id)
        assert sorted(explanation.identifiers) == ["crm", "email", "loyalty", "phone"]
        text = "\n".join(explanation.lines())
        assert "phone: 1 (" in text and "weak" in text
        for value in ("CRM-77", "CRM77", "ann@", "4155550101", "LC5", "LC-5"):
            assert value not in text
        trail = [e.record for e in rt._backend.audit.entries(subject=None, after_seq=None,
                                                              limit=500)]
        assert any(r.get("action") == "identity.explain" for r in trail)
