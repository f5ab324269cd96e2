"""The session is the one door: G2 (purpose), G3 (opt-in), G4 (need to know), G5, G10.

The matrix crosses role x purpose x consent state x field and checks every answer
against the policy, looking for leaks in lists, counts, traversals and error texts.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import pacte.graph.session as session_module
from pacte.errors import (
    Forbidden,
    InputError,
    NotFound,
    PacteError,
    PurposeNotGranted,
    PurposeRequired,
    UnknownPurpose,
)
from pacte.graph.model import NODE_KINDS
from pacte.graph.neo4j_store import Neo4jStore
from pacte.graph.session import Session
from tests.conftest import MODES, backend_uri
from tests.helpers import STATES, VISIBLE_UNDER, World, build_world, record_decrypts
from tests.neo4j_fixture import server_reads


@pytest.fixture(scope="module", params=MODES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    """The same world on every backend: the matrix must hold on SQLite and on Neo4j."""
    uri = backend_uri(request)
    w = build_world(tmp_path_factory.mktemp("world"), store_uri=uri)
    yield w
    w.rt.close()


def _audit_size(world: World) -> int:
    return world.rt._backend.audit.size()


def _expected_visible(world: World, purpose_id: str, state: str) -> bool:
    purpose = world.rt._backend.policy.purposes[purpose_id]
    return not purpose.needs_consent or purpose_id in VISIBLE_UNDER[state]


def _no_personal_value(world: World, text: str) -> None:
    for values in world.plaintext.values():
        for v in values.values():
            assert v not in text


ROLES = ("app", "auditor", "admin")
PURPOSES = ("service", "self_service", "marketing", "marketing.email", "marketing.sms",
            "personalization", "legal")


@pytest.mark.parametrize(("role", "purpose"), list(itertools.product(ROLES, PURPOSES)))
def test_matrix_role_purpose_consent_field(world: World, role: str, purpose: str) -> None:
    principal = world.principals[role]
    if not principal.may_claim(purpose):
        before = _audit_size(world)
        with pytest.raises(PurposeNotGranted) as err:
            world.rt.session(principal, purpose)
        assert _audit_size(world) == before + 1  # the refusal is on record
        _no_personal_value(world, str(err.value))
        return
    session = world.rt.session(principal, purpose)
    policy_purpose = world.rt._backend.policy.purposes[purpose]
    listed = {v.id for v in session.customers(first=100).items}
    visible_count = session.count_customers()
    expected_ids = {cid for state, cid in world.customers.items()
                    if _expected_visible(world, purpose, state)}
    assert listed == expected_ids
    assert visible_count == len(expected_ids)
    buyers = {v.id for v in session.buyers(world.product)}
    if role != "auditor" and policy_purpose.may_use("user.financial"):
        assert buyers == expected_ids
    else:
        assert buyers == set()
    for state in STATES:
        cid = world.customers[state]
        view = session.customer(cid)
        if not _expected_visible(world, purpose, state):
            assert view is None
            with pytest.raises(NotFound) as err:
                session.interactions(cid)
            assert str(err.value) == f"no customer {cid!r}"  # same text, absent or hidden
            continue
        assert view is not None
        withheld = {w.field: w.reason for w in view.withheld}
        for f in NODE_KINDS["Customer"].fields:
            allowed = f.category is None or (role != "auditor"
                                             and policy_purpose.may_use(f.category))
            if allowed:
                assert f.name in view.fields and f.name not in withheld
                if f.name in world.plaintext[cid]:
                    assert view.fields[f.name] == world.plaintext[cid][f.name]
            else:
                assert f.name not in view.fields, (role, purpose, f.name)
                assert withheld[f.name]
        assert set(view.fields) | set(withheld) == {f.name for f in
                                                     NODE_KINDS["Customer"].fields}
    # A traversal from a visible customer never reveals hidden ones.
    granted = world.customers["granted"]
    if _expected_visible(world, purpose, "granted"):
        referred = {v.id for v in session.referrals(granted)}
        assert referred == expected_ids - {granted}


def test_no_purpose_is_refused_and_audited(world: World) -> None:
    for missing in (None, ""):
        before = _audit_size(world)
        with pytest.raises(PurposeRequired):
            world.rt.session(world.principals["app"], missing)
        assert _audit_size(world) == before + 1
        last = world.rt._backend.audit.entries(after_seq=before - 1, limit=1)[0]
        assert last.record["outcome"] == "denied"
        assert last.record["reason"] == "PURPOSE_REQUIRED"


def test_an_unknown_purpose_is_told_apart_from_an_ungranted_one(world: World) -> None:
    # Which purposes exist is public (the policy), so saying "unknown" leaks nothing;
    # an unknown purpose is still a PurposeNotGranted for callers catching that.
    with pytest.raises(UnknownPurpose) as unknown:
        world.rt.session(world.principals["app"], "astrology")
    with pytest.raises(PurposeNotGranted) as ungranted:
        world.rt.session(world.principals["auditor"], "service")
    assert unknown.value.code == "UNKNOWN_PURPOSE" and "unknown purpose" in str(unknown.value)
    assert isinstance(unknown.value, PurposeNotGranted)
    assert ungranted.value.code == "PURPOSE_NOT_GRANTED" and "not granted" in str(
        ungranted.value)


def test_analysts_get_no_single_records(world: World) -> None:
    session = world.rt.session(world.principals["analyst"], "analytics")
    for call in (lambda: session.customer(world.customers["granted"]),
                 lambda: session.customers(),
                 lambda: session.count_customers(),
                 lambda: session.customer_by_email("zelda.quorn1@example.com")):
        with pytest.raises(Forbidden):
            call()
    with pytest.raises(PurposeNotGranted):
        world.rt.session(world.principals["app"], "analytics")


def test_lookup_by_email_respects_consent_and_need_to_know(world: World) -> None:
    granted = world.customers["granted"]
    email = world.plaintext[granted]["email"]
    app = world.principals["app"]
    view = world.rt.session(app, "marketing.email").customer_by_email("  " + email.upper())
    assert view is not None and view.id == granted
    hidden = world.plaintext[world.customers["none"]]["email"]
    assert world.rt.session(app, "marketing.email").customer_by_email(hidden) is None
    assert world.rt.session(app, "service").customer_by_email(hidden) is not None
    with pytest.raises(PurposeNotGranted, match=r"user\.contact\.email"):
        world.rt.session(app, "marketing.sms").customer_by_email(email)


def test_a_lookup_by_email_opens_each_field_once(world: World,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    granted = world.customers["granted"]
    email = world.plaintext[granted]["email"]
    opened = record_decrypts(world, monkeypatch)
    session = world.rt.session(world.principals["app"], "service")
    view = session.customer_by_email(email)
    assert view is not None and view.get("email") == email
    # The email confirmed the match; the view reuses it instead of decrypting it again.
    assert opened.count("email") == 1 and len(opened) == len(set(opened))
    # In catalogue order, as when nothing was opened beforehand.
    assert list(view.fields) == [f.name for f in NODE_KINDS["Customer"].fields
                                 if f.name in view.fields]
    named = session.customer_by_email(email, fields=["name", "email"])
    assert named is not None and list(named.fields) == ["name", "email"]
    assert named.get("name") == world.plaintext[granted]["name"]


def test_consenting_customers_are_listed_page_by_page_in_id_order(
        tmp_path: Path, store_uri: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(tmp_path, store_uri=store_uri)
    world.rt.seed(40, seed=3)  # consents to the purpose, to its parent, withdrawn, expired
    # Tiny rounds of candidates, so a page needs several and crosses their bounds.
    monkeypatch.setattr(session_module, "_CONSENT_PAGE", 1)
    monkeypatch.setattr(session_module, "_CONSENT_BULK", 4)
    app = world.principals["app"]
    everyone = world.rt.operator_session("service").customers(first=100).items
    # Consents to the parent purpose, interleaved in id order with the purpose's own,
    # so both candidate streams fill their pages and their bounds differ; most are
    # withdrawn again, so a round of candidates often holds too few visible customers.
    for n, c in enumerate(everyone):
        world.rt.session(app, "self_service").grant_consent(c.id, "marketing", source="test")
        world.clock.advance(seconds=1)
        if n % 5:
            world.rt.session(app, "self_service").withdraw_consent(c.id, "marketing")
            world.clock.advance(seconds=1)
    # The oracle: one lookup per customer, checked by the single-record path.
    expected = sorted(c.id for c in everyone
                      if world.rt.session(app, "marketing.email").customer(c.id) is not None)
    assert 5 < len(expected) < len(everyone)
    for size in (1, 3, 7):
        listed: list[str] = []
        after = None
        while True:
            page = world.rt.session(app, "marketing.email").customers(first=size, after=after)
            listed += [v.id for v in page.items]
            if not page.has_next:
                break
            after = page.end_cursor
        assert listed == expected
    # Counting reads the same rounds to the end.
    assert world.rt.session(app, "marketing.email").count_customers() == len(expected)
    world.rt.close()


def test_withdrawal_holds_on_the_very_next_call(tmp_path: Path, store_uri: str | None) -> None:
    world = build_world(tmp_path, store_uri=store_uri)
    cid = world.customers["granted"]
    app = world.principals["app"]
    marketing = world.rt.session(app, "marketing.email")
    assert marketing.customer(cid) is not None
    # Another handle of the same data (another process, or another attached server),
    # which has read the customer already.
    other = world.another()
    assert other.session(app, "marketing.email").customer(cid) is not None
    world.rt.session(app, "self_service").withdraw_consent(cid, "marketing.email")
    assert world.rt.session(app, "marketing.email").customer(cid) is None
    try:
        assert other.session(app, "marketing.email").customer(cid) is None
        assert cid not in {v.id for v in other.session(app, "marketing.email").customers().items}
    finally:
        other.close()
    world.rt.close()


def test_retention_cuts_at_the_exact_boundary(tmp_path: Path, store_uri: str | None) -> None:
    world = build_world(tmp_path, store_uri=store_uri)
    cid = world.customers["parent"]
    app = world.principals["app"]
    op = world.rt.operator_session("service")
    days = world.rt._backend.policy.purposes["marketing.sms"].retention_days
    edge_time = world.clock.now - timedelta(days=days)
    op.record_interaction(customer_id=cid, channel="sms", kind="campaign", event_id="old",
                          occurred_at=edge_time, summary="exactly at the horizon")
    op.record_interaction(customer_id=cid, channel="sms", kind="campaign", event_id="older",
                          occurred_at=edge_time - timedelta(microseconds=1),
                          summary="one microsecond too old")
    seen = [v.fields.get("summary") for v in
            world.rt.session(app, "marketing.sms").interactions(cid, first=50).items]
    assert "exactly at the horizon" not in seen  # summary is not a marketing category
    events = [v.fields.get("kind") for v in
              world.rt.session(app, "marketing.sms").interactions(cid, first=50).items]
    assert events.count("campaign") == 1
    service = [v.fields.get("summary") for v in
               world.rt.session(app, "self_service").interactions(cid, first=50).items]
    assert "exactly at the horizon" in service and "one microsecond too old" in service
    world.rt.close()


def test_interactions_page_with_cursor_and_channel(tmp_path: Path, store_uri: str | None) -> None:
    world = build_world(tmp_path, store_uri=store_uri)
    cid = world.customers["none"]
    op = world.rt.operator_session("service")
    for n in range(30):
        op.record_interaction(customer_id=cid, channel="email" if n % 3 else "web",
                              kind="visit", event_id=f"page-{n}",
                              occurred_at=world.clock.now - timedelta(hours=n))
    session = world.rt.session(world.principals["app"], "service")
    ids: list[str] = []
    after = None
    while True:
        page = session.interactions(cid, first=7, after=after)
        ids.extend(v.id for v in page.items)
        if not page.has_next:
            break
        after = page.end_cursor
    assert len(ids) == len(set(ids)) == 31
    web = session.interactions(cid, first=50, channel="web").items
    assert len(web) == 10 and all(v.fields["channel"] == "web" for v in web)
    with pytest.raises(InputError):
        session.interactions(cid, channel="pigeon")
    with pytest.raises(InputError):
        session.interactions(cid, after="%%%not-a-cursor")
    world.rt.close()


def test_record_interaction_is_idempotent_on_event_id(tmp_path: Path,
                                                       store_uri: str | None) -> None:
    world = build_world(tmp_path, store_uri=store_uri)
    cid = world.customers["none"]
    op = world.rt.operator_session("service")
    first = op.record_interaction(customer_id=cid, channel="web", kind="visit",
                                  event_id="same", summary="hello")
    again = op.record_interaction(customer_id=cid, channel="web", kind="visit",
                                  event_id="same", summary="hello")
    assert first.id == again.id
    with pytest.raises(InputError):
        op.record_interaction(customer_id=world.customers["granted"], channel="web",
                              kind="visit", event_id="same")
    world.rt.close()


def test_writes_need_the_right_purpose_and_role(world: World) -> None:
    cid = world.customers["granted"]
    with pytest.raises(PurposeNotGranted, match="self_service"):
        world.rt.session(world.principals["app"], "service").grant_consent(
            cid, "marketing", source="web")
    with pytest.raises(Forbidden):
        world.rt.session(world.principals["auditor"], "legal").upsert_customer(
            id=cid, name="x")
    with pytest.raises(PurposeNotGranted):
        world.rt.session(world.principals["app"], "marketing.email").upsert_customer(
            name="New Person", email="new.person@example.com")
    with pytest.raises(PurposeNotGranted, match="phone"):
        world.rt.session(world.principals["app"], "marketing.email").upsert_customer(
            id=cid, phone="+15550000000")
    with pytest.raises(InputError, match="already belongs"):
        world.rt.session(world.principals["app"], "service").upsert_customer(
            name="Dup", email=world.plaintext[cid]["email"].upper())


def test_denials_and_errors_never_echo_personal_values(world: World) -> None:
    app = world.principals["app"]
    hidden = world.customers["none"]
    attempts = [
        lambda: world.rt.session(app, "marketing.email").interactions(hidden),
        lambda: world.rt.session(app, "marketing.email").consents(hidden),
        lambda: world.rt.session(app, "service").upsert_customer(
            name="x", email=world.plaintext[hidden]["email"]),
        lambda: world.rt.session(app, "marketing.sms").customer_by_email(
            world.plaintext[hidden]["email"]),
    ]
    for attempt in attempts:
        with pytest.raises(PacteError) as err:
            attempt()
        _no_personal_value(world, str(err.value))


def test_explain_decrypts_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("explain must not decrypt")

    monkeypatch.setattr(world.rt._backend.cipher, "decrypt", boom)
    ex = world.rt.session(world.principals["app"], "marketing.email").explain(
        customer_id=world.customers["none"])
    assert "email" in ex.revealed and "phone" not in ex.revealed
    assert {w.field for w in ex.withheld} >= {"phone", "address", "birth_date"}
    assert ex.consent_required and ex.subject_visible is False


def test_withheld_fields_are_never_decrypted(world: World, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    opened = record_decrypts(world, monkeypatch)
    session = world.rt.session(world.principals["app"], "marketing.email")
    session.customer(world.customers["granted"])
    session.interactions(world.customers["granted"])
    assert set(opened) == {"name", "email"}


def test_every_session_call_is_audited(world: World) -> None:
    session: Session = world.rt.session(world.principals["app"], "service")
    calls = [
        lambda: session.customer(world.customers["none"]),
        lambda: session.customers(first=3),
        lambda: session.interactions(world.customers["none"]),
        lambda: session.consents(world.customers["none"]),
        lambda: session.products_of(world.customers["none"]),
        lambda: session.count_customers(),
    ]
    for call in calls:
        before = _audit_size(world)
        call()
        assert _audit_size(world) == before + 1
        entry = world.rt._backend.audit.entries(after_seq=before - 1, limit=1)[0]
        assert entry.record["purpose"] == "service"
        assert entry.record["principal"] == world.principals["app"].id


def test_a_failing_audit_fails_the_request(world: World, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    from pacte.errors import StorageError

    def broken(records: object) -> int:
        raise StorageError("audit store is full")

    monkeypatch.setattr(world.rt._backend, "audit_append", broken)
    session = world.rt.session(world.principals["app"], "service")
    with pytest.raises(StorageError):
        session.customer(world.customers["none"])


def test_consents_at_answers_what_was_allowed_on_a_past_date(world: World) -> None:
    from datetime import timedelta

    cid = world.customers["withdrawn"]
    session = world.rt.session(world.principals["app"], "self_service")
    now = {c.purpose: c.status for c in session.consents(cid)}
    assert now == {"marketing.email": "withdrawn"}
    then = {c.purpose: c.status for c in session.consents(
        cid, at=world.clock.now - timedelta(days=2, seconds=1))}
    assert then == {"marketing.email": "granted"}
    expired = world.customers["expired"]
    assert {c.purpose: c.status for c in session.consents(expired)} == {
        "marketing.email": "expired"}
    history = session.consent_history(cid)
    assert [c.status for c in history] == ["withdrawn", "granted"]


def test_products_by_id_reads_many_in_one_audited_call(world: World) -> None:
    session = world.rt.session(world.principals["app"], "service")
    before = _audit_size(world)
    found = session.products_by_id([world.product, "p_missing", world.product])
    assert list(found) == [world.product] and found[world.product].name == "Lamp"
    assert _audit_size(world) == before + 1


def test_a_channel_filter_decrypts_only_the_rows_it_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(tmp_path)
    cid = world.customers["none"]
    op = world.rt.operator_session("service")
    for n in range(12):
        op.record_interaction(customer_id=cid, channel="web" if n % 4 == 0 else "email",
                              kind="visit", event_id=f"f-{n}", summary=f"visit {n}",
                              occurred_at=world.clock.now - timedelta(hours=n))
    opened = record_decrypts(world, monkeypatch)
    page = world.rt.session(world.principals["app"], "service").interactions(
        cid, first=50, channel="web")
    assert len(page.items) == 3
    assert opened.count("summary") == 3
    world.rt.close()


@pytest.mark.parametrize("purpose", ["service", "marketing.email"])
def test_a_read_scope_changes_no_answer_and_no_audit(world: World, purpose: str) -> None:
    """`around` (one round trip on Neo4j) returns and records exactly what plain reads do."""

    def read(session: Session, cid: str) -> tuple[object, ...]:
        try:
            page = session.interactions(cid, first=20)
            return (session.customer(cid), page.items, page.has_next,
                    session.products_of(cid), session.consents(cid))
        except NotFound as exc:
            return ("not found", str(exc))

    def steps(start: int) -> list[object]:
        entries = world.rt._backend.audit.entries(after_seq=start - 1, limit=100)
        return [{k: v for k, v in e.record.items() if k != "request_id"} for e in entries]

    for state, cid in world.customers.items():
        plain = world.rt.session(world.principals["admin"], purpose, defer_audit=True)
        start = _audit_size(world)
        expected = read(plain, cid)
        plain.flush()
        expected_audit = steps(start)
        scoped = world.rt.session(world.principals["admin"], purpose, defer_audit=True)
        start = _audit_size(world)
        with scoped.around(cid):
            got = read(scoped, cid)
        scoped.flush()
        assert got == expected, state
        assert steps(start) == expected_audit, state


def _server_reads(world: World, monkeypatch: pytest.MonkeyPatch) -> list[str] | None:
    """The operations of the reads the store sends to its server (None: not Neo4j)."""
    store = world.rt._backend.store
    return server_reads(store, monkeypatch) if isinstance(store, Neo4jStore) else None


def test_a_lookup_in_a_read_scope_changes_no_answer_and_no_audit(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lookup by email inside a read scope (one round trip on Neo4j when it finds a
    visible customer) returns and records what a plain lookup does; a miss and a hidden
    match make the same round trips (G3, timing)."""

    def steps(start: int) -> list[object]:
        entries = world.rt._backend.audit.entries(after_seq=start - 1, limit=100)
        return [{k: v for k, v in e.record.items() if k != "request_id"} for e in entries]

    def read(session: Session, email: str) -> tuple[object, ...]:
        found = session.customer_by_email(email)
        if found is None:
            return (None,)
        # The 360 of the customer found: on Neo4j, no more round trips.
        return found, session.interactions(found.id, first=20).items, session.consents(
            found.id)

    emails = {state: world.plaintext[cid]["email"] for state, cid in world.customers.items()}
    # A miss whose decoy is the next customer in id order: one past the last customer
    # wraps around to the first, one scan more (as before scopes; see `_decoy_read`).
    last = max(world.customers.values())
    emails["absent"] = next(e for e in (f"nobody{n}@example.com" for n in range(100))
                            if f"c_{world.rt._backend.codec.token('Customer', 'email', e).hex()}"
                            < last)
    trips: dict[str, int] = {}
    for state, email in emails.items():
        plain = world.rt.session(world.principals["admin"], "marketing.email",
                                 defer_audit=True)
        start = _audit_size(world)
        expected = read(plain, email)
        plain.flush()
        expected_audit = steps(start)
        scoped = world.rt.session(world.principals["admin"], "marketing.email",
                                  defer_audit=True)
        start = _audit_size(world)
        with monkeypatch.context() as m:
            calls = _server_reads(world, m)
            with scoped.read_scope():
                got = read(scoped, email)
        scoped.flush()
        assert got == expected, state
        assert steps(start) == expected_audit, state
        if calls is not None:
            trips[state] = len(calls)
    if trips:  # Neo4j
        assert trips["granted"] == 1
        hidden = {trips[s] for s in world.customers if not _expected_visible(
            world, "marketing.email", s)}
        assert hidden == {trips["absent"]}


def test_a_page_in_a_read_scope_changes_no_answer_and_no_audit(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page of customers and the 360 of each, inside a read scope (one round trip on
    Neo4j under a purpose without consent), return and record what plain reads do."""

    def steps(start: int) -> list[object]:
        entries = world.rt._backend.audit.entries(after_seq=start - 1, limit=100)
        return [{k: v for k, v in e.record.items() if k != "request_id"} for e in entries]

    def read(session: Session, after: str | None) -> tuple[object, ...]:
        page = session.customers(first=4, after=after)
        return page, [(session.interactions(v.id, first=20).items, session.consents(v.id),
                       session.products_of(v.id)) for v in page.items]

    after = None
    for _ in range(3):  # the first page, and pages after a cursor
        plain = world.rt.session(world.principals["admin"], "service", defer_audit=True)
        start = _audit_size(world)
        expected = read(plain, after)
        plain.flush()
        expected_audit = steps(start)
        scoped = world.rt.session(world.principals["admin"], "service", defer_audit=True)
        start = _audit_size(world)
        with monkeypatch.context() as m:
            calls = _server_reads(world, m)
            with scoped.read_scope():
                got = read(scoped, after)
        scoped.flush()
        assert got == expected
        assert steps(start) == expected_audit
        if calls is not None:  # Neo4j
            assert calls == ["prefetch"]
        after = expected[0].end_cursor  # type: ignore[attr-defined]


# -- fields=: open only what the caller returns (DESIGN.md §9) ----------------------


def _last_record(world: World) -> dict[str, object]:
    record: dict[str, object] = world.rt._backend.audit.entries(
        after_seq=_audit_size(world) - 2, limit=1)[0].record
    return record


PERSONAL = [f.name for f in NODE_KINDS["Customer"].fields if f.personal]


def test_fields_none_opens_every_allowed_field(world: World, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    cid = world.customers["granted"]
    session = world.rt.session(world.principals["app"], "service")
    opened = record_decrypts(world, monkeypatch)
    default = session.customer(cid)
    default_fields = _last_record(world)["fields"]
    explicit = session.customer(cid, fields=None)
    assert explicit == default and _last_record(world)["fields"] == default_fields
    assert default is not None and list(default.fields) == [
        f.name for f in NODE_KINDS["Customer"].fields]
    assert default_fields == sorted(default.fields)
    assert sorted(opened) == sorted(PERSONAL * 2)
    opened.clear()
    views = session.customers_by_id(list(world.customers.values()), fields=None)
    assert sorted(opened) == sorted(PERSONAL * len(world.customers))
    assert all(set(v.fields) == set(default.fields) for v in views.values())
    opened.clear()
    items = session.interactions(cid, fields=None).items
    assert opened == ["summary"] * len(items) and items
    assert set(items[0].fields) == {f.name for f in NODE_KINDS["Interaction"].fields}


def test_fields_open_only_the_named_ones(world: World, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    cids = list(world.customers.values())
    session = world.rt.session(world.principals["app"], "service")
    opened = record_decrypts(world, monkeypatch)
    view = session.customer(cids[0], fields=["name"])
    assert view is not None and view.fields == {"name": world.plaintext[cids[0]]["name"]}
    assert view.withheld == ()
    assert opened == ["name"]
    assert _last_record(world)["fields"] == ["name"]
    opened.clear()
    views = session.customers_by_id(cids, fields={"email", "segment"})
    assert opened == ["email"] * len(cids)
    assert all(set(v.fields) == {"email", "segment"} for v in views.values())
    assert _last_record(world)["fields"] == ["email", "segment"]
    opened.clear()
    page = session.customers(first=4, fields=())
    assert opened == [] and len(page.items) == 4
    assert all(v.fields == {} for v in page.items)
    assert _last_record(world)["fields"] == []
    opened.clear()
    found = session.customer_by_email(world.plaintext[cids[1]]["email"], fields=["phone"])
    assert found is not None and set(found.fields) == {"phone"}
    assert sorted(opened) == ["email", "phone"]  # the email confirms the match
    assert _last_record(world)["fields"] == ["email", "phone"]
    opened.clear()
    items = session.interactions(cids[0], fields=["channel", "amount"]).items
    assert opened == [] and items
    assert all(set(i.fields) == {"channel", "amount"} for i in items)
    assert _last_record(world)["fields"] == ["amount", "channel"]


def test_a_field_the_purpose_may_not_use_stays_withheld_when_asked(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = world.customers["granted"]
    session = world.rt.session(world.principals["app"], "marketing.email")
    opened = record_decrypts(world, monkeypatch)
    asked = ["name", "phone", "address", "birth_date"]
    page = session.customers(first=100, fields=asked).items
    assert opened == ["name"] * len(page)
    for view in (session.customer(cid, fields=asked),
                 session.customers_by_id([cid], fields=asked)[cid],
                 next(v for v in page if v.id == cid)):
        assert view is not None and view.fields == {"name": world.plaintext[cid]["name"]}
        withheld = {w.field: w.reason for w in view.withheld}
        assert {"phone", "address", "birth_date"} <= set(withheld)
        assert "may not use" in withheld["phone"]
        assert _last_record(world)["fields"] == ["name"]
    assert opened == ["name"] * (len(page) + 2)
    opened.clear()
    # Only withheld fields asked for: nothing is opened, and the reasons still come back.
    view = session.customer(cid, fields=["phone"])
    assert view is not None and view.fields == {} and opened == []
    assert "phone" in {w.field for w in view.withheld}


def test_unknown_field_names_are_refused(world: World, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    cid = world.customers["granted"]
    session = world.rt.session(world.principals["app"], "service")
    opened = record_decrypts(world, monkeypatch)
    before = _audit_size(world)
    calls = [
        lambda: session.customer(cid, fields=["name", "shoe_size"]),
        lambda: session.customers_by_id([cid], fields=["shoe_size"]),
        lambda: session.customer_by_email(world.plaintext[cid]["email"],
                                          fields=["shoe_size"]),
        lambda: session.customers(fields=["shoe_size"]),
        lambda: session.customer(cid, fields="name"),  # a string is not a list of names
        # A Customer field is not an Interaction field.
        lambda: session.interactions(cid, fields=["channel", "shoe_size", "email"]),
    ]
    for call in calls:
        with pytest.raises(InputError, match=r"unknown (Customer|Interaction) field"):
            call()
    with pytest.raises(InputError) as err:
        session.interactions(cid, fields=["channel", "shoe_size", "email"])
    assert "'email', 'shoe_size'" in str(err.value) and "summary" in str(err.value)
    assert opened == []
    assert _audit_size(world) == before  # refused before anything was read
