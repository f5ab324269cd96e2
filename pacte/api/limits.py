"""Bounds on what one GraphQL document may ask, and caches of parsed and validated documents.

Checked in this order, each before the costlier step it protects:

1. the parser refuses documents of more than `max_tokens` lexical tokens;
2. depth, aliases, field selections and cost are measured (fragments counted as often
   as they are spread, each fragment measured once, so a fragment "bomb" costs linear
   time) and a document over a limit is refused before the standard validation runs;
   the cost is how many fields execution may resolve: each field counts 1, and what is
   selected under a paged list (an argument `first`) counts once per item of the page
   (`first` as written, its default when omitted, the largest page when it is a
   variable), so nested pages multiply;
3. the standard validation, with introspection refused and suggestions hidden
   unless the app runs in development mode.

Parse and validation results are kept in small LRU caches keyed by the query text, so
a repeated query skips both. A cached entry holds no request data: only the document
and its validation errors, which derive from the query text alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    parse,
    validate,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension

__all__ = ["DocumentCache", "DocumentGuard", "Limits", "QueryGuard", "measure"]

K = TypeVar("K")
V = TypeVar("V")

TOO_COMPLEX = "QUERY_TOO_COMPLEX"
TOO_COSTLY = "QUERY_TOO_COSTLY"
# The largest page any field serves: what a page size given as a variable may be.
LARGEST_PAGE = 100


@dataclass(frozen=True, slots=True)
class Limits:
    """What one document may ask. The defaults fit every query the schema needs."""

    max_tokens: int = 2000
    max_depth: int = 10
    max_aliases: int = 30
    max_fields: int = 300
    # One customer list of 100 with 100 interactions each fits; two do not. Resolving
    # 50,000 fields takes about a tenth of a second.
    max_cost: int = 50_000
    cache_size: int = 256


class _LRU(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class DocumentCache:
    """Parsed documents and their validation errors, per app (they depend on its rules)."""

    def __init__(self, size: int) -> None:
        self.parsed: _LRU[str, DocumentNode] = _LRU(size)
        self.checked: _LRU[str, tuple[GraphQLError, ...]] = _LRU(size)


@dataclass(frozen=True, slots=True)
class Measure:
    depth: int
    aliases: int
    fields: int
    cost: int = 0


_EMPTY = Measure(0, 0, 0, 0)


def _page_size(field: FieldNode, definition: GraphQLField | None) -> int:
    """How many items a field's page may hold: 1 for a field without `first`."""
    arg = definition.args.get("first") if definition is not None else None
    if arg is None:
        return 1
    given = next((a.value for a in field.arguments or () if a.name.value == "first"), None)
    if isinstance(given, IntValueNode):
        return max(0, min(int(given.value), LARGEST_PAGE))
    if isinstance(given, VariableNode):
        return LARGEST_PAGE
    default = arg.default_value
    return default if isinstance(default, int) and given is None else LARGEST_PAGE


def measure(document: DocumentNode, schema: GraphQLSchema | None = None) -> Measure:
    """Depth, aliases, field selections and cost of the document's operations.

    The cost needs `schema` (to know which fields are paged and their default page
    size); without it every field counts 1. Introspection fields (`__schema`,
    `__type`, `__typename`) are not counted: they are refused outside development mode
    and their size is bounded by the schema. Fragment cycles count as empty here;
    validation reports them.
    """
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    memo: dict[tuple[str, str | None], Measure] = {}
    active: set[str] = set()

    def named(type_name: str | None) -> GraphQLNamedType | None:
        return schema.get_type(type_name) if schema is not None and type_name else None

    def fragment(name: str, parent: GraphQLNamedType | None) -> Measure:
        definition = fragments.get(name)
        if definition is None or name in active:
            return _EMPTY
        on = named(definition.type_condition.name.value) or parent
        key = (name, on.name if on is not None else None)
        found = memo.get(key)
        if found is not None:
            return found
        active.add(name)
        result = selections(definition.selection_set, on)
        active.discard(name)
        memo[key] = result
        return result

    def selections(node: SelectionSetNode | None, parent: GraphQLNamedType | None) -> Measure:
        depth = aliases = fields = cost = 0
        if node is None:
            return _EMPTY
        for sel in node.selections:
            if isinstance(sel, FieldNode):
                if sel.name.value.startswith("__"):
                    continue
                definition = (parent.fields.get(sel.name.value)
                              if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType))
                              else None)
                inner = selections(sel.selection_set, get_named_type(definition.type)
                                   if definition is not None else None)
                depth = max(depth, inner.depth + 1)
                aliases += inner.aliases + (sel.alias is not None)
                fields += inner.fields + 1
                cost += 1 + inner.cost * _page_size(sel, definition)
            else:
                if isinstance(sel, FragmentSpreadNode):
                    inner = fragment(sel.name.value, parent)
                elif isinstance(sel, InlineFragmentNode):
                    on = named(sel.type_condition.name.value) if sel.type_condition else None
                    inner = selections(sel.selection_set, on or parent)
                else:
                    inner = _EMPTY
                depth = max(depth, inner.depth)
                aliases += inner.aliases
                fields += inner.fields
                cost += inner.cost
        return Measure(depth, aliases, fields, cost)

    total = _EMPTY
    for d in document.definitions:
        if isinstance(d, OperationDefinitionNode):
            root = schema.get_root_type(d.operation) if schema is not None else None
            m = selections(d.selection_set, root)
            total = Measure(max(total.depth, m.depth), total.aliases + m.aliases,
                            total.fields + m.fields, total.cost + m.cost)
    return total


def _too_complex(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": TOO_COMPLEX})


def check_limits(document: DocumentNode, limits: Limits,
                 schema: GraphQLSchema | None = None) -> list[GraphQLError]:
    try:
        m = measure(document, schema)
    except RecursionError:
        return [_too_complex("the query is nested too deeply")]
    errors = []
    if m.depth > limits.max_depth:
        errors.append(_too_complex(
            f"the query is {m.depth} levels deep; at most {limits.max_depth} are allowed"))
    if m.aliases > limits.max_aliases:
        errors.append(_too_complex(
            f"the query uses {m.aliases} aliases; at most {limits.max_aliases} are allowed"))
    if m.fields > limits.max_fields:
        errors.append(_too_complex(
            f"the query selects {m.fields} fields; at most {limits.max_fields} are allowed"))
    if m.cost > limits.max_cost:
        errors.append(GraphQLError(
            f"the query may resolve {m.cost} fields (each field once per item of the pages "
            f"around it); at most {limits.max_cost} are allowed: ask for smaller pages",
            extensions={"code": TOO_COSTLY}))
    return errors


class DocumentGuard:
    """The limits of one app and its caches: parse and check a query text, once.

    Called, it is strawberry's extension factory (one `QueryGuard` per request, all
    sharing this); the app's direct execution path (pacte.api.operation) calls
    `parse` and `errors` itself, so both paths refuse and report alike.
    """

    def __init__(self, *, limits: Limits, dev: bool) -> None:
        self.limits = limits
        self.dev = dev
        self.cache = DocumentCache(limits.cache_size)
        # graphql-core's parse options; strawberry's TypedDict of them lists fewer.
        self.parse_options: dict[str, Any] = {"max_lexical_tokens": limits.max_tokens,
                                              "max_comments": limits.max_tokens}

    def __call__(self) -> QueryGuard:
        return QueryGuard(guard=self)

    def parse(self, query: str) -> DocumentNode:
        """The parsed document (cached); a GraphQLError for a query that does not parse."""
        doc = self.cache.parsed.get(query)
        if doc is None:
            doc = parse(query, **self.parse_options)
            self.cache.parsed.put(query, doc)
        return doc

    def errors(self, query: str, doc: DocumentNode, schema: GraphQLSchema,
               rules: Sequence[type[ASTValidationRule]]) -> tuple[GraphQLError, ...]:
        """The limits' and the validation's errors for `query` (cached); none: valid."""
        errors = self.cache.checked.get(query)
        if errors is None:
            errors = tuple(self._check(schema, doc, rules))
            self.cache.checked.put(query, errors)
        return errors

    def _check(self, schema: GraphQLSchema, doc: DocumentNode,
               rules: Sequence[type[ASTValidationRule]]) -> list[GraphQLError]:
        errors = check_limits(doc, self.limits, schema)
        if errors:
            return errors
        if not self.dev:
            rules = [*rules, NoSchemaIntrospectionCustomRule]
        return validate(schema, doc, rules, hide_suggestions=not self.dev)


class QueryGuard(SchemaExtension):
    """Parse with a token limit, check the limits, validate; cache both steps."""

    def __init__(self, *, guard: DocumentGuard) -> None:
        super().__init__()
        self._guard = guard

    @classmethod
    def factory(cls, *, limits: Limits, dev: bool) -> DocumentGuard:
        """One extension per request (strawberry's factory form), sharing one cache."""
        return DocumentGuard(limits=limits, dev=dev)

    def on_operation(self) -> Iterator[None]:
        # strawberry passes these to graphql-core's parse; its TypedDict lists fewer.
        options = cast(dict[str, Any], self.execution_context.parse_options)
        options.update(self._guard.parse_options)
        yield

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        query = ctx.query
        if query is not None and ctx.graphql_document is None:
            # A query that does not parse is left to strawberry's own parse (same
            # options), which reports it.
            with suppress(GraphQLError):
                ctx.graphql_document = self._guard.parse(query)
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        doc = ctx.graphql_document
        if doc is not None and ctx.query is not None:
            ctx.pre_execution_errors = list(self._guard.errors(
                ctx.query, doc, ctx.schema._schema, ctx.validation_rules))
        yield
