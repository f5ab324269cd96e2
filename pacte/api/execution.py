"""graphql-core's executor with a short way through fields that only read an attribute.

Most of a customer-360 response is scalars read straight off an object its parent's
resolver built (`Customer.name`, `Interaction.channel`, `Edge.cursor`, ...). For each
one, graphql-core builds a resolve info, goes through strawberry's default resolver
(three frames), checks the result twice for awaitables and completes it through the
non-null wrapper: that came to about a quarter of the request's GraphQL time.

`PlainFieldExecutor` answers such a field itself, with the same `getattr` and the same
output coercion (`coerce_output_value` of the field's scalar or enum type), and hands
everything else to graphql-core unchanged: fields with a resolver, arguments, field
extensions or an object or list type; every field when a schema extension wraps
resolvers; and any value that is not plainly valid (null in a non-null field, a value
the scalar refuses, an exception object, a missing attribute). graphql-core then
raises, locates and propagates the error exactly as it would have.

A field is "plain" only if strawberry itself would resolve it with a bare
`getattr(source, python_name)`: a strawberry field without resolver, permission
classes or extensions, under strawberry's default resolver.

Queries run from a compiled plan (pacte.api.compiled), which reads plain fields the
same way; this executor answers what the plans leave to graphql-core (mutations,
documents whose selection depends on variables, resolve middleware).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    is_leaf_type,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

__all__ = ["PlainFieldExecutor", "plain_fields"]

_MISSING = object()


class Plain(NamedTuple):
    """How to answer one plain field: the attribute, its leaf type, whether non-null."""

    attr: str
    leaf: GraphQLLeafType
    non_null: bool


PlainFields = Mapping[GraphQLObjectType, Mapping[str, Plain]]

# Kept on the schema itself: the table refers to the schema's types, so a table beside
# it, keyed weakly by the schema, would keep every schema that ever ran alive.
_ON_SCHEMA = "_pacte_plain_fields"


def _plain(field: GraphQLField) -> Plain | None:
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
        return None
    # strawberry's own fast path for basic fields calls `default_resolver`; only a bare
    # getattr is reproduced here, and only where strawberry installed that fast path.
    if field.args or definition.default_resolver is not getattr \
            or not getattr(field.resolve, "_is_default", False):
        return None
    kind = field.type
    non_null = isinstance(kind, GraphQLNonNull)
    leaf = kind.of_type if isinstance(kind, GraphQLNonNull) else kind
    if not is_leaf_type(leaf):
        return None
    return Plain(definition.python_name, leaf, non_null)


def plain_fields(schema: GraphQLSchema) -> PlainFields:
    """The plain fields of each object type of `schema`, by GraphQL name (cached)."""
    found: PlainFields | None = getattr(schema, _ON_SCHEMA, None)
    if found is None:
        found = {}
        for t in schema.type_map.values():
            if isinstance(t, GraphQLObjectType) and not t.name.startswith("__"):
                fields = {n: p for n, f in t.fields.items() if (p := _plain(f)) is not None}
                if fields:
                    found[t] = fields
        setattr(schema, _ON_SCHEMA, found)
    return found


class PlainFieldExecutor(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, answering plain fields without a resolver call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        middleware = self.middleware_manager
        # Resolve middleware (a schema extension's `resolve`) must see every field.
        self._plain: PlainFields = {} if middleware is not None and middleware.middlewares \
            else plain_fields(self.schema)

    def execute_field(self, parent_type: GraphQLObjectType, source: Any,
                      field_details_list: Any, path: Any, position_context: Any) -> Any:
        fields = self._plain.get(parent_type)
        if fields is not None:
            spec = fields.get(field_details_list[0].node.name.value)
            if spec is not None:
                value = getattr(source, spec.attr, _MISSING)
                if value is None:
                    if not spec.non_null:
                        return None
                elif value is not _MISSING and not isinstance(value, Exception):
                    try:
                        coerced = spec.leaf.coerce_output_value(value)
                    except Exception:  # noqa: S110 -- graphql-core reports it below
                        pass
                    else:
                        if coerced is not None and coerced is not Undefined:
                            return coerced
        return super().execute_field(parent_type, source, field_details_list, path,
                                     position_context)
