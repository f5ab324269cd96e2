"""Fixtures for the API tests: a real data directory, served over httpx's ASGI transport.

The world of tests.helpers (one customer per consent state for `marketing.email`)
is extended with 50 seeded customers, and principals for every role.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from pacte.api import create_app
from pacte.api.access_log import AccessLog
from pacte.api.logs import JsonLines
from tests.helpers import World, build_world

QUERY_360 = """
query Customer360($id: ID!) {
  customer(id: $id) {
    id name email phone withheld { field reason }
    consents { purpose status at until source }
    interactions(first: 20) {
      edges { cursor node { id channel kind occurredAt summary product { id name } } }
      pageInfo { hasNextPage endCursor }
    }
    products { id name }
  }
}
"""


class Api:
    """A synchronous client over the ASGI app: tests (and hypothesis) stay plain functions."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://pacte.test")

    def request(self, method: str, url: str = "/graphql", **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.request(method, url, **kwargs))

    def post(self, query: str, *, key: str | None, purpose: str | None,
             variables: Mapping[str, Any] | None = None,
             headers: Mapping[str, str] | None = None) -> httpx.Response:
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        if purpose is not None:
            h["X-Purpose"] = purpose
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = dict(variables)
        # ASCII JSON, as most clients send it: a lone surrogate travels as `\ud800`.
        h.setdefault("Content-Type", "application/json")
        return self.request("POST", content=json.dumps(body).encode(), headers=h)

    def data(self, query: str, *, key: str, purpose: str,
             variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a request that must succeed without errors."""
        r = self.post(query, key=key, purpose=purpose, variables=variables)
        body = r.json()
        assert r.status_code == 200 and "errors" not in body, body
        result: dict[str, Any] = body["data"]
        return result

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


def make_world(path: Path, *, store_uri: str | None = None) -> World:
    world = build_world(path, store_uri=store_uri)
    world.rt.seed(50, seed=1)
    return world


def personal_values(world: World) -> set[str]:
    """Every name, email and phone in the store, read as an operator would."""
    values = {v for fields in world.plaintext.values() for k, v in fields.items()
              if k in ("name", "email", "phone")}
    session = world.rt.operator_session("service")
    after = None
    while True:
        page = session.customers(first=100, after=after)
        for c in page.items:
            values.update(str(c.get(k)) for k in ("name", "email", "phone") if c.get(k))
        if not page.has_next:
            return values
        after = page.end_cursor


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A world for read-only tests, shared by a module."""
    w = make_world(tmp_path_factory.mktemp("api"))
    yield w
    w.rt.close()


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[Api]:
    # With the access log, as `pacte serve` runs it: its lines are scanned (below).
    client = Api(AccessLog(create_app(world.rt), routes=("/graphql", "/healthz", "/metrics")))
    yield client
    client.close()


# The suites whose every log line, as the server writes it (JSON lines), is scanned
# for personal values: requests that probe for them, and hostile input.
_LOG_SCANNED = {"tests.api.test_privacy", "tests.api.test_hostile"}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(JsonLines())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module", autouse=True)
def scanned_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.module.__name__ not in _LOG_SCANNED:
        yield
        return
    handler = _Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # as `pacte serve` logs
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    text = "\n".join(handler.lines)
    assert any('"logger": "pacte.access"' in line for line in handler.lines)
    assert all(json.loads(line) for line in handler.lines)
    # Every world's emails are on example.com, its names Quorn, its phones +1555...
    # (tests.helpers; the seeded customers' emails too): one search covers them all.
    leaked = [v for v in ("example.com", "Quorn", "+1555", "1555") if v in text]
    assert not leaked, f"personal values in the logs: {leaked}"


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[World, Api]]:
    """A world and client of its own, for tests that write."""
    w = make_world(tmp_path)
    client = Api(create_app(w.rt))
    yield w, client
    client.close()
    w.rt.close()
