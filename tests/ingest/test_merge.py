"""Merges (issue #17, part 3): a record naming two customers makes them one, and an
unmerge makes them two again, on SQLite and on the real Neo4j."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pacte.errors import NotFound
from pacte.runtime import Pacte
from tests.conftest import BACKENDS, backend_uri
from tests.helpers import FakeClock

ROOT = Path(__file__).resolve().parents[2]


CLOCK = FakeClock()


@pytest.fixture(params=BACKENDS)
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pacte]:
    CLOCK.now = FakeClock().now
    runtime = Pacte.init(tmp_path / "data", store_uri=backend_uri(request), now=CLOCK)
    yield runtime
    runtime.close()


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _event(event_id: str, day: int, **who: str) -> dict[str, object]:
    return {"event_id": event_id, "channel": "web", "kind": "visit",
            "occurred_at": f"2026-05-{day:02}T10:00:00Z", "summary": f"page {event_id}", **who}


def _consent(purpose: str, status: str, day: int, **who: str) -> dict[str, object]:
    return {"purpose": purpose, "status": status, "at": f"2026-04-{day:02}T10:00:00Z", **who}


def _two(rt: Pacte, tmp_path: Path) -> tuple[str, str]:
    """Ann (older) and Bob as two customers, each with an event, Ann granted marketing
    and analytics, Bob marketing only; their ids (Ann's first)."""
    crm = _jsonl(tmp_path / "crm.jsonl", [
        {"customer_id": "C1", "email": "ann@example.com", "name": "Annika Vestergaard",
         "created_at": "2020-01-01T00:00:00Z"},
        {"customer_id": "C2", "email": "bob@example.com", "name": "Bartholomew Okafor",
         "created_at": "2021-01-01T00:00:00Z"}])
    events = _jsonl(tmp_path / "events.jsonl", [
        _event("e-ann", 1, email="ann@example.com"), _event("e-bob", 2, email="bob@example.com")])
    consents = _jsonl(tmp_path / "consents.jsonl", [
        _consent("marketing", "granted", 1, customer_id="C1"),
        _consent("analytics", "granted", 1, customer_id="C1"),
        _consent("marketing", "granted", 2, customer_id="C2")])
    assert rt.ingest([crm, events, consents]).rejected == 0
    s = rt.operator_session()
    ann, bob = (s.customer_by_email(e) for e in ("ann@example.com", "bob@example.com"))
    assert ann is not None and bob is not None
    return ann.id, bob.id


def _merge_row(rt: Pacte, tmp_path: Path) -> None:
    """One record saying Ann's CRM id and Bob's email are one person."""
    report = rt.ingest([_jsonl(tmp_path / "link_events.jsonl", [
        _event("e-link", 4, customer_id="c-1", email="BOB@example.com")])])
    assert report.count("merged") == 1 and report.rejected == 0, report.summary()


def _visible(rt: Pacte, purpose: str, cid: str) -> bool:
    return rt.operator_session(purpose).customer(cid) is not None


def test_a_record_naming_two_customers_merges_them_into_the_older(
        rt: Pacte, tmp_path: Path) -> None:
    ann, bob = _two(rt, tmp_path)
    _merge_row(rt, tmp_path)
    assert rt._backend.store.count_nodes()["Customer"] == 1
    s = rt.operator_session()
    # The survivor keeps its id; the other id and every identifier find it.
    found = s.customer(bob)
    assert found is not None and found.id == ann
    assert s.customers_by_id([bob, ann])[bob].id == ann
    by_email = s.customer_by_email("bob@example.com")
    assert by_email is not None and by_email.id == ann
    assert [c.id for c in s.customers().items] == [ann]
    assert s.count_customers() == 1
    summaries = {i.fields["summary"] for i in s.interactions(ann).items}
    assert summaries == {"page e-ann", "page e-bob", "page e-link"}
    assert s.customer(ann).fields["email"] == "ann@example.com"  # type: ignore[union-attr]
    # Ingesting the same files again changes nothing; an event by Bob's email goes to Ann.
    again = rt.ingest([tmp_path / "crm.jsonl", tmp_path / "events.jsonl",
                       tmp_path / "link_events.jsonl"])
    assert again.read == again.count("unchanged"), again.summary()
    rt.ingest([_jsonl(tmp_path / "later.jsonl", [_event("e-3", 3, email="bob@example.com")])])
    assert len(rt.operator_session().interactions(ann).items) == 4
    assert rt._backend.store.count_nodes()["Customer"] == 1


def test_a_transitive_chain_of_merges_is_one_customer(rt: Pacte, tmp_path: Path) -> None:
    # A, B and C are strangers; A~B by email, then B~C by loyalty card: one person.
    crm = _jsonl(tmp_path / "crm.jsonl", [
        {"email": "a@example.com", "created_at": "2020-01-01T00:00:00Z"},
        {"customer_id": "B", "created_at": "2021-01-01T00:00:00Z"},
        {"loyalty_card": "LC-3", "created_at": "2022-01-01T00:00:00Z"}])
    rt.ingest([crm])
    assert rt._backend.store.count_nodes()["Customer"] == 3
    links = _jsonl(tmp_path / "links.jsonl", [
        _event("x1", 1, email="a@example.com", customer_id="b"),
        _event("x2", 2, customer_id="B", loyalty_card="lc 3"),
        _event("x1", 1, email="a@example.com", customer_id="b")])  # a repeat: no merge
    report = rt.ingest([links])
    assert report.count("merged") == 2 and report.rejected == 0, report.summary()
    assert report.count("unchanged") == 1
    assert rt._backend.store.count_nodes()["Customer"] == 1
    a = rt.operator_session().customer_by_email("a@example.com")
    assert a is not None
    lines = "\n".join(rt.explain_identity(a.id).lines())
    assert lines.count("merged c_") == 2 and "loyalty" in lines and "crm" in lines
    assert "a@example.com" not in lines and "LC3" not in lines


def test_consent_after_a_merge_is_the_intersection(rt: Pacte, tmp_path: Path) -> None:
    ann, bob = _two(rt, tmp_path)
    assert _visible(rt, "analytics", ann) and not _visible(rt, "analytics", bob)
    _merge_row(rt, tmp_path)
    # Analytics saw Ann, never Bob: it sees neither the merged customer nor Bob's data.
    assert not _visible(rt, "analytics", ann) and not _visible(rt, "analytics", bob)
    assert rt.operator_session("analytics").count_customers() == 0
    assert rt.operator_session("analytics").customers().items == []
    assert _visible(rt, "marketing", ann) and _visible(rt, "marketing.email", bob)
    # Both histories are kept: Ann's own choices, and the merge's narrowing of them.
    history = rt.operator_session("self_service").consent_history(ann)
    assert {(c.purpose, c.status, c.source) for c in history} >= {
        ("analytics", "granted", "import"), ("analytics", "withdrawn", "merge")}
    assert len([e for e in rt._backend.store.edges(bob, "CONSENTED_PART")]) == 1


def test_a_grant_of_one_side_only_never_reveals_the_other_under_that_purpose(
        rt: Pacte, tmp_path: Path) -> None:
    # Bob granted personalization, Ann never did; merged, Bob's events stay unseen by it.
    ann, bob = _two(rt, tmp_path)
    rt.ingest([_jsonl(tmp_path / "p.jsonl", [
        _consent("personalization", "granted", 3, customer_id="C2")])])
    assert _visible(rt, "personalization", bob)
    _merge_row(rt, tmp_path)
    for cid in (ann, bob):
        assert not _visible(rt, "personalization", cid)
    s = rt.operator_session("personalization")
    assert s.customers().items == [] and s.count_customers() == 0
    assert s.customers_by_id([ann, bob]) == {}
    with pytest.raises(NotFound):
        s.interactions(ann)


def test_merge_then_withdraw_then_unmerge(rt: Pacte, tmp_path: Path) -> None:
    ann, bob = _two(rt, tmp_path)
    _merge_row(rt, tmp_path)
    CLOCK.advance(days=1)
    rt.operator_session("self_service").withdraw_consent(ann, "marketing")
    assert not _visible(rt, "marketing", ann)
    # An event carrying only Bob's identifier arrives while they are one.
    rt.ingest([_jsonl(tmp_path / "later.jsonl", [_event("e-late", 9, email="bob@example.com")])])
    CLOCK.advance(days=1)
    assert rt.unmerge(bob) == ann
    assert rt._backend.store.count_nodes()["Customer"] == 2
    s = rt.operator_session()
    restored = s.customer(bob)
    assert restored is not None and restored.id == bob
    assert restored.fields["name"] == "Bartholomew Okafor"
    # Each gets its own events back, and Bob the one that arrived for him since.
    # (the event that said they were one stays with the survivor: it carried both)
    assert {i.fields["summary"] for i in s.interactions(ann).items} == {"page e-ann",
                                                                         "page e-link"}
    assert {i.fields["summary"] for i in s.interactions(bob).items} == {"page e-bob",
                                                                         "page e-late"}
    # Consent as it was, except the withdrawal made since, which holds for both.
    assert _visible(rt, "analytics", ann)  # Ann's own grant, no longer narrowed
    assert not _visible(rt, "marketing", ann) and not _visible(rt, "marketing", bob)
    by_email = s.customer_by_email("bob@example.com")
    assert by_email is not None and by_email.id == bob
    # Bob's identifiers find Bob again.
    rt.ingest([_jsonl(tmp_path / "after.jsonl", [_event("e-after", 10, email="bob@example.com")])])
    assert len(rt.operator_session().interactions(bob).items) == 3
    with pytest.raises(NotFound):
        rt.unmerge(bob)


def test_every_merge_and_unmerge_is_audited_without_values(rt: Pacte, tmp_path: Path) -> None:
    ann, bob = _two(rt, tmp_path)
    _merge_row(rt, tmp_path)
    rt.unmerge(bob)
    for cid in (ann, bob):
        uses = rt.operator_session("self_service").my_data_uses(cid, first=100)
        actions = [str(u.record.get("action")) for u in uses]
        assert "identity.merge" in actions and "identity.unmerge" in actions, actions
    trail = rt._backend.audit
    entries = [e.record for e in trail.entries(subject=None, after_seq=None, limit=10_000)
               if e.record.get("action") == "identity.merge"]
    assert len(entries) == 1
    merged = entries[0]
    assert merged["rule"] == "exact" and merged["identifier_kinds"] == ["crm", "email"]
    assert all(len(r) == 8 for r in merged["blind_refs"])  # type: ignore[union-attr]
    text = json.dumps([e.record for e in rt._backend.audit.entries(subject=None, after_seq=None,
                                                            limit=10_000)])
    for value in ("bob@example.com", "C1", "Bartholomew Okafor", ann, bob):
        assert value not in text


def test_the_export_of_a_merged_customer_holds_every_part(rt: Pacte, tmp_path: Path) -> None:
    ann, bob = _two(rt, tmp_path)
    _merge_row(rt, tmp_path)
    export = rt.operator_session("self_service").export(ann)
    assert export["customer"]["name"] == "Annika Vestergaard"
    assert [(p["id"], p["name"]) for p in export["merged_parts"]] == [(bob, "Bartholomew Okafor")]
    assert len(export["interactions"]) == 3


def test_erasing_a_merged_customer_erases_every_part(rt: Pacte, tmp_path: Path) -> None:
    ann, bob = _two(rt, tmp_path)
    _merge_row(rt, tmp_path)
    receipt = rt.operator_session("self_service").erase(ann)
    assert receipt["destroyed"]["MergedCustomer"] == 1
    assert rt._backend.vault.is_destroyed(ann) and rt._backend.vault.is_destroyed(bob)
    assert rt._backend.store.get_nodes([ann, bob]) == {}
    assert rt._backend.store.count_nodes().get("Interaction", 0) == 0
    left = [e for entries in rt._backend.store.iter_index() for e in entries
            if e.node_id in (ann, bob)]
    assert left == []
    # Nothing remembers either of them: the same rows make new strangers.
    report = rt.ingest([tmp_path / "crm.jsonl"])
    assert report.count("created") == 2


def test_no_identifier_is_in_plaintext_after_a_merge(tmp_path: Path) -> None:
    with Pacte.init(tmp_path / "data", now=FakeClock()) as rt:
        _two(rt, tmp_path)
        _merge_row(rt, tmp_path)
        rt._backend.store.checkpoint()  # type: ignore[attr-defined]
    raw = b"\x00".join(p.read_bytes() for p in sorted((tmp_path / "data").rglob("*"))
                       if p.is_file())
    # Whole names: a needle of three bytes turns up by chance in a few hundred KiB of
    # ciphertext (about one run in twenty).
    for needle in ("ann@example.com", "bob@example.com", "BOB@example.com",
                   "Annika Vestergaard", "Bartholomew Okafor"):
        for encoded in (needle.encode(), needle.encode("utf-16-le")):
            assert encoded not in raw, needle


def test_the_cli_unmerges_and_explains(tmp_path: Path) -> None:
    with Pacte.init(tmp_path / "data") as rt:
        ann, bob = _two(rt, tmp_path)
        _merge_row(rt, tmp_path)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pacte", *args, "--data",
                               str(tmp_path / "data")], cwd=ROOT, capture_output=True,
                              text=True, check=False)

    explained = cli("identity", "explain", ann)
    assert explained.returncode == 0 and f"merged {bob} into it" in explained.stdout
    done = cli("identity", "unmerge", bob)
    assert done.returncode == 0, done.stderr
    assert ann in done.stdout
    again = cli("identity", "unmerge", bob)
    assert again.returncode != 0 and "not a merged customer" in again.stderr


def test_graphql_customer_by_an_old_id_answers_with_the_survivor(
        rt: Pacte, tmp_path: Path) -> None:
    from pacte.api import create_app
    from tests.api.conftest import Api

    ann, bob = _two(rt, tmp_path)
    rt.ingest([_jsonl(tmp_path / "p.jsonl", [
        _consent("personalization", "granted", 3, customer_id="C2")])])
    _merge_row(rt, tmp_path)
    _, key = rt.create_principal(name="shop", role="app",
                                 purposes=["service", "personalization"])
    api = Api(create_app(rt))
    try:
        query = ("query($id: ID!) { customer(id: $id) { id name "
                 "interactions(first: 10) { edges { node { summary } } } } }")
        got = api.data(query, key=key, purpose="service", variables={"id": bob})["customer"]
        assert got["id"] == ann and got["name"] == "Annika Vestergaard"
        assert {e["node"]["summary"] for e in got["interactions"]["edges"]} == {
            "page e-ann", "page e-bob", "page e-link"}
        # Personalization saw Bob only: the merged customer is hidden from it, by
        # either id.
        for cid in (ann, bob):
            hidden = api.data(query, key=key, purpose="personalization",
                              variables={"id": cid})
            assert hidden["customer"] is None
    finally:
        api.close()


def test_a_grant_that_ends_sooner_on_one_side_ends_then_for_the_merged_customer(
        rt: Pacte, tmp_path: Path) -> None:
    from datetime import timedelta

    ann, bob = _two(rt, tmp_path)
    s = rt.operator_session("self_service")
    s.grant_consent(ann, "personalization", source="app")
    s.grant_consent(bob, "personalization", source="app",
                    until=CLOCK.now + timedelta(days=3))
    _merge_row(rt, tmp_path)
    assert _visible(rt, "personalization", ann)
    CLOCK.advance(days=4)
    assert not _visible(rt, "personalization", ann)


def test_a_lookup_never_opens_a_merged_part_the_purpose_cannot_see(
        rt: Pacte, tmp_path: Path) -> None:
    """Found by review: the lookup decrypted a merged part's email before asking whether
    the purpose sees its survivor, and named no one in the entry."""
    ann, _bob = _two(rt, tmp_path)
    _merge_row(rt, tmp_path)
    rt.operator_session("self_service").withdraw_consent(ann, "marketing", source="test")
    CLOCK.advance(seconds=2)
    codec = rt._backend.codec
    opened: list[str] = []
    real = codec.open

    def spy(node: Any, names: Any) -> Any:
        opened.append(node.id)
        return real(node, names)

    codec.open = spy  # type: ignore[method-assign]
    try:
        assert rt.operator_session("marketing").customer_by_email("bob@example.com") is None
        assert opened == []  # nothing of anyone was decrypted to say "nobody"
        found = rt.operator_session("service").customer_by_email("bob@example.com")
    finally:
        codec.open = real  # type: ignore[method-assign]
    assert found is not None and found.id == ann
    entry = rt._backend.audit.entries(subject=None, after_seq=None, limit=10_000)[-1].record
    assert entry["action"] == "customer.lookup" and len(entry["subjects"]) == 2  # + the part
