"""The console's search page against the same page through GraphQL `auditTrail`.

Issue 20's bar: at 1M audit entries, a page of the console's search costs at most 2x
the same page through GraphQL. Both run in this process over httpx's ASGI transport,
against one app and one data directory whose trail holds `n` entries: each request
asks for 50 entries with the same filter (purpose), starting after the same cursor,
and selects what the console shows (the GraphQL side asks for those fields). The
console's request carries its sealed sign-in cookie and CSRF token and returns HTML;
GraphQL's carries the bearer key and returns JSON. Pages are spread over the trail.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.harness import paired, ratio
from pacte.api import create_app
from pacte.runtime import Pacte

__all__ = ["run"]

QUERY = """query($after: String) { auditTrail(first: 50, purpose: "service", after: $after) {
  edges { cursor node { seq at action outcome principal principalName role purpose fields
  subjects } } pageInfo { hasNextPage endCursor } } }"""


def _record(i: int) -> dict[str, object]:
    return {"action": "customer.read", "principal": "pr_0c1a2b3c4d5e",
            "principal_name": "crm", "role": "app",
            "purpose": "service" if i % 4 else "marketing.email",
            "legal_basis": "contract", "subjects": [f"s_{i % 997:04x}a1b2c3d4e5f60718"],
            "fields": ["email", "name", "phone"], "outcome": "ok",
            "policy_version": "p_5f1e2d3c4b5a", "request_id": f"{i:032x}"}


def _fill(rt: Pacte, n: int) -> None:
    chunk = 1000
    for start in range(0, n, chunk):
        rt._backend.audit.append_many([_record(i) for i in range(start, min(n, start + chunk))])


def run(quick: bool) -> list[dict[str, Any]]:
    n = 20_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="pacte-bench-console-") as tmp:
        rt = Pacte.init(Path(tmp) / "data")
        try:
            _fill(rt, n)
            _, key = rt.create_principal(name="auditor", role="auditor", purposes=["legal"])
            loop = asyncio.new_event_loop()
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(rt)),
                                       base_url="http://pacte.bench")

            def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
                return loop.run_until_complete(client.request(method, url, **kwargs))

            page = call("GET", "/console")
            found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
            assert found is not None
            csrf = found.group(1)
            assert call("POST", "/console/sign-in", data={"csrf": csrf, "key": key}
                        ).status_code == 303
            headers = {"Authorization": f"Bearer {key}", "X-Purpose": "legal"}
            # Cursors spread over the trail: each page is somewhere else in the file.
            afters = [str(n * k // 40) for k in range(40)]

            def console(after: str) -> None:
                r = call("POST", "/console/search", data={
                    "csrf": csrf, "purpose": "service", "after": after})
                assert r.status_code == 200 and r.text.count("<tr>") == 51, r.status_code

            def graphql(after: str) -> None:
                cursor = None if after == "0" else _cursor(int(after))
                r = call("POST", "/graphql", headers=headers, json={
                    "query": QUERY, "variables": {"after": cursor}})
                body = r.json()
                assert r.status_code == 200 and len(
                    body["data"]["auditTrail"]["edges"]) == 50, body

            t_console, t_graphql = paired(console, graphql, afters, rounds=3, chunk=10)
            loop.run_until_complete(client.aclose())
            loop.close()
        finally:
            rt.close()
    return [ratio("console_search_page_vs_graphql_audit_trail", t_console, t_graphql,
                  numerator_label="POST /console/search: 50 entries of one purpose after a "
                                  "cursor, as an HTML page (cookie sign-in, CSRF)",
                  denominator_label="POST /graphql auditTrail(first: 50, purpose, after) "
                                    "with the fields the page shows",
                  unit="x", size=f"{n} entries", target="<= 2")]


def _cursor(seq: int) -> str:
    from pacte.api.relay import encode_seq_cursor

    return encode_seq_cursor(seq)


def main() -> None:
    for record in run(quick="--quick" in sys.argv[1:]):
        print(json.dumps(record))


if __name__ == "__main__":
    main()
