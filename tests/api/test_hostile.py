"""Hostile documents: each is refused with a clear error and a 4xx, never a 5xx."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from pacte.api import Limits, create_app
from tests.api.conftest import Api, make_world
from tests.conftest import ATTACHED, backend_uri
from tests.helpers import World


@pytest.fixture(scope="module", params=["sqlite", ATTACHED])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    """A data directory, and a server attached to shared infrastructure (whose pages
    and cursors, the audit trail's included, are read from Neo4j)."""
    w = make_world(tmp_path_factory.mktemp("api-hostile"), store_uri=backend_uri(request))
    yield w
    w.rt.close()


def _refused(api: Api, world: World, query: str, code: str) -> str:
    # Refused before execution (no wall-clock limit here: a loaded machine is slow, and
    # speed is the benchmarks' business): nothing ran, so the trail has nothing new.
    before = world.rt._backend.audit.size()
    r = api.post(query, key=world.keys["app"], purpose="service")
    assert r.status_code == 400, r.text
    body = r.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == code, body
    assert world.rt._backend.audit.size() == before
    message: str = body["errors"][0]["message"]
    return message


def test_deep_nesting(api: Api, world: World) -> None:
    # Deeper than the schema goes, through a valid path and then invalid fields.
    deep = "{ customers { edges { node { interactions { edges { node { product { " + \
        "a { " * 10 + "}" * 10 + " } } } } } } } }"
    assert "levels deep" in _refused(api, world, deep, "QUERY_TOO_COMPLEX")


def test_very_deep_nesting_is_a_parse_or_limit_error(api: Api, world: World) -> None:
    deep = "{ " + "a { " * 900 + "b" + " }" * 900 + " }"
    r = api.post(deep, key=world.keys["app"], purpose="service")
    assert r.status_code == 400
    assert r.json()["errors"][0]["extensions"]["code"] in ("GRAPHQL_PARSE_FAILED",
                                                           "QUERY_TOO_COMPLEX")


def test_many_aliases(api: Api, world: World) -> None:
    q = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(120)) + " }"
    assert "aliases" in _refused(api, world, q, "QUERY_TOO_COMPLEX")


def test_aliases_multiplied_by_fragments(api: Api, world: World) -> None:
    q = "{ ...F ...F ...F ...F } fragment F on Query { " + \
        " ".join(f"a{i}: me {{ name }}" for i in range(10)) + " }"
    assert "aliases" in _refused(api, world, q, "QUERY_TOO_COMPLEX")


def test_duplicate_fields(api: Api, world: World) -> None:
    q = "{ me { " + "name " * 500 + "} }"
    assert "fields" in _refused(api, world, q, "QUERY_TOO_COMPLEX")


def test_duplicate_fields_under_the_limit_still_work(api: Api, world: World) -> None:
    data = api.data("{ me { " + "name " * 50 + "} }", key=world.keys["app"], purpose="service")
    assert data["me"]["name"] == "app-1"


def test_fragment_bomb_is_measured_in_linear_time(api: Api, world: World) -> None:
    # Each fragment spreads the next ten times: 10**8 selections if expanded naively.
    names = [f"F{i}" for i in range(9)]
    frags = [f"fragment {a} on Principal {{ " + f"...{b} " * 10 + "}"
             for a, b in itertools.pairwise(names)]
    frags.append(f"fragment {names[-1]} on Principal {{ name }}")
    q = "{ me { ...F0 } } " + " ".join(frags)
    assert "fields" in _refused(api, world, q, "QUERY_TOO_COMPLEX")


def test_circular_fragments(api: Api, world: World) -> None:
    q = "{ me { ...A } } fragment A on Principal { name ...B } " \
        "fragment B on Principal { role ...A }"
    assert "within itself" in _refused(api, world, q, "GRAPHQL_VALIDATION_FAILED")


def test_self_referencing_fragment(api: Api, world: World) -> None:
    q = "{ me { ...A } } fragment A on Principal { ...A }"
    _refused(api, world, q, "GRAPHQL_VALIDATION_FAILED")


def test_too_many_tokens(api: Api, world: World) -> None:
    q = "{ me { name } } " + "# x\n" * 3000
    _refused(api, world, q, "GRAPHQL_PARSE_FAILED")
    q = "{ me { " + " ".join(["name"] * 2500) + " } }"
    _refused(api, world, q, "GRAPHQL_PARSE_FAILED")


def test_introspection_is_off(api: Api, world: World) -> None:
    msg = _refused(api, world, "{ __schema { types { name } } }", "GRAPHQL_VALIDATION_FAILED")
    assert "introspection" in msg.lower()
    _refused(api, world, '{ __type(name: "Customer") { fields { name } } }',
             "GRAPHQL_VALIDATION_FAILED")
    # __typename is not introspection of the schema, and stays available.
    assert api.data("{ __typename }", key=world.keys["app"], purpose="service") == {
        "__typename": "Query"}


def test_no_field_suggestions(api: Api, world: World) -> None:
    msg = _refused(api, world, "{ customr(id: \"x\") { id } }", "GRAPHQL_VALIDATION_FAILED")
    assert "did you mean" not in msg.lower() and "customer" not in msg.lower()


def test_dev_mode_allows_introspection_and_suggestions(world: World) -> None:
    dev = Api(create_app(world.rt, dev=True))
    try:
        from graphql import get_introspection_query

        data = dev.data(get_introspection_query(), key=world.keys["app"], purpose="service")
        assert any(t["name"] == "Customer" for t in data["__schema"]["types"])
        r = dev.post("{ customr(id: \"x\") { id } }", key=world.keys["app"], purpose="service")
        assert "did you mean" in r.json()["errors"][0]["message"].lower()
    finally:
        dev.close()


@pytest.mark.parametrize("variables", [
    {"id": True}, {"id": 5.5}, {"id": None}, {"id": ["x"]}, {"id": {"a": 1}}, {"id": "x" * 5000},
])
def test_bad_variables(api: Api, world: World, variables: dict[str, object]) -> None:
    r = api.post("query($id: ID!) { customer(id: $id) { id } }", key=world.keys["app"],
                 purpose="service", variables=variables)
    assert r.status_code in (200, 400)
    assert r.json()["errors"][0]["extensions"]["code"] in ("BAD_INPUT",
                                                           "GRAPHQL_VALIDATION_FAILED")


@pytest.mark.parametrize("query", [
    '{ customers(first: 100000) { edges { cursor } } }',
    '{ customers(first: -1) { edges { cursor } } }',
    '{ customers(after: "!!!") { edges { cursor } } }',
    '{ auditTrail(after: "bm9wZQ") { edges { cursor } } }',
    '{ customer(id: "") { id } }',
])
def test_bad_arguments_are_bad_input(api: Api, world: World, query: str) -> None:
    key = world.keys["auditor"] if "audit" in query else world.keys["app"]
    r = api.post(query, key=key, purpose="legal" if "audit" in query else "service")
    assert r.status_code == 400  # nothing answered: the status of BAD_INPUT
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_INPUT", r.json()


def test_limits_are_configurable(world: World) -> None:
    strict = Api(create_app(world.rt, limits=Limits(max_depth=2)))
    try:
        r = strict.post("{ me { name } }", key=world.keys["app"], purpose="service")
        assert r.status_code == 200
        r = strict.post("{ customers { edges { node { id } } } }", key=world.keys["app"],
                        purpose="service")
        assert r.status_code == 400
    finally:
        strict.close()


_NESTED_PAGES = ("customers(first: 100) { edges { node { interactions(first: 100) "
                 "{ edges { node { summary amount } } } } } }")


def test_nested_pages_under_many_aliases_are_too_costly(api: Api, world: World) -> None:
    # Within the alias, depth and field limits, yet about a million fields to resolve.
    q = "{ " + " ".join(f"a{i}: {_NESTED_PAGES}" for i in range(27)) + " }"
    before = world.rt._backend.audit.size()
    message = _refused(api, world, q, "QUERY_TOO_COSTLY")
    assert "1088127" in message and "50000" in message
    # Refused before execution: nothing was read, so the trail has nothing new.
    assert world.rt._backend.audit.size() == before


@pytest.mark.parametrize("query", [
    # the cost of a fragment counts wherever it is spread, under the page around it
    "{ a: customers(first: 100) { edges { node { ...I } } } "
    "b: customers(first: 100) { edges { node { ...I } } } } "
    "fragment I on Customer { interactions(first: 100) { edges { node { summary } } } }",
    # a page size given as a variable counts as the largest page
    "query($n: Int) { a: customers(first: $n) { edges { node { interactions(first: $n) "
    "{ edges { node { summary } } } } } } "
    "b: customers(first: $n) { edges { node { interactions(first: $n) "
    "{ edges { node { summary } } } } } } }",
])
def test_cost_counts_fragments_and_variables(api: Api, world: World, query: str) -> None:
    _refused(api, world, query, "QUERY_TOO_COSTLY")


def test_one_large_nested_page_is_within_the_cost(api: Api, world: World) -> None:
    data = api.data("{ " + _NESTED_PAGES + " }", key=world.keys["app"], purpose="service")
    assert len(data["customers"]["edges"]) > 50


def test_the_cost_limit_is_configurable(world: World) -> None:
    strict = Api(create_app(world.rt, limits=Limits(max_cost=100)))
    try:
        r = strict.post("{ customers(first: 10) { edges { node { id } } } }",
                        key=world.keys["app"], purpose="service")
        assert r.status_code == 200 and "errors" not in r.json()
        r = strict.post("{ customers(first: 50) { edges { node { id } } } }",
                        key=world.keys["app"], purpose="service")
        assert r.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    finally:
        strict.close()
