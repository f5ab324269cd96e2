"""What the pages ask of the session door: the auditor's lookup by email, the trail's
filters and the verification's progress."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.errors import Forbidden
from tests.helpers import World, build_world, record_decrypts


@pytest.fixture
def world(tmp_path: Path, store_uri: str | None) -> Iterator[World]:
    w = build_world(tmp_path, store_uri=store_uri)
    yield w
    w.rt.close()


def test_an_auditor_finds_a_customer_by_email_without_opening_a_field(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = world.customers["granted"]
    email = world.plaintext[cid]["email"]
    opened = record_decrypts(world, monkeypatch)
    auditor = world.rt.session(world.principals["auditor"], "legal")
    assert auditor.audit_lookup(email.upper()) == [cid]  # normalised like every lookup
    assert auditor.audit_lookup("nobody@example.com") == []
    assert opened == []
    entries = auditor.audit_trail(action="audit.lookup", first=10)
    assert [e.record["outcome"] for e in entries] == ["ok", "not_found"]
    assert entries[0].record["subjects"] == [world.rt._backend.subject_ref(cid)]
    assert email not in str(entries[0].record)


def test_only_auditors_look_up_by_email(world: World) -> None:
    app = world.rt.session(world.principals["app"], "legal")
    with pytest.raises(Forbidden):
        app.audit_lookup(world.plaintext[world.customers["granted"]]["email"])


def test_verification_reports_its_progress(world: World) -> None:
    seen: list[tuple[int, int]] = []
    report = world.rt.session(world.principals["auditor"], "legal").audit_verification(
        progress=lambda checked, total: seen.append((checked, total)))
    assert report.ok and seen
    assert seen[-1] == (report.entries_checked, report.size)
    assert [c for c, _ in seen] == sorted(c for c, _ in seen)
