"""Query execution compiled once per document, instead of graphql-core's per-field walk.

graphql-core works out, for every field of every object of a response, what to do: it
collects the sub-selections, looks the field up, builds a resolve info, reads the
arguments off the AST, calls the resolver through strawberry's wrappers, checks the
result for awaitables and completes it through the type's wrappers (non-null, list,
leaf or object). Most of it depends on the query alone, and pacte's clients send the
same few queries again and again (the customer-360 has about 200 fields).

`CompiledExecutor` does that work once per (schema, operation) and keeps it on the
schema for as long as the operation's parsed document lives (`QueryGuard` caches those
by query text): for each selection set, on
each object type, a list of `Step`s, each with its response key, how its value is
read (a bare attribute read with its scalar's output coercion, or the field's own
resolver with its literal arguments coerced in advance) and, for an object or a
list, the plan of its sub-selection, made at first use. A request then runs a tight
loop over those steps.

What each step is, decided at plan time, saves per request what graphql-core decides
per field: an enum attribute goes through a table of its members' GraphQL names; a
field strawberry resolves with a bare `getattr` (`edges`, `node`, `pageInfo`) is read
with no resolve info, which is built only if completion asks for one (`_Site`), and an
object of the field's own class (a type with no `is_type_of`) goes straight to its
plan; values of builtin types are never asked whether they are awaitable.

Where the outcome is not plainly a value it runs graphql-core's own code on the
spot, so that errors, their paths and locations, and how a null climbs to the nearest
nullable field stay exactly graphql-core's: a resolver that raises or returns an
exception, a null in a non-null field, a value its scalar refuses (`handle_field_error`,
`complete_leaf_value`, `execute_field` are graphql-core's), an abstract type
(`node(id:)`, resolved by `complete_abstract_value`), a list that is not a list or
tuple. Awaitables are gathered where graphql-core gathers them (sibling fields
together, so the customer DataLoader still batches aliases). Nothing is executed twice.

Operations it leaves whole to graphql-core (and `PlainFieldExecutor`): mutations
(serial), any use of a directive other than `@skip`/`@include` with a literal `if`
(`@defer`, `@stream`, or a variable deciding what is selected), fragment variables,
and every operation when a schema extension wraps resolvers (middleware) or an abort
signal is set. A resolver wrapped by a field extension (permission classes are one)
or an exception handler runs through strawberry's `field.resolve`; any other is called
in one frame that takes strawberry's steps (`_direct`).
"""

from __future__ import annotations

import weakref
from asyncio import get_running_loop
from collections.abc import Awaitable, Callable, Mapping
from inspect import iscoroutine
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
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetails, collect_fields, collect_subfields
from graphql.execution.executor import Executor, invalid_return_type_error
from graphql.execution.values import VariableValues, get_argument_values
from graphql.language import DirectiveNode, Visitor, visit
from graphql.language.ast import BooleanValueNode
from graphql.pyutils import Path, gather_with_cancel
from graphql.type.introspection import TypeNameMetaFieldDef
from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryMaybe, StrawberryOptional
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.field import StrawberryField

from pacte.api.execution import Plain, PlainFieldExecutor

__all__ = ["CompiledExecutor"]

_MISSING = object()
_NO_VARIABLES = VariableValues({}, {})

# Values of these types are never awaitable: told apart without a call (strawberry's
# `optimized_is_awaitable` looks the same types up, one frame deeper, 150 times a 360).
_SYNC = frozenset({dict, list, tuple, str, int, float, bool, type(None)})

# How a step reads its value.
_ATTR_LEAF = 0   # a plain attribute holding a scalar or enum
_TYPENAME = 1    # `__typename`: the parent type's name
_RESOLVE = 2     # the field's resolver (strawberry's, or its default resolver)


class Shape:
    """How a value of one output type is completed (graphql-core's complete_value)."""

    __slots__ = ("fdl", "inner", "kind", "plan", "type")

    NON_NULL, LIST, LEAF, OBJECT, OTHER = range(5)

    def __init__(self, type_: GraphQLOutputType, fdl: list[FieldDetails]) -> None:
        self.type = type_
        self.fdl = fdl
        self.inner: Shape | None = None
        self.plan: Plan | None = None  # made at first use (OBJECT)
        if isinstance(type_, GraphQLNonNull):
            self.kind = Shape.NON_NULL
            self.inner = Shape(type_.of_type, fdl)
        elif isinstance(type_, GraphQLList):
            self.kind = Shape.LIST
            self.inner = Shape(type_.of_type, fdl)
        elif is_leaf_type(type_):
            self.kind = Shape.LEAF
        elif isinstance(type_, GraphQLObjectType):
            self.kind = Shape.OBJECT
        else:  # interfaces and unions: graphql-core resolves the runtime type
            self.kind = Shape.OTHER


class Step:
    """One response key of a selection set on one object type."""

    __slots__ = ("args", "as_is", "attr", "call", "cls", "enum", "fdl", "field", "getter",
                 "key", "kind", "leaf", "name", "names", "nodes", "non_null", "object",
                 "resolve", "shape", "typename")

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
        self.non_null = False
        self.typename = ""
        self.resolve: Callable[..., Any] | None = None
        # What `resolve` amounts to, in one call (source, info, arguments), if known.
        self.call: Direct | None = None
        # The attribute `call` reads, when it is strawberry's bare `getattr` (no info).
        self.getter = ""
        # With `getter`: the class whose instances are completed as objects of the field's
        # type at once (its `object` shape; the type has no `is_type_of` to ask).
        self.cls: type | None = None
        self.object: Shape | None = None
        self.args: dict[str, Any] | None = None  # None: read per request (variables)
        self.shape: Shape | None = None


Direct = Callable[[Any, GraphQLResolveInfo[Any], dict[str, Any]], Any]


class _Site:
    """Where a field read by a bare `getattr` is completed: what its resolve info would
    be made of, made only if completion asks for it (an `is_type_of`, an error message,
    a value graphql-core completes), instead of for every such field."""

    __slots__ = ("built", "executor", "field_name", "parent_type", "path", "step")

    def __init__(self, executor: CompiledExecutor, step: Step, parent: GraphQLObjectType,
                 path: Path) -> None:
        self.executor = executor
        self.step = step
        self.parent_type = parent
        self.field_name = step.name
        self.path = path
        self.built: GraphQLResolveInfo[Any] | None = None

    def get(self) -> GraphQLResolveInfo[Any]:
        if self.built is None:
            step = self.step
            assert step.field is not None
            self.built = self.executor.build_resolve_info(step.field, step.nodes,
                                                          self.parent_type, self.path)
        return self.built


Info = GraphQLResolveInfo[Any] | _Site


def _real(info: Info) -> GraphQLResolveInfo[Any]:
    return info.get() if isinstance(info, _Site) else info


def _direct(field: GraphQLField, schema: GraphQLSchema) -> Direct | None:
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
    converter = strawberry_schema.schema_converter
    if getattr(converter, "_exception_handler_specs", True):
        return None  # handlers (or a strawberry that names them otherwise): its own path
    resolver = definition.base_resolver
    if resolver is None:
        if not definition.is_basic_field or definition.default_resolver is not getattr \
                or field.args:
            return None
        attr = definition.python_name
        return lambda source, _info, _args: getattr(source, attr)
    func = resolver.wrapped_func
    if not callable(func):
        return None
    takes_self = resolver.self_parameter is not None
    names = [p.name for p in (resolver.parent_parameter, resolver.root_parameter)
             if p is not None]
    info_name = resolver.info_parameter.name if resolver.info_parameter else None
    registry, config = converter.scalar_registry, strawberry_schema.config
    info_class = config.info_class
    # `convert_arguments`, its per-call lookups done here: each argument's GraphQL
    # name, and whether its value is its own Python value (a scalar or an enum, or
    # null), as `convert_argument` would return it.
    arguments = [(config.name_converter.from_argument(a), a.python_name, a.type,
                  _as_given(a.type, registry)) for a in definition.arguments]

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


def _step(schema: GraphQLSchema, parent: GraphQLObjectType, key: str,
          fdl: list[FieldDetails], plain: Mapping[str, Plain] | None,
          default_resolver: Callable[..., Any]) -> Step | None:
    node = fdl[0].node
    name = node.name.value
    if name == "__typename":
        step = Step(key, _TYPENAME, fdl)
        step.typename = parent.name
        step.field = TypeNameMetaFieldDef
        return step
    field = schema.get_field(parent, name)
    if field is None:
        return None  # graphql-core leaves such a key out too
    p = plain.get(name) if plain is not None else None
    if p is not None and not node.arguments:
        step = Step(key, _ATTR_LEAF, fdl)
        step.attr, step.leaf, step.non_null = p.attr, p.leaf, p.non_null
        step.field = field
        step.as_is = _AS_IS.get(p.leaf)
        if isinstance(p.leaf, CustomGraphQLEnumType):
            step.enum, step.names = p.leaf.wrapped_cls, _enum_names(p.leaf)
        return step
    step = Step(key, _RESOLVE, fdl)
    step.field = field
    step.resolve = field.resolve or default_resolver
    step.call = _direct(field, schema)
    step.shape = whole = Shape(field.type, fdl)
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if step.call is not None and isinstance(definition, StrawberryField) \
            and definition.base_resolver is None:
        step.getter = definition.python_name  # `_direct` made it strawberry's getattr
        shape = whole.inner if whole.kind == Shape.NON_NULL else whole
        assert shape is not None
        origin = _origin(shape.type) if shape.kind == Shape.OBJECT else None
        if origin is not None:
            step.cls, step.object = origin, shape
    if not _has_variable(node):
        try:
            step.args = get_argument_values(field, node, _NO_VARIABLES) \
                if field.args or node.arguments else {}
        except GraphQLError:
            step.args = None  # reported by graphql-core's code at execution
    return step


def _origin(type_: GraphQLOutputType) -> type | None:
    """The Python class of a strawberry object type whose instances need no check: not
    an exception, not awaitable, and no `is_type_of` to call."""
    assert isinstance(type_, GraphQLObjectType)
    definition = (type_.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    origin = getattr(definition, "origin", None)
    if type_.is_type_of is not None or not isinstance(origin, type) \
            or issubclass(origin, BaseException) or hasattr(origin, "__await__"):
        return None
    return origin


def _compilable(operation: OperationDefinitionNode,
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


class _Compiled:
    __slots__ = ("plan", "ref")

    def __init__(self, ref: weakref.ref[OperationDefinitionNode], plan: Plan | None) -> None:
        self.ref = ref
        self.plan = plan


# The plans of a schema live on it, by operation node (each dropped when its node, kept
# by the parsed-document cache, goes): a plan refers to the schema's fields, so a table
# beside the schema, keyed weakly by it, would keep the schema alive forever.
_PLANS = "_pacte_compiled_plans"


class CompiledExecutor(PlainFieldExecutor):
    """strawberry's executor, running queries from a plan made once per document."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The coroutines asynchronous resolvers returned (see `settle_in_background`).
        self._coroutines: list[Any] = []

    def settle_in_background(self, awaitables: list[Awaitable[Any]]) -> None:
        """graphql-core's, and without an event loop (the app runs a plan on none until
        a resolver is asynchronous) the resolvers' coroutines closed too: graphql-core
        closes the pending values, which wrap them, and none of them ever ran."""
        super().settle_in_background(awaitables)
        try:
            get_running_loop()
        except RuntimeError:
            for coroutine in self._coroutines:
                coroutine.close()

    def _plan_of(self, parent: GraphQLObjectType, fdl: list[FieldDetails] | None) -> Plan:
        if fdl is None:
            grouped = collect_fields(self.schema, self.fragments, _NO_VARIABLES, parent,
                                     self.operation).grouped_field_set
        else:
            grouped = collect_subfields(self.schema, self.fragments, _NO_VARIABLES,
                                        self.operation, parent, fdl).grouped_field_set
        plain = self._plain.get(parent)
        steps = []
        for key, details in grouped.items():
            step = _step(self.schema, parent, key, details, plain, self.field_resolver)
            if step is not None:
                steps.append(step)
        return Plan(parent, steps)

    def _root_plan(self) -> Plan | None:
        operation = self.operation
        middleware = self.middleware_manager
        if self.abort_signal is not None or (middleware is not None and middleware.middlewares):
            return None  # middleware wraps resolvers: every field goes through it
        by_op: dict[int, _Compiled] | None = getattr(self.schema, _PLANS, None)
        if by_op is None:
            by_op = {}
            setattr(self.schema, _PLANS, by_op)
        found = by_op.get(id(operation))
        if found is not None and found.ref() is operation:
            return found.plan
        plan = None
        root = self.schema.get_root_type(operation.operation)
        if root is not None and _compilable(operation, self.fragment_definitions):
            plan = self._plan_of(root, None)
        key = id(operation)
        ref = weakref.ref(operation, lambda _: by_op.pop(key, None))
        by_op[key] = _Compiled(ref, plan)
        return plan

    def execute_operation(self, serially: bool | None = None) -> Any:
        plan = self._root_plan() if not serially else None
        if plan is None:
            return super().execute_operation(serially)
        try:
            result = self._object(plan, self.root_value, None)
        except GraphQLError as error:
            self.collected_errors.add(error, None)
            return self.finish(self.build_response(None))
        if self.is_awaitable(result):
            async def await_result() -> Any:
                try:
                    data = await result
                except GraphQLError as error:
                    self.collected_errors.add(error, None)
                    return self.build_response(None)
                return self.build_response(data)
            return await_result()
        return self.finish(self.build_response(result))

    # -- the loop -------------------------------------------------------------------

    def _object(self, plan: Plan, source: Any, path: Path | None) -> Any:
        """graphql-core's execute_fields, over the plan's steps."""
        parent = plan.type
        results: dict[str, Any] = {}
        awaiting: list[str] | None = None
        try:
            for step in plan.steps:
                kind = step.kind
                if kind == _ATTR_LEAF:
                    value: Any = getattr(source, step.attr, _MISSING)
                    vtype = type(value)
                    if vtype is step.as_is:
                        results[step.key] = value
                        continue
                    if vtype is step.enum:
                        name = step.names.get(value._name_)
                        if name is not None:
                            results[step.key] = name
                            continue
                    if value is None:
                        if not step.non_null:
                            results[step.key] = None
                            continue
                    elif value is not _MISSING and not isinstance(value, Exception):
                        try:
                            coerced = step.leaf.coerce_output_value(value)  # type: ignore[union-attr]
                        except Exception:  # noqa: S110 -- graphql-core reports it below
                            pass
                        else:
                            if coerced is not None and coerced is not Undefined:
                                results[step.key] = coerced
                                continue
                    # Not plainly a value: graphql-core answers (and reports) it.
                    result = Executor.execute_field(self, parent, source, step.fdl,
                                                    Path(path, step.key, parent.name), None)
                elif kind == _TYPENAME:
                    results[step.key] = step.typename
                    continue
                else:
                    result = self._resolve(step, parent, source,
                                           Path(path, step.key, parent.name))
                results[step.key] = result
                if type(result) not in _SYNC and self.is_awaitable(result):
                    if awaiting is None:
                        awaiting = []
                    awaiting.append(step.key)
        except Exception:
            if awaiting:
                self.settle_in_background([results[k] for k in awaiting])
            raise
        if not awaiting:
            return results
        pending = awaiting

        async def gather() -> dict[str, Any]:
            if len(pending) == 1:
                results[pending[0]] = await results[pending[0]]
            else:
                done = await gather_with_cancel(*(results[k] for k in pending))
                results.update(zip(pending, done, strict=True))
            return results
        return gather()

    def _resolve(self, step: Step, parent: GraphQLObjectType, source: Any, path: Path) -> Any:
        """graphql-core's execute_field, with the lookups done beforehand."""
        field = step.field
        assert field is not None and step.shape is not None and step.resolve is not None
        info: Info
        try:
            if step.getter:
                # strawberry's default resolver: the attribute, and no resolve info.
                result = getattr(source, step.getter)
                if type(result) is step.cls:
                    # An object of the field's type: what `_complete` comes to, at once.
                    shape = step.object
                    assert shape is not None
                    plan = shape.plan
                    if plan is None:
                        plan = shape.plan = self._plan_of(shape.type,  # type: ignore[arg-type]
                                                          shape.fdl)
                    completed = self._object(plan, result, path)
                    if type(completed) is dict:
                        return completed
                    return self._await_completed(step, path, completed)
                info = _Site(self, step, parent, path)
            else:
                info = self.build_resolve_info(field, step.nodes, parent, path)
                args = step.args
                if args is None:
                    first = step.fdl[0]
                    args = get_argument_values(field, first.node, self.variable_values,
                                               first.fragment_variable_values,
                                               self.hide_suggestions)
                result = step.call(source, info, args) if step.call is not None \
                    else step.resolve(source, info, **args)
            if type(result) not in _SYNC and self.is_awaitable(result):
                if iscoroutine(result):
                    self._coroutines.append(result)
                return self._complete_awaited(step, info, path, result)
            completed = self._complete(step.shape, info, path, result)
            if type(completed) not in _SYNC and self.is_awaitable(completed):
                return self._await_completed(step, path, completed)
        except Exception as raw_error:
            self.handle_field_error(raw_error, field.type, step.fdl, path)
            return None
        return completed

    async def _await_completed(self, step: Step, path: Path, completed: Awaitable[Any]
                               ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            assert step.field is not None
            self.handle_field_error(raw_error, step.field.type, step.fdl, path)
            return None

    async def _complete_awaited(self, step: Step, info: Info, path: Path,
                                result: Awaitable[Any]) -> Any:
        """graphql-core's complete_awaitable_value (there is no abort signal here)."""
        assert step.shape is not None and step.field is not None
        try:
            completed = self._complete(step.shape, info, path, await result)
            if self.is_awaitable(completed):
                completed = await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, step.field.type, step.fdl, path)
            completed = None
        return completed

    def _complete(self, shape: Shape, info: Info, path: Path, result: Any) -> Any:
        """graphql-core's complete_value, for a shape known beforehand."""
        kind = shape.kind
        if kind == Shape.NON_NULL:
            # The inner completion raises an exception value first, as graphql-core does.
            completed = self._complete(shape.inner, info, path, result)  # type: ignore[arg-type]
            if completed is None:
                raise TypeError("Cannot return null for non-nullable field"
                                f" {info.parent_type}.{info.field_name}.")
            return completed
        if result is None or result is Undefined:
            return None
        if isinstance(result, Exception):
            raise result
        if kind == Shape.LEAF:
            return self.complete_leaf_value(shape.type, result)  # type: ignore[arg-type]
        # Past here, graphql-core's code and `is_type_of` get the resolve info itself.
        if kind == Shape.OBJECT:
            object_type: GraphQLObjectType = shape.type  # type: ignore[assignment]
            if object_type.is_type_of:
                is_type_of = object_type.is_type_of(result, _real(info))
                if type(is_type_of) is not bool and self.is_awaitable(is_type_of):
                    return self.complete_object_value(object_type, shape.fdl, _real(info),
                                                      path, result, None)
                if not is_type_of:
                    raise invalid_return_type_error(object_type, result, shape.fdl)
            plan = shape.plan
            if plan is None:
                plan = shape.plan = self._plan_of(object_type, shape.fdl)
            return self._object(plan, result, path)
        if kind == Shape.LIST and isinstance(result, list | tuple):
            return self._list(shape, info, path, result)
        return self.complete_value(shape.type, shape.fdl, _real(info), path, result, None)

    def _list(self, shape: Shape, info: Info, path: Path,
              items: list[Any] | tuple[Any, ...]) -> Any:
        """graphql-core's complete_iterable_value, for a list or tuple."""
        inner = shape.inner
        assert inner is not None
        item_type = inner.type
        fdl = shape.fdl
        completed: list[Any] = []
        awaiting: list[int] | None = None
        is_awaitable = self.is_awaitable
        for index, item in enumerate(items):
            item_path = path.add_key(index, None)
            if type(item) not in _SYNC and is_awaitable(item):
                completed.append(self.complete_awaitable_list_item_value(
                    item, item_type, fdl, _real(info), item_path, None))
            else:
                try:
                    value = self._complete(inner, info, item_path, item)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item_type, fdl, item_path)
                    completed.append(None)
                    continue
                if type(value) in _SYNC or not is_awaitable(value):
                    completed.append(value)
                    continue
                completed.append(self._await_item(value, item_type, fdl, item_path))
            if awaiting is None:
                awaiting = []
            awaiting.append(index)
        if not awaiting:
            return completed
        pending = awaiting

        async def gather() -> list[Any]:
            done = await gather_with_cancel(*(completed[i] for i in pending))
            for i, value in zip(pending, done, strict=True):
                completed[i] = value
            return completed
        return gather()

    async def _await_item(self, value: Awaitable[Any], item_type: GraphQLOutputType,
                          fdl: list[FieldDetails], item_path: Path) -> Any:
        try:
            return await value
        except Exception as raw_error:
            self.handle_field_error(raw_error, item_type, fdl, item_path)
            return None
