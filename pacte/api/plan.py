"""The plan of a query, made once per (schema, operation) for `pacte.api.compiled`.

For each selection set, on each object type, a `Plan` lists one `Step` per response key:
how its value is read (a bare attribute with its scalar's output coercion, `__typename`,
or the field's resolver, in one call where nothing wraps it: `direct`), its literal
arguments coerced in advance, and for an object or a list the `Shape` of its completion.
Nothing here runs per request; the executor (`pacte.api.compiled`) walks what this builds.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLID,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetails
from graphql.execution.values import VariableValues, get_argument_values
from graphql.language import DirectiveNode, Visitor, visit
from graphql.language.ast import BooleanValueNode
from graphql.type.introspection import TypeNameMetaFieldDef
from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.schema.types.base_scalars import isoformat as _isoformat
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryMaybe, StrawberryOptional
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.field import StrawberryField

from pacte.api.execution import Plain

__all__ = ["ATTR_LEAF", "NO_VARIABLES", "RESOLVE", "TYPENAME", "Direct", "Plan", "Shape",
           "Step", "compilable", "direct", "make_step"]

NO_VARIABLES = VariableValues({}, {})

# How a step reads its value.
ATTR_LEAF = 0   # a plain attribute holding a scalar or enum
TYPENAME = 1    # `__typename`: the parent type's name
RESOLVE = 2     # the field's resolver (strawberry's, or its default resolver)


class Shape:
    """How a value of one output type is completed (graphql-core's complete_value)."""

    __slots__ = ("cls", "fdl", "free_check", "inner", "items", "kind", "plan", "type")

    NON_NULL, LIST, LEAF, OBJECT, OTHER = range(5)

    def __init__(self, type_: GraphQLOutputType, fdl: list[FieldDetails]) -> None:
        self.type = type_
        self.fdl = fdl
        self.inner: Shape | None = None
        self.plan: Plan | None = None  # made at first use (OBJECT)
        self.cls: type | None = None
        self.free_check = False
        self.items: Shape | None = None  # LIST: the OBJECT shape of its items, if `cls`
        if isinstance(type_, GraphQLNonNull):
            self.kind = Shape.NON_NULL
            self.inner = Shape(type_.of_type, fdl)
        elif isinstance(type_, GraphQLList):
            self.kind = Shape.LIST
            self.inner = inner = Shape(type_.of_type, fdl)
            item = inner.inner if inner.kind == Shape.NON_NULL else inner
            # Items of the object type's class go to its plan at once (see `cls`).
            if item is not None and item.kind == Shape.OBJECT and item.cls is not None:
                self.items = item
        elif is_leaf_type(type_):
            self.kind = Shape.LEAF
        elif isinstance(type_, GraphQLObjectType):
            self.kind = Shape.OBJECT
            # Instances of this class are completed by the plan at once (where the type
            # has an `is_type_of`, strawberry's own, once it said yes).
            self.cls = _object_class(type_)
            # strawberry's `is_type_of` never reads its resolve info.
            self.free_check = _strawberry_check(type_)
        else:  # interfaces and unions: graphql-core resolves the runtime type
            self.kind = Shape.OTHER


class Step:
    """One response key of a selection set on one object type."""

    __slots__ = ("args", "as_is", "attr", "call", "enum", "fdl", "field", "getter",
                 "info_free", "iso", "key", "kind", "leaf", "name", "names", "nodes",
                 "non_null", "object", "resolve", "shape", "typename")

    def __init__(self, key: str, kind: int, fdl: list[FieldDetails]) -> None:
        self.key = key
        self.kind = kind
        self.fdl = fdl
        self.nodes: list[FieldNode] = [d.node for d in fdl]
        self.name = self.nodes[0].name.value
        self.field: GraphQLField | None = None
        self.attr = ""
        self.leaf: GraphQLLeafType | None = None
        # Values of this exact Python type are their own output (str for String/ID).
        self.as_is: type | None = None
        # An enum's members (by their Python name: an Enum hashes in Python, a str in C)
        # and their GraphQL names, as its output coercion finds them.
        self.enum: type | None = None
        self.names: dict[str, str] = {}
        # `datetime` where the scalar's output coercion is strawberry's `isoformat`: a
        # value of exactly that class is `value.isoformat()`, a string.
        self.iso: type | None = None
        self.non_null = False
        self.typename = ""
        self.resolve: Callable[..., Any] | None = None
        # What `resolve` amounts to, in one call (source, info, arguments), if known.
        self.call: Direct | None = None
        # `call` reads no info: none is built for it (see `_INFO_FREE`).
        self.info_free = False
        # The attribute `call` reads, when it is strawberry's bare `getattr` (no info).
        self.getter = ""
        # The OBJECT shape of the field's type, if its instances are completed at once
        # (`Shape.cls`).
        self.object: Shape | None = None
        self.args: dict[str, Any] | None = None  # None: read per request (variables)
        self.shape: Shape | None = None


Direct = Callable[[Any, Any, dict[str, Any]], Any]

# The `Direct` calls that never read the info they are passed (no `info` parameter, no
# argument to convert): the executor passes them its lazy `_Site` instead.
_INFO_FREE: weakref.WeakSet[Direct] = weakref.WeakSet()


def direct(field: GraphQLField, schema: GraphQLSchema) -> Direct | None:
    """strawberry's resolver for `field` in one call, where nothing else wraps it.

    strawberry reaches a resolver through five or six frames (its info object, the
    field extensions' chain, the argument conversion, `get_result`, the resolver
    object's `__call__`). Where the field has no extension (permission classes are
    one), the schema no exception handler and graphql-core's resolver is strawberry's
    own, the same steps are taken here in one frame: the same `Info`, the same
    `convert_argument`s, the source passed as `self`, `root` or `parent` as the
    resolver asks. A field without resolver is strawberry's `getattr`.
    """
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    strawberry_schema = getattr(schema, "_strawberry_schema", None)
    if not isinstance(definition, StrawberryField) or strawberry_schema is None \
            or definition.extensions or definition.is_subscription \
            or getattr(field.resolve, "_is_default", None) is None:
        return None
    if getattr(strawberry_schema.schema_converter, "_exception_handler_specs", True):
        return None  # handlers (or a strawberry that names them otherwise): its own path
    if definition.base_resolver is None:
        return _getter(field, definition)
    return _resolver_call(definition, strawberry_schema)


def _getter(field: GraphQLField, definition: StrawberryField) -> Direct | None:
    """strawberry's default resolver, where it is a bare `getattr`."""
    if not definition.is_basic_field or definition.default_resolver is not getattr \
            or field.args:
        return None
    attr = definition.python_name
    return lambda source, _info, _args: getattr(source, attr)


def _resolver_call(definition: StrawberryField, strawberry_schema: Any) -> Direct | None:
    """The field's own resolver, called as strawberry calls it."""
    resolver = definition.base_resolver
    assert resolver is not None
    func = resolver.wrapped_func
    if not callable(func):
        return None
    takes_self = resolver.self_parameter is not None
    names = [p.name for p in (resolver.parent_parameter, resolver.root_parameter)
             if p is not None]
    info_name = resolver.info_parameter.name if resolver.info_parameter else None
    registry = strawberry_schema.schema_converter.scalar_registry
    config = strawberry_schema.config
    info_class = config.info_class
    # `convert_arguments`, its per-call lookups done here: each argument's GraphQL
    # name, and whether its value is its own Python value (a scalar or an enum, or
    # null), as `convert_argument` would return it.
    arguments = [(config.name_converter.from_argument(a), a.python_name, a.type,
                  _as_given(a.type, registry)) for a in definition.arguments]

    if info_name is None and all(a[3] for a in arguments):
        # Nothing of the call reads an info: none is made (the step is `info_free`).
        given = [(name, python_name) for name, python_name, _, _ in arguments]

        def plain(source: Any, _info: Any, raw: dict[str, Any]) -> Any:
            kwargs = {python_name: raw[name] for name, python_name in given if name in raw}
            for name in names:
                kwargs[name] = source
            return func(source, **kwargs) if takes_self else func(**kwargs)
        _INFO_FREE.add(plain)
        return plain

    def call(source: Any, info: GraphQLResolveInfo[Any], raw: dict[str, Any]) -> Any:
        strawberry_info = info_class(_raw_info=info, _field=definition)
        kwargs: dict[str, Any] = {}
        for name, python_name, type_, as_given in arguments:
            if name in raw:
                value = raw[name]
                kwargs[python_name] = value if as_given else convert_argument(
                    value, type_, registry, config, strawberry_info, path=(name,))
        for name in names:
            kwargs[name] = source
        if info_name is not None:
            kwargs[info_name] = strawberry_info
        return func(source, **kwargs) if takes_self else func(**kwargs)
    return call


def _as_given(type_: Any, registry: Mapping[object, Any]) -> bool:
    """Whether strawberry's `convert_argument` returns any value of `type_` as it is: a
    scalar or enum, or null; not a list (copied), an input object (built), a `Maybe`
    (wrapped) or a GlobalID (decoded)."""
    if isinstance(type_, StrawberryMaybe) or type_ is GlobalID:
        return False
    if isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    if has_enum_definition(type_):
        type_ = type_.__strawberry_definition__
    return type_ is not GlobalID and (isinstance(type_, StrawberryEnumDefinition)
                                      or is_scalar(type_, registry))


class Plan:
    """The steps of one selection set on one object type."""

    __slots__ = ("steps", "type")

    def __init__(self, type_: GraphQLObjectType, steps: list[Step]) -> None:
        self.type = type_
        self.steps = steps


def _has_variable(node: FieldNode) -> bool:
    found = False

    class Find(Visitor):
        def enter_variable(self, *_: Any) -> None:
            nonlocal found
            found = True

    for arg in node.arguments or ():
        visit(arg, Find())
    return found


# graphql-core's output coercion returns a value of these types unchanged.
_AS_IS: dict[GraphQLLeafType, type] = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool}


def _enum_names(enum: CustomGraphQLEnumType) -> dict[str, str]:
    """What strawberry's enum coercion returns for each member, by the member's name:
    the first GraphQL name whose value equals the member's."""
    names: dict[str, str] = {}
    member: Any
    for member in enum.wrapped_cls:
        name = next((n for n, v in enum.values.items() if member.value == v.value), None)
        if name is not None:
            names[member._name_] = name
    return names


def make_step(schema: GraphQLSchema, parent: GraphQLObjectType, key: str,
              fdl: list[FieldDetails], plain: Mapping[str, Plain] | None,
              default_resolver: Callable[..., Any]) -> Step | None:
    node = fdl[0].node
    name = node.name.value
    if name == "__typename":
        step = Step(key, TYPENAME, fdl)
        step.typename = parent.name
        step.field = TypeNameMetaFieldDef
        return step
    field = schema.get_field(parent, name)
    if field is None:
        return None  # graphql-core leaves such a key out too
    p = plain.get(name) if plain is not None else None
    if p is not None and not node.arguments:
        return _leaf_step(key, fdl, field, p)
    step = Step(key, RESOLVE, fdl)
    step.field = field
    step.resolve = field.resolve or default_resolver
    step.call = direct(field, schema)
    step.info_free = step.call in _INFO_FREE
    step.shape = shape = Shape(field.type, fdl)
    # An object of the field's type's own class goes straight to its plan.
    target = shape.inner if shape.kind == Shape.NON_NULL else shape
    if target is not None and target.kind == Shape.OBJECT and target.cls is not None:
        step.object = target
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if step.call is not None and isinstance(definition, StrawberryField) \
            and definition.base_resolver is None:
        _read_by_getattr(step, definition.python_name)
    if not _has_variable(node):
        try:
            step.args = get_argument_values(field, node, NO_VARIABLES) \
                if field.args or node.arguments else {}
        except GraphQLError:
            step.args = None  # reported by graphql-core's code at execution
    return step


def _leaf_step(key: str, fdl: list[FieldDetails], field: GraphQLField, p: Plain) -> Step:
    """A step reading a plain attribute holding a scalar or enum."""
    step = Step(key, ATTR_LEAF, fdl)
    step.attr, step.leaf, step.non_null = p.attr, p.leaf, p.non_null
    step.field = field
    step.as_is = _AS_IS.get(p.leaf)
    if p.leaf.coerce_output_value is _isoformat:
        step.iso = datetime
    if isinstance(p.leaf, CustomGraphQLEnumType):
        step.enum, step.names = p.leaf.wrapped_cls, _enum_names(p.leaf)
    return step


def _read_by_getattr(step: Step, attr: str) -> None:
    """`direct` made the step's resolver strawberry's getattr: read `attr` with no
    resolve info."""
    step.getter = attr


def _class_of(type_: GraphQLObjectType) -> type | None:
    """The Python class of a strawberry object type, if its instances are plainly
    objects: not exceptions, not awaitables."""
    definition = (type_.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    # A generic's specialisation (`InteractionEdge`) is given objects of the generic
    # class (`Edge`): strawberry's `is_type_of` accepts those too.
    concrete = getattr(definition, "concrete_of", None)
    origin = getattr(concrete if concrete is not None else definition, "origin", None)
    if not isinstance(origin, type) or issubclass(origin, BaseException) \
            or hasattr(origin, "__await__"):
        return None
    return origin


# strawberry's `is_type_of` (for types with interfaces) reads the object alone (its
# cast, its class), never the resolve info it is given.
_STRAWBERRY_CHECK = ("strawberry.schema.schema_converter",
                     "GraphQLCoreConverter.from_object.<locals>._get_is_type_of"
                     ".<locals>.is_type_of")


def _strawberry_check(type_: GraphQLObjectType) -> bool:
    check = type_.is_type_of
    return check is not None and (getattr(check, "__module__", None),
                                  getattr(check, "__qualname__", None)) == _STRAWBERRY_CHECK


def _object_class(type_: GraphQLObjectType) -> type | None:
    """The class whose instances a Shape completes by its plan at once: a type with no
    `is_type_of`, or strawberry's (asked first, with no resolve info built)."""
    if type_.is_type_of is not None and not _strawberry_check(type_):
        return None
    return _class_of(type_)


def compilable(operation: OperationDefinitionNode,
                fragments: Mapping[str, FragmentDefinitionNode]) -> bool:
    """Only queries whose selections do not depend on variables or incremental delivery."""
    if operation.operation is not OperationType.QUERY:
        return False
    ok = True

    class Check(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            nonlocal ok
            args = node.arguments or ()
            if node.name.value not in ("skip", "include") or len(args) != 1 \
                    or not isinstance(args[0].value, BooleanValueNode):
                ok = False

        def enter_variable_definition(self, *_: Any) -> Any:
            return Visitor.SKIP  # directives on variable definitions select nothing

    visit(operation, Check())
    for d in fragments.values():
        if d.variable_definitions:
            return False
        visit(d, Check())
    return ok

