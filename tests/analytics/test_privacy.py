"""G9, G3 and G10 for analysts, end to end on a seeded data directory: try to break them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pacte.analytics import FORMATS, build_projection, export, report
from pacte.analytics.projection import _detail, pseudonym
from pacte.cli import app
from pacte.errors import Forbidden, PolicyDenied, PurposeNotGranted
from pacte.graph.principals import Principal
from pacte.runtime import Pacte
from tests.analytics.conftest import SEEDED_CUSTOMERS, all_customers, consenting

KEY = b"a fixed key, for tests only....."


def analyst(rt: Pacte, *purposes: str) -> Principal:
    principal, _ = rt.create_principal(name="ana", role="analyst",
                                       purposes=purposes or ("analytics",))
    return principal


def secrets_of(rt: Pacte) -> dict[str, list[bytes]]:
    """Real values to hunt for: names, emails, phones, raw ids, and stored ciphertexts."""
    views = rt.operator_session("service").customers(first=100).items
    found: dict[str, list[bytes]] = {"name": [], "email": [], "phone": [], "id": [],
                                     "ciphertext": []}
    for v in views:
        for f in ("name", "email", "phone"):
            value = v.get(f)
            if isinstance(value, str) and value:
                found[f].append(value.encode())
        found["id"].append(v.id.encode())
    nodes = rt._backend.store.get_nodes([v.id for v in views])
    for node in nodes.values():
        for value in node.props.values():
            if isinstance(value, bytes) and len(value) >= 16:
                found["ciphertext"].extend([value[-24:], base64.b64encode(value)[:32],
                                            value.hex()[:32].encode()])
    assert all(found.values()), "the seed should give every kind of value"
    return found


def assert_clean(blob: bytes, hunted: dict[str, list[bytes]], where: str) -> None:
    for kind, values in hunted.items():
        for value in values:
            assert value not in blob, f"{kind} {value[:12]!r}... found in {where}"


# -- nothing identifying leaves ---------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_exports_hold_no_identifier_or_ciphertext(rt: Pacte, out: Path, fmt: str) -> None:
    hunted = secrets_of(rt)
    projection = build_projection(rt.session(analyst(rt), "analytics"))
    assert projection.customers > 0
    path = export(projection, format=fmt, directory=out).path  # type: ignore[arg-type]
    assert path.parent == out and path.suffix == f".{fmt}"
    blob = path.read_bytes()
    assert_clean(blob, hunted, path.name)
    assert b"b'" not in blob and b"bytes" not in blob
    assert b"customer:" in blob  # there are customers in it, under pseudonyms


def test_the_projection_itself_holds_no_identifier_or_ciphertext(rt: Pacte) -> None:
    hunted = secrets_of(rt)
    projection = build_projection(rt.session(analyst(rt), "analytics"))
    # Neither what the analyst holds nor the detail the analyses read inside pacte.
    for g in (projection.graph, _detail(projection)):
        values = [str(n) for n in g] + [repr(d) for _, d in g.nodes(data=True)] + [
            repr(d) for *_, d in g.edges(data=True)]
        assert_clean("\n".join(values).encode(), hunted, "the projection")
        for node, data in g.nodes(data=True):
            if data["kind"] == "customer":
                assert set(data) <= {"kind", "segment", "age_band", "label"}
                # The label says no more than the pseudonymous node id it is cut from.
                label = data.get("label")
                assert label is None or label == f"customer {node.rsplit(':', 1)[-1][:8]}"
        assert not any(isinstance(v, bytes) for _, d in g.nodes(data=True) for v in d.values())


def test_report_holds_no_identifier(rt: Pacte, out: Path) -> None:
    hunted = secrets_of(rt)
    projection = build_projection(rt.session(analyst(rt), "analytics"))
    page = report(projection, directory=out)
    for f in out.iterdir():
        assert_clean(f.read_bytes(), hunted, f.name)
    html = page.read_text(encoding="utf-8")
    assert "customer:" not in html  # no pseudonym either: aggregates only


def test_two_exports_share_no_pseudonym(rt: Pacte, out: Path) -> None:
    def customers_in(path: Path) -> set[str]:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {n["id"] for n in doc["nodes"] if n.get("kind") == "customer"}

    who = analyst(rt)
    one = build_projection(rt.session(who, "analytics"))
    two = build_projection(rt.session(who, "analytics"))
    a = customers_in(export(one, format="json", directory=out).path)
    b = customers_in(export(one, format="json", directory=out).path)  # same projection
    c = customers_in(export(two, format="json", directory=out).path)
    assert len(a) == len(b) == len(c) == one.customers > 0
    assert a.isdisjoint(b) and a.isdisjoint(c) and b.isdisjoint(c)
    assert a.isdisjoint(one.nodes("customer"))  # not even the projection's own pseudonyms
    assert set(one.nodes("customer")).isdisjoint(two.nodes("customer"))


def test_exported_groups_have_five_customers(rt: Pacte, out: Path) -> None:
    projection = build_projection(rt.session(analyst(rt), "analytics"))
    doc = json.loads(export(projection, format="json", directory=out).path.read_text())
    others = [n for n in doc["nodes"] if n["kind"] != "customer"]
    assert others and all(n["customers"] >= 5 for n in others)
    kept = {n["id"] for n in doc["nodes"]}
    assert all(e["source"] in kept and e["target"] in kept for e in doc["edges"])
    assert not any("at" in e or "amount" in e for e in doc["edges"])  # exact values never
    assert all(len(e.get("months", "2026-01")) in (7, 15) for e in doc["edges"])  # months


# -- only consented customers -----------------------------------------------------------


def test_only_customers_consenting_to_analytics_are_projected(rt: Pacte) -> None:
    everyone = {c.id for c in all_customers(rt)}
    yes = consenting(rt, "analytics")
    assert len(everyone) == SEEDED_CUSTOMERS and 0 < len(yes) < len(everyone)
    projection = build_projection(rt.session(analyst(rt), "analytics"), key=KEY)
    nodes = set(projection.nodes("customer"))
    assert nodes == {pseudonym(KEY, c) for c in yes}


def test_a_withdrawal_removes_the_customer_from_the_next_projection(rt: Pacte) -> None:
    who = analyst(rt)
    before = build_projection(rt.session(who, "analytics"), key=KEY)
    # The most connected consenting customer, so their edges are worth checking too.
    was = _detail(before)
    target = max(consenting(rt, "analytics"), key=lambda c: was.degree(pseudonym(KEY, c)))
    node = pseudonym(KEY, target)
    assert node in was and node in before.graph
    rt.operator_session("self_service").withdraw_consent(target, "analytics")
    after = build_projection(rt.session(who, "analytics"), key=KEY)
    now = _detail(after)
    assert node not in now and node not in after.graph
    assert after.anonymity.customers == before.anonymity.customers - 1
    assert now.number_of_edges() == was.number_of_edges() - was.degree(node)


# -- the door: who may build a projection, and what analysts may not do -------------------


def test_an_app_cannot_build_a_projection(rt: Pacte) -> None:
    crm, _ = rt.create_principal(name="crm", role="app",
                                 purposes=["service", "analytics", "personalization"])
    with pytest.raises(PurposeNotGranted):
        build_projection(rt.session(crm, "analytics"))
    for purpose in ("service", "personalization"):
        with pytest.raises(PolicyDenied):
            build_projection(rt.session(crm, purpose))


def test_an_auditor_cannot_build_a_projection(rt: Pacte) -> None:
    auditor, _ = rt.create_principal(name="dpo", role="auditor", purposes=["legal"])
    with pytest.raises(PolicyDenied):
        build_projection(rt.session(auditor, "legal"))


def test_an_analyst_projects_only_under_an_analysts_only_purpose(rt: Pacte) -> None:
    who = analyst(rt, "analytics", "service")
    with pytest.raises(PurposeNotGranted):
        build_projection(rt.session(who, "service"))


def test_an_analyst_cannot_read_single_customers(rt: Pacte) -> None:
    session = rt.session(analyst(rt), "analytics")
    cid = next(iter(consenting(rt, "analytics")))
    email = rt.operator_session("service").customer(cid).get("email")  # type: ignore[union-attr]
    attempts = [
        lambda: session.customer(cid),
        lambda: session.customers_by_id([cid]),
        lambda: session.customers(first=5),
        lambda: session.customer_by_email(str(email)),
        lambda: session.count_customers(),
        lambda: session.interactions(cid),
        lambda: session.products_of(cid),
        lambda: session.devices(cid),
        lambda: session.referrals(cid),
        lambda: session.consents(cid),
        lambda: session.recommendations(cid),
        lambda: session.export(cid),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden):
            attempt()


def last_entries(rt: Pacte) -> list:
    """The trail's last page of entries (a seeded trail has thousands)."""
    page, after = rt._backend.audit.entries(limit=1000), None
    while len(page) == 1000:
        after = page[-1].seq
        nxt = rt._backend.audit.entries(after_seq=after, limit=1000)
        if not nxt:
            break
        page = nxt
    return page


# -- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_export_writes_in_the_current_directory(rt: Pacte, out: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   fmt: str) -> None:
    monkeypatch.chdir(out)
    result = CliRunner().invoke(app, ["analytics", "export", "--format", fmt,
                                      "--data", str(rt.data_dir)])
    assert result.exit_code == 0, result.stderr
    name, said = result.stdout.strip().splitlines()
    assert (out / name).is_file() and name.endswith(f".{fmt}")
    assert_clean((out / name).read_bytes(), secrets_of(rt), name)
    assert said.startswith("k-anonymity: k=5 asked, smallest class ")
    blob = (out / name).read_text(encoding="utf-8")
    assert "k_achieved" in blob and "suppression_rate" in blob  # in the file's metadata
    # ... and in the export's audit entry, through the operator's session.
    entry = [e.record for e in last_entries(rt) if e.record["action"] == "analytics.export"][-1]
    assert entry["format"] == fmt and entry["principal"] == "pr_operator"
    assert entry["k_achieved"] >= 5 and "suppression_rate" in entry


def test_cli_report_prints_the_html_path(rt: Pacte, out: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(out)
    result = CliRunner().invoke(app, ["analytics", "report", "--data", str(rt.data_dir)])
    assert result.exit_code == 0, result.stderr
    page = Path(result.stdout.strip())
    assert page.is_file() and page.suffix == ".html" and page.parent == out
    assert list(out.iterdir()) == [page]  # one self-contained file


def test_cli_refuses_an_unknown_format(rt: Pacte) -> None:
    result = CliRunner().invoke(app, ["analytics", "export", "--format", "csv",
                                      "--data", str(rt.data_dir)])
    assert result.exit_code == 2 and "graphml, gexf, json" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["export", "--format", "graphml"], ["report"]])
def test_cli_leaves_no_file_whose_release_was_not_recorded(
        rt: Pacte, out: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    from pacte.errors import StorageError
    from pacte.graph.session import Session

    def refused(self: Session, action: str, **kwargs: object) -> None:
        raise StorageError("the audit trail is unavailable")

    monkeypatch.chdir(out)
    monkeypatch.setattr(Session, "record_release", refused)
    result = CliRunner().invoke(app, ["analytics", *args, "--data", str(rt.data_dir)])
    assert result.exit_code == 1, result.stderr
    assert result.stderr == "error: the audit trail is unavailable\n"
    assert not [p for p in out.iterdir() if p.suffix in (".graphml", ".html")]
