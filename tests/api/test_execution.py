"""The plain-field executor answers exactly as graphql-core's own execution would."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from pacte.api import create_app
from pacte.api.execution import PlainFieldExecutor, plain_fields
from pacte.api.schema import build_schema
from tests.api.conftest import QUERY_360, Api
from tests.helpers import World

# -- the app's schema, against the stock executor ----------------------------------


@pytest.fixture(scope="module")
def stock(world: World) -> Iterator[Api]:
    schema = build_schema()
    schema.execution_context_class = StrawberryGraphQLCoreExecutionContext
    client = Api(create_app(world.rt, schema=schema))
    yield client
    client.close()


_QUERIES = [
    (QUERY_360, "service"),
    (QUERY_360, "marketing.email"),  # fields withheld: nulls where the type allows them
    ("""query($id: ID!) { customer(id: $id) {
         id name email phone address birthDate ageBand segment createdAt
         withheld { field reason }
         interactions(first: 5) { edges { node { id channel kind occurredAt summary amount
                                                  withheld { field reason } } } }
         products { id sku name category price } } }""", "service"),
    ("""{ customers(first: 30) { edges { cursor node { id name email createdAt } }
                                 pageInfo { hasNextPage endCursor } }
          me { id name role purposes }
          purposes { id parent legalBasis consentRequired categories retentionDays
                     description } }""", "service"),
]


@pytest.mark.parametrize(("query", "purpose"), _QUERIES)
def test_same_response_as_graphql_core(api: Api, stock: Api, world: World, query: str,
                                       purpose: str) -> None:
    ids = list(world.customers.values())[:4]
    for cid in ids:
        variables = {"id": cid} if "$id" in query else None
        ours = api.post(query, key=world.keys["app"], purpose=purpose, variables=variables)
        theirs = stock.post(query, key=world.keys["app"], purpose=purpose,
                            variables=variables)
        assert ours.status_code == theirs.status_code == 200
        assert ours.json() == theirs.json()
        assert ours.json().get("data")


def test_the_customer_fields_are_plain() -> None:
    schema = build_schema()
    by_name = {t.name: set(f) for t, f in plain_fields(schema._schema).items()}
    assert {"id", "name", "email", "createdAt"} <= by_name["Customer"]
    # Resolvers and fields with arguments always go through graphql-core.
    assert not {"withheld", "consents", "interactions", "products"} & by_name["Customer"]
    assert "product" not in by_name["Interaction"]


# -- edge cases, on a small schema -----------------------------------------------------


@strawberry.type
class Thing:
    name: str
    nick: str | None
    count: int
    at: datetime | None


def _things() -> list[Any]:
    ok = Thing(name="a", nick=None, count=1, at=datetime(2024, 1, 2, tzinfo=UTC))
    return [
        ok,
        SimpleNamespace(name=None, nick="n", count=2, at=None),    # null in a non-null field
        SimpleNamespace(name="c", nick=3, count="many", at=None),  # values the scalars refuse
        SimpleNamespace(name="d", nick=ValueError("boom"), count=4, at="not a date"),
        SimpleNamespace(nick="e", count=5, at=None),               # attribute missing
    ]


@strawberry.type
class ThingQuery:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        return _things()

    @strawberry.field
    def strict(self) -> list[Thing]:
        return _things()[:2]


class _CountResolves(SchemaExtension):
    calls = 0

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        type(self).calls += 1
        return _next(root, info, *args, **kwargs)


def _run(executor: type[StrawberryGraphQLCoreExecutionContext], query: str,
         extensions: list[type[SchemaExtension]] | None = None) -> dict[str, Any]:
    schema = strawberry.Schema(query=ThingQuery, execution_context_class=executor,
                               extensions=extensions or [])
    result = schema.execute_sync(query)
    return {"data": result.data,
            "errors": sorted((e.message, tuple(e.path or ()), str(e.original_error))
                             for e in result.errors or [])}


@pytest.mark.parametrize("query", [
    "{ things { name nick count at } }",
    "{ things { nick at } }",
    "{ strict { name } }",
    "{ strict { a: count b: count nick } }",
    "{ things { ... on Thing { count } name @skip(if: true) } }",
])
def test_errors_and_nulls_as_graphql_core(query: str) -> None:
    ours = _run(PlainFieldExecutor, query)
    assert ours == _run(StrawberryGraphQLCoreExecutionContext, query)


def test_resolve_middleware_sees_every_field() -> None:
    query = "{ things { name nick count at } }"
    _CountResolves.calls = 0
    _run(StrawberryGraphQLCoreExecutionContext, query, [_CountResolves])
    stock_calls = _CountResolves.calls
    _CountResolves.calls = 0
    _run(PlainFieldExecutor, query, [_CountResolves])
    assert _CountResolves.calls == stock_calls > 5
