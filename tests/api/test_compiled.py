"""The compiled executor answers exactly as graphql-core's own execution, on both stores.

Each document goes to two apps over the same data directory: the app as shipped
(`CompiledExecutor`) and the same schema under strawberry's stock executor. Bodies,
statuses and the audit records each request appends must be the same: the same data,
the same errors with the same paths and locations, the same reads on record.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterator
from typing import Any

import pytest
import strawberry
from graphql.execution.executor import Executor
from strawberry.permission import BasePermission
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

from pacte.api import create_app
from pacte.api.compiled import CompiledExecutor
from pacte.api.schema import build_schema
from tests.api.conftest import QUERY_360, Api, make_world
from tests.conftest import BACKENDS, backend_uri
from tests.helpers import World


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    w = make_world(tmp_path_factory.mktemp("api-compiled"), store_uri=backend_uri(request))
    yield w
    w.rt.close()


@pytest.fixture(scope="module")
def arms(world: World) -> Iterator[tuple[Api, Api]]:
    stock_schema = build_schema()
    stock_schema.execution_context_class = StrawberryGraphQLCoreExecutionContext
    ours, stock = Api(create_app(world.rt)), Api(create_app(world.rt, schema=stock_schema))
    yield ours, stock
    ours.close()
    stock.close()


def _seeded(world: World) -> list[str]:
    """Seeded customers (with interactions and purchases), in id order."""
    page = world.rt.operator_session("service").customers(first=30)
    return [c.id for c in page.items if c.id not in world.customers.values()][:3]


def _appended(world: World, before: int) -> list[dict[str, Any]]:
    """The audit records appended since `before`, without what differs per request."""
    trail = world.rt._backend.audit
    out = []
    for entry in trail.entries(after_seq=before - 1):
        record = {k: v for k, v in entry.record.items() if k not in ("request_id", "request")}
        out.append(record)
    return out


_CUSTOMER_FRAGMENT = """
fragment Person on Customer { id name email ...More __typename }
fragment More on Customer { phone segment createdAt withheld { field reason } }
"""

# (query, purpose, variables): `$id`, `$other` and `$product` are filled in below.
DOCUMENTS: list[tuple[str, str, dict[str, Any]]] = [
    (QUERY_360, "service", {}),
    (QUERY_360, "marketing.email", {}),
    ("""query($id: ID!) { customer(id: $id) {
          id name email phone address birthDate ageBand segment createdAt
          withheld { field reason }
          interactions(first: 5) { edges { node { id channel kind occurredAt summary amount
                                                   withheld { field reason } } } }
          products { id sku name category price } } }""", "service", {}),
    # aliases: one customer twice with other fields, and two customers batched
    ("""query($id: ID!, $other: ID!) {
          a: customer(id: $id) { id name }
          b: customer(id: $id) { email n: name x: interactions(first: 2) { edges { cursor } } }
          c: customer(id: $other) { id phone } }""", "service", {}),
    # one key asked twice around another: resumed as asyncio wakes them (a, c, then b)
    ("""query($id: ID!, $other: ID!) {
          a: customer(id: $id) { id consents { purpose } products { id } }
          b: customer(id: $other) { id consents { purpose } products { id } }
          c: customer(id: $id) { id consents { purpose } products { id } }
          d: node(id: $other) { id ... on Customer { name } } }""", "service", {}),
    # fragments, named, nested and inline, and __typename at every level
    (_CUSTOMER_FRAGMENT + """query($id: ID!) { __typename customer(id: $id) {
          ...Person ... on Customer { address } ... { ageBand }
          interactions(first: 3) { __typename edges { __typename node { __typename id
            ... on Interaction { channel } product { __typename ... on Product { sku } } } }
            pageInfo { __typename hasNextPage hasPreviousPage startCursor } } } }""",
     "service", {}),
    # the Node interface: abstract types go through graphql-core's type resolution
    ("""query($id: ID!, $product: ID!) {
          n: node(id: $id) { id __typename ... on Customer { name } ... on Product { sku } }
          p: node(id: $product) { id __typename ... on Product { name price } }
          missing: node(id: "c_missing") { id } }""", "service", {}),
    # @skip / @include, literal (compiled) and with variables (left to graphql-core)
    ("""query($id: ID!) { customer(id: $id) { id name @skip(if: true) email @include(if: true)
          phone @include(if: false) consents @skip(if: false) { purpose } } }""",
     "service", {}),
    ("""query($id: ID!, $yes: Boolean!) { customer(id: $id) { id name @include(if: $yes)
          email @skip(if: $yes) } }""", "service", {"yes": True}),
    # arguments from variables, enums included, and their defaults
    ("""query($id: ID!, $n: Int, $ch: Channel) { customer(id: $id) {
          interactions(first: $n, channel: $ch) { edges { node { id channel kind } }
                                                  pageInfo { hasNextPage endCursor } }
          recommendations { id } } }""", "service", {"n": 3, "ch": None}),
    ("""query($id: ID!) { customer(id: $id) { interactions(first: 2, channel: email) {
          edges { node { channel } } } } }""", "service", {}),
    # errors: a malformed cursor (a refusal in a non-null field: the null climbs to
    # `customer`), a malformed id beside a good one, a role the field refuses
    ("""query($id: ID!) { customer(id: $id) { id interactions(after: "garbage") {
          edges { cursor } } } }""", "service", {}),
    ("query($id: ID!) { good: customer(id: $id) { id } bad: customer(id: \"%s\") { id } }"
     % ("x" * 101), "service", {}),
    ("""{ me { id } auditTrail(first: 2) { edges { cursor } } }""", "service", {}),
    ("""query($id: ID!) { myDataUses(customerId: $id) { edges { cursor } } }""",
     "service", {}),
    ("""{ customers(first: 1000) { edges { cursor } } }""", "service", {}),
    # nulls: absent and invisible customers, nullable fields left null
    ("""query($other: ID!) { customer(id: "c_nobody") { id } other: customer(id: $other) {
          id name email segment } }""", "marketing.email", {}),
    # lists, pages and the root fields around them
    ("""{ customers(first: 4) { totalCount edges { cursor node { id name email createdAt } }
                               pageInfo { hasNextPage endCursor } }
          me { id name role purposes }
          purposes { id parent legalBasis consentRequired categories retentionDays
                     description }
          products(first: 2) { edges { node { id sku name category price } } } }""",
     "service", {}),
    ("""query($product: ID!) { product(id: $product) { id name price }
          none: product(id: "p_none") { id } }""", "service", {}),
    # what lies around a customer, under the purposes that may see it
    ("""query($id: ID!) { customer(id: $id) { devices { id deviceType location
          telemetry { usageMinutesPerDay } withheld { field reason } }
          reviews { rating at product { id } } referrals { id name }
          nextBestActions { kind target score expiresAt why { category source detail } } } }""",
     "personalization", {}),
    ("""query($id: ID!) { customer(id: $id) { referrals { id email } } }""",
     "marketing.email", {}),
]


@pytest.mark.parametrize(("query", "purpose", "extra"), DOCUMENTS)
def test_same_as_graphql_core(world: World, arms: tuple[Api, Api], query: str, purpose: str,
                              extra: dict[str, Any]) -> None:
    ours, stock = arms
    seeded = _seeded(world)
    granted = world.customers["granted"]
    trail = world.rt._backend.audit
    for cid, other in ((seeded[0], granted), (granted, seeded[1])):
        given = {"id": cid, "other": other, "product": world.product, **extra}
        variables = {k: v for k, v in given.items() if f"${k}" in query}
        replies = []
        for api in (ours, stock):
            before = trail.size()
            r = api.post(query, key=world.keys["app"], purpose=purpose, variables=variables)
            replies.append((r.status_code, r.json(), _appended(world, before)))
        assert replies[0] == replies[1]


# What the app's direct path (pacte.api.operation) answers before and around execution,
# against strawberry's `Schema.execute` (the stock arm takes it): (method, body).
_AROUND: list[tuple[str, dict[str, Any]]] = [
    ("POST", {"query": "{ customer(id: "}),  # does not parse
    ("POST", {"query": "{ nothing }"}),  # does not validate
    ("POST", {"query": "{ __schema { types { name } } }"}),  # introspection, refused
    ("POST", {"query": "{ a: me { id } " + " ".join(f"b{i}: me {{ id }}" for i in range(40))
              + " }"}),  # over the alias limit
    ("POST", {"query": "fragment F on Query { me { id } }"}),  # no operation
    ("POST", {"query": "query A { me { id } } query B { purposes { id } }"}),
    ("POST", {"query": "query A { me { id } } query B { purposes { id } }",
              "operationName": "B"}),
    ("POST", {"query": "query A { me { id } }", "operationName": "C"}),
    ("POST", {"query": "{ me { id } }", "variables": {"unused": 1}}),
    ("POST", {"query": "query($n: Int!) { products(first: $n) { edges { cursor } } }",
              "variables": {"n": "many"}}),  # a variable of the wrong type
    ("POST", {"query": "query($n: Int!) { products(first: $n) { edges { cursor } } }"}),
    ("GET", {"query": "mutation { withdrawConsent(customerId: \"c\", purpose: \"x\") "
                      "{ purpose } }"}),  # a mutation over GET
    ("GET", {"query": "{ me { id } }"}),
    # a root field refused beside customers still pending: nothing of theirs is read
    ("POST", {"query": "query($id: ID!) { a: customer(id: $id) { id name } "
                       "auditTrail { edges { cursor } } b: customer(id: $id) { email } }"}),
]


@pytest.mark.parametrize(("method", "body"), _AROUND)
def test_around_execution_as_strawberry(world: World, arms: tuple[Api, Api], method: str,
                                        body: dict[str, Any]) -> None:
    ours, stock = arms
    trail = world.rt._backend.audit
    if "$id" in body["query"]:
        body = {**body, "variables": {"id": _seeded(world)[0]}}
    headers = {"Authorization": f"Bearer {world.keys['app']}", "X-Purpose": "service"}
    replies = []
    for api in (ours, stock):
        before = trail.size()
        if method == "GET":
            r = api.request("GET", params=body, headers=headers)
        else:
            r = api.request("POST", json=body, headers=headers)
        replies.append((r.status_code, r.json(), _appended(world, before)))
    assert replies[0] == replies[1]


def test_the_app_runs_pacte_schema_without_strawberry_wrapper(
        world: World, arms: tuple[Api, Api], monkeypatch: pytest.MonkeyPatch) -> None:
    # strawberry's per-request wrapper (an execution context, the extensions' hooks,
    # a coroutine) is not used for the app's own schema; it still is for any other.
    wrapped: list[str | None] = []
    real = strawberry.Schema.execute

    async def spy(self: strawberry.Schema, query: str | None, *args: Any, **kwargs: Any
                  ) -> Any:
        wrapped.append(query)
        return await real(self, query, *args, **kwargs)

    monkeypatch.setattr(strawberry.Schema, "execute", spy)
    for api in arms:
        assert api.data(QUERY_360, key=world.keys["app"], purpose="service",
                        variables={"id": _seeded(world)[0]})["customer"]["id"]
        assert api.data("{ __typename }", key=world.keys["app"],
                        purpose="service") == {"__typename": "Query"}
    assert wrapped == [QUERY_360, "{ __typename }"]  # the stock arm's two


def test_the_customer_360_runs_from_its_plan(world: World, arms: tuple[Api, Api],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # graphql-core's per-field walk is not used at all for the customer-360.
    walked: list[str] = []
    real = Executor.execute_fields

    def spy(self: Executor[Any], *args: Any) -> Any:
        walked.append(args[0].name)
        return real(self, *args)

    monkeypatch.setattr(Executor, "execute_fields", spy)
    # Nor strawberry's chain of wrappers around each resolver: one call instead.
    chained: list[str] = []
    real_result = StrawberryField.get_result

    def chain(self: StrawberryField, *args: Any, **kwargs: Any) -> Any:
        chained.append(self.python_name)
        return real_result(self, *args, **kwargs)

    monkeypatch.setattr(StrawberryField, "get_result", chain)
    ours, stock = arms
    variables = {"id": _seeded(world)[0]}
    assert ours.data(QUERY_360, key=world.keys["app"], purpose="service",
                     variables=variables)["customer"]["interactions"]["edges"]
    assert walked == chained == []
    stock.data(QUERY_360, key=world.keys["app"], purpose="service", variables=variables)
    assert "Customer" in walked
    assert {"customer", "interactions", "edges", "product"} <= set(chained)


# -- edge cases, on a small schema -----------------------------------------------------


class Boom(Exception):
    pass


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Leaf(Named):
    count: int | None
    strict: int


@strawberry.type
class Other(Named):
    flag: bool


def _bad(**fields: Any) -> Any:
    # Not a strawberry object: values the type refuses, or fields missing.
    return type("Bad", (), fields)()


class Never(BasePermission):
    message = "not for you"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return False


@strawberry.input
class Pick:
    first: int
    label: str | None = None


@strawberry.enum
class Kind(enum.Enum):
    A = "a"
    B = "b"


@strawberry.type
class Box:
    label: str

    @strawberry.field(permission_classes=[Never])
    def guarded(self) -> str | None:
        return "secret"

    @strawberry.field
    def parent_label(self, parent: strawberry.Parent[Box], info: strawberry.Info) -> str:
        return f"{parent.label}/{info.field_name}"

    @strawberry.field
    def leaves(self) -> list[Leaf | None]:
        return [Leaf(name="a", count=1, strict=1), None,
                _bad(name="c", count="many", strict=3),  # a string in an Int
                Leaf(name="d", count=None, strict=None)]  # type: ignore[arg-type]

    @strawberry.field
    def strict_leaves(self) -> list[Leaf]:
        return [Leaf(name="a", count=1, strict=1), None]  # type: ignore[list-item]

    @strawberry.field
    def raises(self) -> str | None:
        raise Boom("nullable")

    @strawberry.field
    def raises_strict(self) -> str:
        raise Boom("non-null")

    @strawberry.field
    def returns_error(self) -> int | None:
        return ValueError("returned")  # type: ignore[return-value]

    @strawberry.field
    async def later(self, n: int = 2) -> list[int]:
        await asyncio.sleep(0)
        return list(range(n))

    @strawberry.field
    async def later_fails(self) -> Leaf:
        await asyncio.sleep(0)
        raise Boom("async")

    @strawberry.field
    def awaitables(self) -> list[int | None]:
        async def one(v: int) -> int:
            if v == 2:
                raise Boom("item")
            return v
        return [one(1), one(2), 3]  # type: ignore[list-item]

    @strawberry.field
    def generated(self) -> list[str]:
        return (s for s in ("x", "y"))  # type: ignore[return-value]

    @strawberry.field
    def not_a_list(self) -> list[str] | None:
        return 42  # type: ignore[return-value]

    @strawberry.field
    def named(self) -> list[Named]:
        return [Leaf(name="l", count=None, strict=0), Other(name="o", flag=True)]

    @strawberry.field
    def wrong_type(self) -> Leaf | None:
        return Other(name="o", flag=False)  # type: ignore[return-value]

    @strawberry.field
    def echo(self, text: str, times: int = 1) -> str:
        return text * times

    @strawberry.field
    def args(self, words: list[str], pick: Pick | None = None,
             maybe: strawberry.Maybe[int | None] = None, kind: Kind = Kind.A,
             nid: strawberry.relay.GlobalID | None = None) -> str:
        # What each argument arrived as: copied lists, built inputs, wrapped Maybes.
        return repr((words, type(words).__name__, pick, maybe, kind, nid))


async def _soon(value: Any) -> Any:
    await asyncio.sleep(0)
    if isinstance(value, Exception):
        raise value
    return value


@strawberry.type
class Holder:
    # Fields without resolver, of object and list types: read by a bare getattr, and
    # completed without a resolve info until completion needs one.
    leaf: Named | None  # an interface: resolved by graphql-core with the info
    held: Leaf | None  # Leaf implements Named: strawberry gives it an is_type_of
    strict: Leaf
    many: list[Leaf | None] | None
    soon: Leaf | None


@strawberry.enum
class Mood(enum.Enum):
    HAPPY = "happy"
    GLAD = "happy"  # an alias: the same member as HAPPY
    SAD = 2


@strawberry.type
class Tagged:
    # Enum attributes: members go by a table made at plan time, anything else through
    # the enum's output coercion.
    mood: Mood
    kind: Kind | None


class SubBox(Box):
    pass


@strawberry.type
class Wrapper:
    # Object fields without resolver, of a type with no is_type_of: an instance of the
    # type's class is completed at once; anything else as graphql-core would.
    box: Box
    maybe: Box | None


@strawberry.type
class EdgeQuery:
    @strawberry.field
    def box(self) -> Box:
        return Box(label="box")

    @strawberry.field
    def boxes(self) -> list[Box | None]:
        return [Box(label="one"), _bad(label=None), Box(label="three")]

    @strawberry.field
    def holders(self) -> list[Holder | None]:
        leaf = Leaf(name="l", count=1, strict=1)
        return [
            Holder(leaf=leaf, held=leaf, strict=leaf, many=[leaf, None], soon=None),
            # the wrong object type, a list that is not one, awaitables in a list
            Holder(leaf=Other(name="o", flag=True), held=Other(name="o", flag=False),  # type: ignore[arg-type]
                   strict=leaf, many=42, soon=None),  # type: ignore[arg-type]
            # a null in a non-null field, attributes missing
            Holder(leaf=None, held=None, strict=None, many=None, soon=None),  # type: ignore[arg-type]
            _bad(leaf=None),
        ]

    @strawberry.field
    def waiting(self) -> list[Holder]:
        # Awaitables held in attributes (asked for by one query only: each is awaited).
        leaf = Leaf(name="l", count=1, strict=1)
        return [
            Holder(leaf=None, held=None, strict=leaf,
                   many=[_soon(leaf), _soon(Boom("item")), None],  # type: ignore[list-item]
                   soon=_soon(leaf)),  # type: ignore[arg-type]
            Holder(leaf=None, held=None, strict=leaf, many=None,
                   soon=_soon(Boom("attribute"))),  # type: ignore[arg-type]
        ]

    @strawberry.field
    def tagged(self) -> list[Tagged | None]:
        return [Tagged(mood=Mood.HAPPY, kind=Kind.B), Tagged(mood=Mood.GLAD, kind=None),
                Tagged(mood=Mood.SAD, kind="a"),  # type: ignore[arg-type]
                Tagged(mood=Kind.A, kind=Mood.SAD),  # type: ignore[arg-type]
                Tagged(mood="sad", kind="zz"),  # type: ignore[arg-type]
                Tagged(mood=None, kind=Kind.A)]  # type: ignore[arg-type]

    @strawberry.field
    def wrappers(self) -> list[Wrapper | None]:
        return [Wrapper(box=Box(label="a"), maybe=None),
                Wrapper(box=SubBox(label="sub"), maybe=Box(label="b")),
                Wrapper(box=_bad(label=7), maybe=_bad(label=None)),
                Wrapper(box=None, maybe=Box(label="c")),  # type: ignore[arg-type]
                _bad(box=Box(label="d"))]

    @strawberry.field
    def strict_box(self) -> Box:
        return _bad(label=7)  # type: ignore[no-any-return]


EDGE_QUERIES = [
    "{ box { label leaves { name count strict } } }",
    "{ box { strictLeaves { name } } }",
    "{ box { raises } other: box { label } }",
    "{ box { raisesStrict } }",
    "{ strictBox { label raisesStrict } }",
    "{ box { returnsError } }",
    "{ box { later l3: later(n: 3) laterFails { name } } }",
    "{ box { awaitables } }",
    "{ box { generated notAList } }",
    "{ box { named { __typename name ... on Leaf { count } ... on Other { flag } } } }",
    "{ box { wrongType { name } } }",
    "{ boxes { label leaves { strict } } }",
    "{ box { a: echo(text: \"ab\") b: echo(text: \"c\", times: 3) } }",
    "{ box { args(words: [\"x\"], pick: {first: 1}, maybe: null, kind: B, "
    "nid: \"Qm94OjE=\") other: args(words: [], maybe: 3) } }",
    "query($t: String!, $n: Int) { box { echo(text: $t, times: $n) } }",
    "{ box { label label ... on Box { label } } }",
    "{ box { label @skip(if: true) raises @include(if: false) } }",
    "{ __typename box { __typename leaves { __typename } } }",
    "{ box { guarded label parentLabel } }",
    "{ holders { leaf { name ... on Other { flag } } held { name } s: strict { name } } }",
    "{ holders { many { name strict } } waiting { many { name strict } soon { name } } }",
    "{ holders { held { __typename name } many { __typename } } }",
    "{ tagged { mood kind } }",
    "{ wrappers { box { label later } maybe { label l: later(n: 1) } } }",
    "{ wrappers { box { label raisesStrict } maybe { raises laterFails { name } } } }",
    "{ wrappers { maybe { label strictLeaves { name } } box { __typename } } }",
]


def _run(executor: type[StrawberryGraphQLCoreExecutionContext], query: str) -> dict[str, Any]:
    schema = strawberry.Schema(query=EdgeQuery, types=[Leaf, Other, Holder],
                               execution_context_class=executor)
    result = asyncio.run(schema.execute(query, variable_values={"t": "z", "n": 2}))
    return {"data": result.data,
            "errors": [(e.message, e.path, e.locations, repr(e.original_error))
                       for e in result.errors or []]}


@pytest.mark.parametrize("query", EDGE_QUERIES)
def test_errors_and_nulls_as_graphql_core(query: str) -> None:
    ours = _run(CompiledExecutor, query)
    assert ours == _run(StrawberryGraphQLCoreExecutionContext, query)


def test_a_schema_that_ran_is_freed_with_its_plans() -> None:
    # The plans and the plain-field tables live on the schema: nothing else keeps it.
    import gc
    import weakref

    schema = build_schema()
    core = weakref.ref(schema._schema)
    result = asyncio.run(schema.execute("{ __typename }"))
    assert result.data == {"__typename": "Query"}
    del schema, result
    gc.collect()
    assert core() is None
