"""Property-based fuzzing over the schema (hypothesis-graphql): never a 5xx, never a leak.

Valid documents are generated from the committed SDL, with ids drawn from the real
customers and products so queries reach data; invalid ones (negative mode) check
the error path. Every response is searched for personal values that must not be in
it: in error messages none at all, and under a consent purpose none of a customer
who has not opted in (G3).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, queries

from pacte.api import create_app, sdl
from pacte.graph.model import CHANNELS
from tests.api.conftest import Api, make_world, personal_values
from tests.helpers import World

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
HIDDEN_FOR_EMAIL = ("none", "withdrawn", "expired", "other_child")
CALLERS = [("app", "service"), ("app", "marketing.email"), ("app", "self_service"),
           ("app", "personalization"), ("auditor", "legal"), ("analyst", "analytics")]


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Api]]:
    world = make_world(tmp_path_factory.mktemp("fuzz"))
    api = Api(create_app(world.rt))
    yield world, api
    api.close()
    world.rt.close()


def _scalars(world: World) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    ids = [*world.customers.values(), world.product, "c_000000000000", "p_0001"]
    words = [*CHANNELS, *world.rt.policy.purposes,
             *(v["email"] for v in world.plaintext.values())]
    return {
        "String": st.one_of(st.sampled_from(words), st.text(max_size=20)).map(
            lambda v: graphql.StringValueNode(value=v)),
        "ID": st.one_of(st.sampled_from(ids), st.text(max_size=12)).map(
            lambda v: graphql.StringValueNode(value=v)),
        # Mostly valid page sizes, so generated queries reach data; some out of range.
        "Int": st.one_of(st.integers(0, 30), st.integers()).map(
            lambda n: graphql.IntValueNode(value=str(n))),
        "DateTime": st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                                 timezones=st.just(UTC)).map(
            lambda d: graphql.StringValueNode(value=d.isoformat())),
    }


def _check(world: World, api: Api, query: str, role: str, purpose: str,
           secrets: set[str]) -> None:
    r = api.post(query, key=world.keys[role], purpose=purpose)
    assert r.status_code < 500, (query, r.text)
    body = r.json()
    errors = json.dumps(body.get("errors", []))
    assert not [v for v in secrets if v in errors], query
    if purpose == "marketing.email":
        hidden = {v for state in HIDDEN_FOR_EMAIL
                  for v in world.plaintext[world.customers[state]].values()
                  if len(v) > 12}
        assert not [v for v in hidden if v in r.text], query


def test_fuzz_queries(fuzz_world: tuple[World, Api]) -> None:
    world, api = fuzz_world
    secrets = personal_values(world)

    @SETTINGS
    @given(query=queries(sdl(), custom_scalars=_scalars(world), allow_x00=False),
           caller=st.sampled_from(CALLERS))
    def run(query: str, caller: tuple[str, str]) -> None:
        _check(world, api, query, *caller, secrets)

    run()


def test_fuzz_invalid_queries(fuzz_world: tuple[World, Api]) -> None:
    world, api = fuzz_world
    secrets = personal_values(world)

    @settings(SETTINGS, max_examples=50)
    @given(query=queries(sdl(), mode=Mode.NEGATIVE, custom_scalars=_scalars(world)),
           caller=st.sampled_from(CALLERS))
    def run(query: str, caller: tuple[str, str]) -> None:
        _check(world, api, query, *caller, secrets)

    run()


def test_fuzz_mutations(fuzz_world: tuple[World, Api]) -> None:
    world, api = fuzz_world
    secrets = personal_values(world)

    @settings(SETTINGS, max_examples=60)
    @given(query=mutations(sdl(), custom_scalars=_scalars(world), allow_x00=False),
           caller=st.sampled_from(CALLERS))
    def run(query: str, caller: tuple[str, str]) -> None:
        r = api.post(query, key=world.keys[caller[0]], purpose=caller[1])
        assert r.status_code < 500, (query, r.text)
        errors = json.dumps(r.json().get("errors", []))
        assert not [v for v in secrets if v in errors], query

    run()
