"""The compiled executor's specialised paths answer exactly as graphql-core's execution.

Each specialisation skips work only where its outcome is known (see
docs/compiled-fields.md); these documents reach each one with the values it takes and
with those it must hand back to the general path, and compare the outcome, error by
error, with strawberry's stock executor. The last tests check, on the customer-360,
that the specialised paths are the ones taken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from pacte.api import create_app
from pacte.api.compiled import CompiledExecutor
from tests.api.conftest import QUERY_360, Api, make_world
from tests.conftest import BACKENDS, backend_uri
from tests.helpers import World

AT = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


class Later(datetime):
    def isoformat(self, *args: Any, **kwargs: Any) -> str:
        return "later"


class Boom(Exception):
    pass


@strawberry.interface
class Thing:
    name: str


@strawberry.type
class Part(Thing):
    size: int | None


class SubPart(Part):
    pass


@strawberry.type
class Tool(Thing):
    sharp: bool


@strawberry.type
class Dated:
    # DateTime leaves: strawberry's `isoformat` coercion, taken at once for a datetime.
    at: datetime
    maybe: datetime | None
    note: str | None


@strawberry.type
class Shelf:
    # Attributes read by getattr, of a type with strawberry's `is_type_of`.
    part: Part | None
    strict: Part


T = TypeVar("T")


@strawberry.type
class Wrap(Generic[T]):
    # A generic: its specialisation (`PartWrap`) is given objects of the class `Wrap`.
    item: T
    items: list[T]


def _odd(**fields: Any) -> Any:
    return type("Odd", (), fields)()


@strawberry.type
class Query:
    # Resolvers without an `info` parameter (no resolve info is built for them), of
    # types with strawberry's `is_type_of` (Part implements Thing).

    @strawberry.field
    def part(self, name: str = "p") -> Part | None:
        return Part(name=name, size=1)

    @strawberry.field
    def wrong_part(self) -> Part | None:
        return Tool(name="t", sharp=True)  # type: ignore[return-value]

    @strawberry.field
    def strict_wrong_part(self) -> Part:
        return Tool(name="t", sharp=True)  # type: ignore[return-value]

    @strawberry.field
    def cast_part(self) -> Part | None:
        # A cast decides strawberry's `is_type_of`, whatever the object's class.
        return strawberry.cast(Part, Tool(name="cast", sharp=False))  # type: ignore[return-value]

    @strawberry.field
    def miscast_part(self) -> Part | None:
        return strawberry.cast(Tool, Part(name="miscast", size=2))  # type: ignore[no-any-return]

    @strawberry.field
    def missing(self) -> Part:
        return None  # type: ignore[return-value]

    @strawberry.field
    def parts(self) -> list[Part | None]:
        # Instances of the class go to the plan at once; anything else the general way.
        return [Part(name="a", size=1), None, SubPart(name="sub", size=2),
                Tool(name="tool", sharp=True),  # type: ignore[list-item]
                strawberry.cast(Part, Tool(name="cast", sharp=False)),
                strawberry.cast(Tool, Part(name="miscast", size=3)),
                _odd(name="odd", size="big"), Part(name=None, size=4)]  # type: ignore[arg-type]

    @strawberry.field
    def strict_parts(self) -> list[Part]:
        return [Part(name="a", size=1), None]  # type: ignore[list-item]

    @strawberry.field
    def wrong_strict_parts(self) -> list[Part] | None:
        return [Part(name="a", size=1), Tool(name="t", sharp=True)]  # type: ignore[list-item]

    @strawberry.field
    def later_parts(self) -> list[Part | None]:
        async def soon() -> Part:
            await asyncio.sleep(0)
            return Part(name="soon", size=5)
        return [Part(name="now", size=0), soon()]  # type: ignore[list-item]

    @strawberry.field
    def things(self) -> list[Thing]:
        return [Part(name="p", size=1), Tool(name="t", sharp=True)]

    @strawberry.field
    def parent_name(self, parent: strawberry.Parent[Any], suffix: str = "") -> str | None:
        return f"{type(parent).__name__}{suffix}"

    @strawberry.field
    def raises(self) -> int | None:
        raise Boom("nullable")

    @strawberry.field
    def dated(self) -> list[Dated | None]:
        return [Dated(at=AT, maybe=None, note=None),
                Dated(at=date(2026, 1, 2), maybe=Later(2026, 1, 1), note="x"),  # type: ignore[arg-type]
                Dated(at="text", maybe=3, note=None),  # type: ignore[arg-type]
                Dated(at=None, maybe=AT, note=None),  # type: ignore[arg-type]
                _odd(maybe=AT, note=7)]

    @strawberry.field
    def info_part(self, info: strawberry.Info) -> Part:
        return Part(name=info.field_name, size=None)

    @strawberry.field
    def info_wrong(self, info: strawberry.Info) -> Part:
        return Tool(name=info.field_name, sharp=True)  # type: ignore[return-value]

    @strawberry.field
    def shelves(self) -> list[Shelf]:
        part = Part(name="p", size=1)
        return [Shelf(part=part, strict=SubPart(name="sub", size=2)),
                Shelf(part=strawberry.cast(Tool, part), strict=part),  # type: ignore[arg-type]
                Shelf(part=Tool(name="t", sharp=True), strict=None)]  # type: ignore[arg-type]

    @strawberry.field
    def wraps(self) -> list[Wrap[Part] | None]:
        part = Part(name="w", size=1)
        return [Wrap(item=part, items=[part, SubPart(name="s", size=2)]),
                _odd(item=part, items=[]), None,
                Wrap(item=Tool(name="t", sharp=True), items=[None]),  # type: ignore[arg-type, list-item]
                Wrap(item=None, items=part)]  # type: ignore[arg-type]

    @strawberry.field
    def wrap(self) -> Wrap[Part]:
        return Wrap(item=Part(name="one", size=None), items=[])

    @strawberry.field(deprecation_reason="use part")
    def old_part(self) -> Part | None:
        return Part(name="old", size=None)


FRAGMENT = "fragment P on Part { __typename name size }"

QUERIES = [
    "{ part { name size } p2: part(name: \"q\") { __typename n: name } }",
    "{ wrongPart { name } part { name } }",
    "{ strictWrongPart { name } part { name } }",
    "{ castPart { name size } miscastPart { name } }",
    "{ missing { name } }",
    "{ parts { __typename name size } }",
    FRAGMENT + " { parts { ...P ... on Part { s: size } } }",
    "{ strictParts { name } part { name } }",
    "{ wrongStrictParts { name } }",
    "{ laterParts { name size } }",
    "{ things { __typename name ... on Part { size } ... on Tool { sharp } } }",
    "{ parentName a: parentName(suffix: \"!\") raises }",
    "{ infoPart { name } infoWrong { name } }",
    "{ a: infoPart { name } shelves { part { name } strict { __typename name } } }",
    "{ shelves { part { size } } }",
    "{ wraps { __typename item { name } items { size } } wrap { item { name } } }",
    "{ dated { at maybe note } }",
    "{ dated { __typename a: at } }",
    "{ oldPart { name } part @skip(if: true) { name } p: part @include(if: true) { size } }",
    "query($n: String!) { part(name: $n) { name } parts { name } }",
    "query($yes: Boolean!) { part { name @include(if: $yes) } parts { size } }",
]


def _run(executor: type[StrawberryGraphQLCoreExecutionContext], query: str) -> dict[str, Any]:
    schema = strawberry.Schema(query=Query, types=[Part, Tool],
                               execution_context_class=executor)
    result = asyncio.run(schema.execute(query, variable_values={"n": "v", "yes": False}))
    return {"data": result.data,
            "errors": [(e.message, e.path, e.locations, repr(e.original_error))
                       for e in result.errors or []]}


@pytest.mark.parametrize("query", QUERIES)
def test_specialised_paths_as_graphql_core(query: str) -> None:
    assert _run(CompiledExecutor, query) == _run(StrawberryGraphQLCoreExecutionContext, query)


# -- on the customer-360 ------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    w = make_world(tmp_path_factory.mktemp("api-specialised"), store_uri=backend_uri(request))
    yield w
    w.rt.close()


def _seeded(world: World) -> str:
    page = world.rt.operator_session("service").customers(first=30)
    return next(c.id for c in page.items if c.id not in world.customers.values())


def test_the_customer_360_builds_no_info_where_none_is_read(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # A resolve info is built only for the resolvers that take one (customer, consents,
    # interactions, products), not for each interaction's product, its edge, its node
    # or its page info; and no DateTime, null or string leaf goes the general way.
    built: list[str] = []
    real = CompiledExecutor.build_resolve_info

    def spy(self: CompiledExecutor, field: Any, nodes: Any, parent: Any, path: Any) -> Any:
        built.append(nodes[0].name.value)
        return real(self, field, nodes, parent, path)

    leaves: list[str] = []
    real_leaf = CompiledExecutor._leaf

    def leaf(self: CompiledExecutor, step: Any, *args: Any) -> Any:
        leaves.append(step.name)
        return real_leaf(self, step, *args)

    monkeypatch.setattr(CompiledExecutor, "build_resolve_info", spy)
    monkeypatch.setattr(CompiledExecutor, "_leaf", leaf)
    api = Api(create_app(world.rt))
    try:
        data = api.data(QUERY_360, key=world.keys["app"], purpose="service",
                        variables={"id": _seeded(world)})
    finally:
        api.close()
    edges = data["customer"]["interactions"]["edges"]
    assert any(e["node"]["product"] for e in edges)
    assert any(e["node"]["occurredAt"] for e in edges)
    assert sorted(built) == ["consents", "customer", "interactions", "products"]
    assert set(leaves) <= {"price"}  # a Float goes through its coercion
