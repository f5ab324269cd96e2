"""Bounds on what one GraphQL document may ask, and caches of parsed and validated documents.

Checked in this order, each before the costlier step it protects:

1. the parser refuses documents of more than `max_tokens` lexical tokens;
2. depth, aliases and field selections are measured (fragments counted as often as
   they are spread, each fragment measured once, so a fragment "bomb" costs linear
   time) and a document over a limit is refused before the standard validation runs;
3. the standard validation, with introspection refused and suggestions hidden
   unless the app runs in development mode.

Parse and validation results are kept in small LRU caches keyed by the query text, so
a repeated query skips both. A cached entry holds no request data: only the document
and its validation errors, which derive from the query text alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    validate,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension

__all__ = ["DocumentCache", "Limits", "QueryGuard", "measure"]

K = TypeVar("K")
V = TypeVar("V")

TOO_COMPLEX = "QUERY_TOO_COMPLEX"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one document may ask. The defaults fit every query the schema needs."""

    max_tokens: int = 2000
    max_depth: int = 10
    max_aliases: int = 30
    max_fields: int = 300
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


def measure(document: DocumentNode) -> Measure:
    """Depth, aliases and field selections of the document's operations.

    Introspection fields (`__schema`, `__type`, `__typename`) are not counted: they are
    refused outside development mode and their size is bounded by the schema.
    Fragment cycles count as empty here; validation reports them.
    """
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    memo: dict[str, Measure] = {}
    active: set[str] = set()

    def fragment(name: str) -> Measure:
        found = memo.get(name)
        if found is not None:
            return found
        definition = fragments.get(name)
        if definition is None or name in active:
            return Measure(0, 0, 0)
        active.add(name)
        result = selections(definition.selection_set)
        active.discard(name)
        memo[name] = result
        return result

    def selections(node: SelectionSetNode | None) -> Measure:
        depth = aliases = fields = 0
        if node is None:
            return Measure(0, 0, 0)
        for sel in node.selections:
            if isinstance(sel, FieldNode):
                if sel.name.value.startswith("__"):
                    continue
                inner = selections(sel.selection_set)
                depth = max(depth, inner.depth + 1)
                aliases += inner.aliases + (sel.alias is not None)
                fields += inner.fields + 1
            else:
                inner = (fragment(sel.name.value) if isinstance(sel, FragmentSpreadNode)
                         else selections(sel.selection_set)
                         if isinstance(sel, InlineFragmentNode) else Measure(0, 0, 0))
                depth = max(depth, inner.depth)
                aliases += inner.aliases
                fields += inner.fields
        return Measure(depth, aliases, fields)

    total = Measure(0, 0, 0)
    for d in document.definitions:
        if isinstance(d, OperationDefinitionNode):
            m = selections(d.selection_set)
            total = Measure(max(total.depth, m.depth), total.aliases + m.aliases,
                            total.fields + m.fields)
    return total


def _too_complex(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": TOO_COMPLEX})


def check_limits(document: DocumentNode, limits: Limits) -> list[GraphQLError]:
    try:
        m = measure(document)
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
    return errors


class QueryGuard(SchemaExtension):
    """Parse with a token limit, check the limits, validate; cache both steps."""

    def __init__(self, *, limits: Limits, cache: DocumentCache, dev: bool) -> None:
        super().__init__()
        self._limits = limits
        self._cache = cache
        self._dev = dev

    @classmethod
    def factory(cls, *, limits: Limits, dev: bool) -> Callable[[], QueryGuard]:
        """One extension per request (strawberry's factory form), sharing one cache."""
        cache = DocumentCache(limits.cache_size)
        return lambda: cls(limits=limits, cache=cache, dev=dev)

    def on_operation(self) -> Iterator[None]:
        # strawberry passes these to graphql-core's parse; its TypedDict lists fewer.
        options = cast(dict[str, Any], self.execution_context.parse_options)
        options.update(max_lexical_tokens=self._limits.max_tokens,
                       max_comments=self._limits.max_tokens)
        yield

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        query = ctx.query
        if query is not None and ctx.graphql_document is None:
            doc = self._cache.parsed.get(query)
            if doc is None:
                try:
                    doc = parse(query, **ctx.parse_options)
                except GraphQLError:
                    # Left to strawberry's own parse (same options), which reports it.
                    doc = None
                else:
                    self._cache.parsed.put(query, doc)
            ctx.graphql_document = doc
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        doc = ctx.graphql_document
        if doc is not None and ctx.query is not None:
            errors = self._cache.checked.get(ctx.query)
            if errors is None:
                errors = tuple(self._check(ctx.schema._schema, doc, ctx.validation_rules))
                self._cache.checked.put(ctx.query, errors)
            ctx.pre_execution_errors = list(errors)
        yield

    def _check(self, schema: GraphQLSchema, doc: DocumentNode,
               rules: Sequence[type[ASTValidationRule]]) -> list[GraphQLError]:
        errors = check_limits(doc, self._limits)
        if errors:
            return errors
        if not self._dev:
            rules = [*rules, NoSchemaIntrospectionCustomRule]
        return validate(schema, doc, rules, hide_suggestions=not self._dev)
