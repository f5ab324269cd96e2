"""Batched loads without an event loop: the customer-360 runs on none, aliases still batch.

The documents these answer the same as strawberry's stock execution (on an event loop,
with a DataLoader) are in test_compiled.py (aliases of one and of two customers, a
malformed id beside a good one, `node`); here: that no loop is used, and the parts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import strawberry

import pacte.api.app
from pacte.api import create_app
from pacte.api.batch import Batch, awaits_loads_only, drive, gather_waiting, loop_free
from pacte.api.schema import build_schema
from tests.api.conftest import QUERY_360, Api
from tests.helpers import World


@pytest.fixture
def loops(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The requests the app ran on its worker thread's event loop."""
    used: list[str] = []
    real = pacte.api.app._thread_loop

    def spy() -> asyncio.AbstractEventLoop:
        used.append("loop")
        return real()

    monkeypatch.setattr(pacte.api.app, "_thread_loop", spy)
    yield used


def test_the_customer_360_runs_without_an_event_loop(world: World, loops: list[str]) -> None:
    api = Api(create_app(world.rt))
    try:
        cid = world.customers["granted"]
        data = api.data(QUERY_360, key=world.keys["app"], purpose="service",
                        variables={"id": cid})
        assert data["customer"]["id"] == cid
        aliased = api.data("query($id: ID!) { a: customer(id: $id) { id } "
                           "b: node(id: $id) { id } c: customer(id: \"c_none\") { id } }",
                           key=world.keys["app"], purpose="service", variables={"id": cid})
        assert aliased == {"a": {"id": cid}, "b": {"id": cid}, "c": None}
    finally:
        api.close()
    assert loops == []


@pytest.mark.parametrize("query, variables", [
    # A directive reading a variable: graphql-core executes it (no compiled plan), and
    # gathers the two async root fields on an event loop (review finding: it ran with
    # none and answered 400 "There is no current event loop").
    ("query($v: Boolean!, $id: ID!) { a: customer(id: $id) @include(if: $v) { id } "
     "b: customer(id: $id) { id } }", {"v": True}),
    ("query($v: Boolean!, $id: ID!) { ...F } fragment F on Query { a: customer(id: $id) "
     "{ id } b: node(id: $id) { id ... on Customer { name @skip(if: $v) } } }", {"v": False}),
])
def test_an_operation_without_a_plan_runs_on_the_loop(
        world: World, loops: list[str], query: str, variables: dict[str, Any]) -> None:
    api = Api(create_app(world.rt))
    try:
        cid = world.customers["granted"]
        r = api.post(query, key=world.keys["app"], purpose="service",
                     variables={**variables, "id": cid})
        assert r.status_code == 200, r.text
        body = r.json()
        assert "errors" not in body
        assert body["data"]["a"] == {"id": cid} and body["data"]["b"]["id"] == cid
    finally:
        api.close()
    assert loops == ["loop"]


def test_a_schema_with_other_async_resolvers_keeps_the_loop() -> None:
    @strawberry.type
    class Query:
        @strawberry.field
        async def slow(self) -> int:
            await asyncio.sleep(0)
            return 1

        @strawberry.field
        @awaits_loads_only
        async def batched(self) -> int:
            return 2

    assert loop_free(build_schema()._schema)
    assert not loop_free(strawberry.Schema(query=Query)._schema)


def _fetcher(asked: list[list[str]]) -> Any:
    def fetch(keys: list[str]) -> list[Any]:
        asked.append(keys)
        if "all" in keys:
            raise KeyError("the whole batch")
        return [ValueError(k) if k.startswith("bad") else k.upper() for k in keys]
    return fetch


async def _get(batch: Batch[str, str], key: str, log: list[str]) -> str:
    log.append(f"ask {key}")
    try:
        value = await batch.load(key)
    except Exception as exc:
        value = f"error {exc!r}"
    log.append(f"got {key}")
    return value


async def _siblings(batch: Batch[str, str], keys: list[str], log: list[str]) -> list[Any]:
    return await gather_waiting([_get(batch, k, log) for k in keys])


async def _on_loop(batch: Batch[str, str], keys: list[str], log: list[str]) -> list[Any]:
    return list(await asyncio.gather(*(_get(batch, k, log) for k in keys)))


def test_siblings_are_one_batch_in_asyncio_order() -> None:
    # Without a loop and on one (a DataLoader): the same batches, values and order.
    runs = []
    for on_loop in (False, True):
        asked: list[list[str]] = []
        log: list[str] = []
        batch: Batch[str, str] = Batch(_fetcher(asked))
        keys = ["a", "bad", "a", "b"]
        if on_loop:
            values = asyncio.run(_on_loop(batch, keys, log))
        else:
            values = drive(_siblings(batch, keys, log))
        runs.append((values, asked, log))
    assert runs[0] == runs[1]
    values, asked, log = runs[0]
    assert asked == [["a", "bad", "b"]]  # each key once, in the order asked
    assert values == ["A", "error ValueError('bad')", "A", "B"]
    # Resumed as asyncio wakes them: by key answered, then in the order they waited.
    assert log == ["ask a", "ask bad", "ask a", "ask b", "got a", "got a", "got bad", "got b"]


def test_a_failing_batch_fails_each_of_its_keys() -> None:
    asked: list[list[str]] = []
    batch: Batch[str, str] = Batch(_fetcher(asked))
    log: list[str] = []
    assert drive(_siblings(batch, ["x", "all"], log)) == [
        "error KeyError('the whole batch')"] * 2
    assert asked == [["x", "all"]]


def test_only_batched_loads_are_driven() -> None:
    closed: list[str] = []

    async def sleeper() -> None:
        try:
            await asyncio.sleep(0)  # a bare yield, as a loop's turn
        finally:
            closed.append("closed")

    with pytest.raises(RuntimeError, match="not a batched load"):
        drive(sleeper())
    assert closed == ["closed"]


def test_a_sibling_that_raises_closes_the_others() -> None:
    asked: list[list[str]] = []
    batch: Batch[str, str] = Batch(_fetcher(asked))
    closed: list[str] = []

    async def failing() -> str:
        await batch.load("a")
        raise ZeroDivisionError

    async def other() -> str:
        try:
            await batch.load("b")
            await batch.load("c")
            return "never"
        finally:
            closed.append("other")

    async def both() -> list[Any]:
        return await gather_waiting([failing(), other()])

    with pytest.raises(ZeroDivisionError):
        drive(both())
    assert closed == ["other"]
    assert asked == [["a", "b"]]
