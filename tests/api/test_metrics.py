"""`GET /metrics`: Prometheus text, requests by purpose and outcome, latencies, audit
appends and the last verification; label values come from the policy, never from
what a client sent, and no personal value is in it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.api.conftest import Api
from tests.helpers import World


def _metrics(api: Api) -> str:
    r = api.request("GET", "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return r.text


def _count(text: str, purpose: str, outcome: str) -> int:
    m = re.search(rf'^pacte_requests_total{{purpose="{re.escape(purpose)}",'
                  rf'outcome="{outcome}"}} (\d+)$', text, flags=re.M)
    return int(m.group(1)) if m else 0


def test_requests_are_counted_by_purpose_and_outcome(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    key = world.keys["app"]
    cid = world.customers["granted"]
    email = world.plaintext[cid]["email"]
    query = "query($e: String!) { customerByEmail(email: $e) { name } }"
    for _ in range(3):
        assert api.post(query, key=key, purpose="service", variables={"e": email}
                        ).status_code == 200
    api.post("{ me { name } }", key=key, purpose=f'x"}} {email}\nevil 1')
    api.post("{ me { name } }", key=None, purpose="service")
    api.post("{ me { name } }", key=key, purpose=None)
    text = _metrics(api)
    assert _count(text, "service", "200") == 3
    assert _count(text, "service", "401") == 1
    assert _count(text, "none", "400") == 1
    # A purpose the policy does not name: counted as "other", whatever its status.
    assert re.search(r'^pacte_requests_total\{purpose="other",outcome="4\d\d"\} 1$', text,
                     flags=re.M)
    assert 'pacte_request_duration_seconds_bucket{le="+Inf"} 6' in text
    appends = re.search(r"^pacte_audit_append_duration_seconds_count (\d+)$", text, re.M)
    assert appends and int(appends.group(1)) >= 3
    # Nothing a client wrote, and no personal value.
    assert email not in text and "evil" not in text and "Quorn" not in text
    for line in text.splitlines():
        assert line.startswith("#") or re.fullmatch(r'[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="'
                                                    r'[^"]*")*\})? [0-9.e+-]+', line), line


def test_the_last_verification_is_reported(fresh: tuple[World, Api]) -> None:
    world, api = fresh
    assert "pacte_audit_verify_ok" not in _metrics(api)
    r = api.post("{ auditVerification { ok } }", key=world.keys["auditor"], purpose="legal")
    assert r.json()["data"]["auditVerification"]["ok"] is True
    text = _metrics(api)
    assert "pacte_audit_verify_ok 1" in text
    assert re.search(r"^pacte_audit_verify_timestamp_seconds \d+\.\d+$", text, re.M)


def test_store_round_trips_are_counted_beside_neo4j(tmp_path: Path, neo4j_uri: str) -> None:
    from pacte.api import create_app
    from tests.api.conftest import make_world
    from tests.neo4j_fixture import clean_database

    clean_database(neo4j_uri)
    world = make_world(tmp_path, store_uri=neo4j_uri)
    api = Api(create_app(world.rt))
    try:
        before = _round_trips(_metrics(api))
        r = api.post("query($id: ID!) { customer(id: $id) { name } }",
                     key=world.keys["app"], purpose="service",
                     variables={"id": world.customers["granted"]})
        assert r.status_code == 200 and r.json()["data"]["customer"]
        after = _round_trips(_metrics(api))
        assert before is not None and after is not None and after > before
    finally:
        api.close()
        world.rt.close()


def test_an_embedded_store_reports_no_round_trips(fresh: tuple[World, Api]) -> None:
    _, api = fresh
    assert _round_trips(_metrics(api)) is None


def _round_trips(text: str) -> int | None:
    m = re.search(r"^pacte_store_round_trips_total (\d+)$", text, flags=re.M)
    return int(m.group(1)) if m else None
