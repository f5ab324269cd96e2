"""`Pacte.ingest`: formats, kinds, mappings, idempotency, rejects, on both stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.errors import InputError, SourceError
from pacte.runtime import Pacte
from tests.conftest import BACKENDS, backend_uri
from tests.helpers import FakeClock
from tests.ingest.util import graph_digest, hold_writes

CRM = ("\ufeffcustomer_id;name;email;phone;birth_date;segment\n"
       'C1;"Lee; Ann";ann@example.com;+1 415 555 0101;1980-01-02;gold\n'
       "C2;Bob Roe;bob@example.com;(415) 555-0102;;silver\n")
ORDERS = ("order_id;line;email;product;quantity;amount;ordered_at;channel\n"
          "O-1;1;ANN@example.com ;SKU-1;1;12,50;2026-01-02T10:00:00Z;web\n"
          "O-1;2;ann@example.com;SKU-2;2;1.003,00;2026-01-02T10:00:00Z;web\n"
          "O-2;1;bob@example.com;SKU-1;1;7,5;2026-02-02T10:00:00Z;store\n")
TRACKER = [
    {"type": "event", "event_id": "e1", "user": {"email": "ann@example.com"},
     "device": {"serial": "SN-1"}, "channel": "app", "kind": "visit",
     "ts": "2026-01-03T00:00:00Z"},
    {"type": "event", "event_id": "e2", "device": {"serial": "sn 1"}, "channel": "app",
     "kind": "support", "ts": 1767225600},
    {"type": "consent", "user": {"email": "bob@example.com"}, "purpose": "marketing.email",
     "status": "yes", "ts": "2026-01-05T00:00:00Z"},
]
TRACKER_MAPPING = """
source = "tracker"
kind_field = "type"
[kinds]
event = "interactions"
consent = "consents"
[columns]
email = "user.email"
device_serial = "device.serial"
occurred_at = "ts"
at = "ts"
"""


@pytest.fixture(params=BACKENDS)
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pacte]:
    runtime = Pacte.init(tmp_path / "data", store_uri=backend_uri(request), now=FakeClock())
    yield runtime
    runtime.close()


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    crm = tmp_path / "crm.csv"
    crm.write_bytes(CRM.encode("utf-8"))
    orders = tmp_path / "shop_orders.csv"
    orders.write_text(ORDERS, encoding="utf-8")
    tracker = tmp_path / "tracker.jsonl"
    tracker.write_text("".join(json.dumps(r) + "\n" for r in TRACKER), encoding="utf-8")
    mapping = tmp_path / "tracker.toml"
    mapping.write_text(TRACKER_MAPPING, encoding="utf-8")
    return {"crm": crm, "orders": orders, "tracker": tracker, "mapping": mapping}


def _customer_by_email(rt: Pacte, email: str) -> str:
    view = rt.operator_session().customer_by_email(email)
    assert view is not None
    return view.id


def test_csv_and_jsonl_sources_build_one_customer_per_person(
        rt: Pacte, sources: dict[str, Path]) -> None:
    report = rt.ingest([sources["crm"], sources["orders"]])
    assert report.rejected == 0, report.summary()
    assert [f.kind for f in report.files] == ["customers", "orders"]
    assert report.count("created") == 5
    report = rt.ingest([sources["tracker"]], mapping=sources["mapping"])
    assert report.rejected == 0 and report.count("created") == 3
    s = rt.operator_session()
    ann = _customer_by_email(rt, "ann@example.com")
    view = s.customer(ann)
    assert view is not None
    # The quoted field kept its delimiter; the BOM did not reach the first column name.
    assert view.fields["name"] == "Lee; Ann" and view.fields["segment"] == "gold"
    inter = s.interactions(ann, first=10).items
    amounts = sorted(i.fields["amount"] for i in inter if i.fields["amount"] is not None)
    assert amounts == [12.5, 1003.0]  # decimal commas, thousands separators
    # e2 carries only the device serial, written differently; the login event e1 tied
    # that device to Ann, so e2 is hers too.
    assert {i.fields["event_id"] for i in inter} >= {"e1", "e2"}
    bob = _customer_by_email(rt, "bob@example.com")
    consents = rt.operator_session("self_service").consents(bob)
    assert [(c.purpose, c.status) for c in consents if c.purpose == "marketing.email"] == [
        ("marketing.email", "granted")]
    assert rt._backend.store.count_nodes()["Customer"] == 2


def test_reingesting_changes_nothing(rt: Pacte, sources: dict[str, Path]) -> None:
    files = [sources["crm"], sources["orders"]]
    rt.ingest(files)
    rt.ingest([sources["tracker"]], mapping=sources["mapping"])
    before = graph_digest(rt)
    again = rt.ingest(files)
    assert again.count("unchanged") == again.read == 5
    assert sum(again.count(k) for k in ("created", "updated", "merged", "rejected")) == 0
    tracker = rt.ingest([sources["tracker"]], mapping=sources["mapping"])
    assert tracker.count("unchanged") == 3
    assert graph_digest(rt) == before


def test_a_changed_row_updates_the_customer(rt: Pacte, sources: dict[str, Path],
                                            tmp_path: Path) -> None:
    rt.ingest([sources["crm"]])
    changed = tmp_path / "crm2.csv"
    changed.write_text(CRM.replace("silver", "platinum"), encoding="utf-8")
    report = rt.ingest([changed], mapping=None, source="crm")
    assert report.count("updated") == 1 and report.count("unchanged") == 1
    bob = rt.operator_session().customer(_customer_by_email(rt, "bob@example.com"))
    assert bob is not None and bob.fields["segment"] == "platinum"
    assert bob.fields["name"] == "Bob Roe"  # fields the row did not change are kept


def test_bad_rows_are_rejected_whole_and_masked(rt: Pacte, tmp_path: Path) -> None:
    src = tmp_path / "customers.csv"
    src.write_text("customer_id,name,email,phone\n"
                   "C1,Ann Lee,ann@example.com,4155550101\n"
                   "C2,Eve Secret,eve-at-example.com,4155550103\n"
                   "C3,Too,many,columns,here\n"
                   "C4,Dan Moe,dan@example.com,12\n", encoding="utf-8")
    before = graph_digest(rt)
    report = rt.ingest([src])
    assert report.count("created") == 1 and report.rejected == 3
    assert graph_digest(rt) != before
    assert rt._backend.store.count_nodes()["Customer"] == 1  # nothing of the bad rows went in
    b = rt._backend
    assert b.store.lookup("Identity.crm", b.codec.keyed_token("id.crm", "C2")) == []
    assert report.rejects is not None
    text = report.rejects.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) == 4 and lines[0] == "source,line,reason,row"
    assert ",3,email: not an email address," in lines[1]
    assert ',4,"expected 4 columns, found 5",' in lines[2]
    assert ",5,phone: not a phone number," in lines[3]
    for secret in ("Eve", "eve-at", "4155550103", "C2", "Dan", "dan@"):
        assert secret not in text


def test_max_errors_stops_the_file(rt: Pacte, tmp_path: Path) -> None:
    src = tmp_path / "customers.csv"
    src.write_text("customer_id,email\n" + "".join(f"C{i},bad{i}\n" for i in range(5)),
                   encoding="utf-8")
    with pytest.raises(InputError, match="more than 2 rows rejected; stopped at line 4"):
        rt.ingest([src], max_errors=2)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("latin1.csv", "customer_id,name\nC1,Ren\xe9e\n".encode("latin-1"), "not UTF-8 text"),
    ("quotes.csv", b'customer_id,name\nC1,"Ann\n', "unbalanced quote"),
    ("huge.csv", b"customer_id,name\nC1," + b"x" * (10 << 20) + b"\n",
     "a field is longer than 1048576 bytes"),
    ("empty.csv", b"", "the file is empty"),
    ("empty.jsonl", b"\n\n", "the file is empty"),
    ("latin1.jsonl", b'{"customer_id": "Ren\xe9e"}\n', "not UTF-8 text"),
])
def test_malformed_files_get_one_clear_line(tmp_path: Path, name: str, content: bytes,
                                            message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with Pacte.init(tmp_path / "data", now=FakeClock()) as rt, \
            pytest.raises(SourceError, match=message) as err:
        rt.ingest([path])
    text = str(err.value)
    assert text.startswith(str(path)) and "\n" not in text and len(text) < 200


def test_a_directory_or_a_missing_file_gets_one_clear_line(tmp_path: Path) -> None:
    with Pacte.init(tmp_path / "data", now=FakeClock()) as rt:
        with pytest.raises(SourceError, match="is a directory"):
            rt.ingest([tmp_path])
        with pytest.raises(SourceError, match="no such file"):
            rt.ingest([tmp_path / "nope.csv"])


def test_a_huge_json_line_is_rejected_and_the_rest_goes_in(tmp_path: Path) -> None:
    path = tmp_path / "customers.jsonl"
    path.write_bytes(b'{"customer_id": "' + b"x" * (10 << 20) + b'"}\n'
                     b'{"customer_id": "C1", "email": "a@example.com"}\n')
    with Pacte.init(tmp_path / "data", now=FakeClock()) as rt:
        report = rt.ingest([path])
        assert report.count("created") == 1 and report.rejected == 1


def test_every_batch_is_audited_through_the_session(rt: Pacte,
                                                    sources: dict[str, Path]) -> None:
    rt.ingest([sources["crm"]])
    actions = [e.record for e in rt._backend.audit.entries(subject=None, after_seq=None, limit=100)]
    ingests = [r for r in actions if r.get("action") == "ingest"]
    assert ingests and all(r["principal"] == "pr_operator" and r["purpose"] == "service"
                           for r in ingests)


def test_a_batch_fits_the_store_it_goes_to(rt: Pacte, sources: dict[str, Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Beside Neo4j a batch is one server transaction: 20,000 rows outgrew the test
    # server's transaction memory (MemoryPoolOutOfMemoryError), so batches are smaller.
    from pacte.ingest import runner

    seen: list[int] = []
    original = runner.ingest_files

    def spying(*args: object, **kwargs: object) -> object:
        seen.append(int(kwargs["batch_rows"]))  # type: ignore[call-overload]
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("pacte.ingest.ingest_files", spying)
    rt.ingest([sources["crm"]])
    on_neo4j = rt._backend.store.uri.startswith("neo4j")
    assert seen == [runner.BATCH_ROWS_NEO4J if on_neo4j else runner.BATCH_ROWS]
    rt.ingest([sources["crm"]], batch_rows=7)
    assert seen[-1] == 7


def test_a_batch_resolves_against_the_one_still_being_written(
        rt: Pacte, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Batch k is written while batch k+1 is looked up: each write here is held until
    # the next batch's lookups have been answered, so they cannot see it, and the
    # loader must add what it writes (one person, found by email, then by phone).
    # The last of the three batches has no next lookup.
    hold_writes(rt, monkeypatch, lambda n: n + 1 if n < 3 else 0)
    rows = [{"customer_id": "C1", "name": "Ann Lee", "email": "ann@example.com"},
            {"event_id": "e1", "email": "ann@example.com", "phone": "+14155550101",
             "kind": "visit", "channel": "web", "occurred_at": 1767225600},
            {"customer_id": "C1", "name": "Ann Lee", "phone": "+14155550101",
             "segment": "gold"}]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps({"type": "customer" if "customer_id" in r
                                        else "event", **r}) + "\n" for r in rows))
    report = rt.ingest([path], batch_rows=1)
    assert report.rejected == 0
    assert rt._backend.store.count_nodes()["Customer"] == 1
