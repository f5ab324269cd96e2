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
in one frame that takes strawberry's steps (`pacte.api.plan.direct`).
"""

from __future__ import annotations

import weakref
from asyncio import _get_running_loop, get_running_loop
from collections.abc import Awaitable
from inspect import iscoroutine
from typing import Any, cast

from graphql import (
    GraphQLError,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetails, collect_fields, collect_subfields
from graphql.execution.executor import Executor, invalid_return_type_error
from graphql.execution.values import get_argument_values
from graphql.language import OperationDefinitionNode
from graphql.pyutils import Path, gather_with_cancel

from pacte.api.batch import gather_waiting
from pacte.api.execution import PlainFieldExecutor
from pacte.api.plan import (
    ATTR_LEAF,
    NO_VARIABLES,
    TYPENAME,
    Plan,
    Shape,
    Step,
    compilable,
    make_step,
)

__all__ = ["CompiledExecutor", "planned"]

_MISSING = object()

# `Path(prev, key, typename)` without the named tuple's `__new__` frame: the same tuple.
_path = tuple.__new__

# Values of these types are never awaitable: told apart without a call (strawberry's
# `optimized_is_awaitable` looks the same types up, one frame deeper, 150 times a 360).
_SYNC = frozenset({dict, list, tuple, str, int, float, bool, type(None)})


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


async def _gather(awaitables: list[Awaitable[Any]]) -> list[Any]:
    """graphql-core's gather (with cancel) under an event loop; without one, the
    siblings stepped in turn up to their batched loads (pacte.api.batch)."""
    if _get_running_loop() is None:
        return await gather_waiting(awaitables)
    return await gather_with_cancel(*awaitables)


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
            grouped = collect_fields(self.schema, self.fragments, NO_VARIABLES, parent,
                                     self.operation).grouped_field_set
        else:
            grouped = collect_subfields(self.schema, self.fragments, NO_VARIABLES,
                                        self.operation, parent, fdl).grouped_field_set
        plain = self._plain.get(parent)
        steps = []
        for key, details in grouped.items():
            step = make_step(self.schema, parent, key, details, plain, self.field_resolver)
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
        if root is not None and compilable(operation, self.fragment_definitions):
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
                if kind == ATTR_LEAF:
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
                    if vtype is step.iso:
                        results[step.key] = value.isoformat()
                        continue
                    if value is None and not step.non_null:
                        results[step.key] = None
                        continue
                    result = self._leaf(step, value, parent, source, path)
                else:
                    result = step.typename if kind == TYPENAME else self._resolve(
                        step, parent, source, _path(Path, (path, step.key, parent.name)))
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
                done = await _gather([results[k] for k in pending])
                results.update(zip(pending, done, strict=True))
            return results
        return gather()

    def _leaf(self, step: Step, value: Any, parent: GraphQLObjectType, source: Any,
              path: Path | None) -> Any:
        """An attribute's value that is not its own output: null, its scalar's output
        coercion, or (not plainly a value) what graphql-core answers and reports."""
        if value is None:
            if not step.non_null:
                return None
        elif value is not _MISSING and not isinstance(value, Exception):
            try:
                coerced = step.leaf.coerce_output_value(value)  # type: ignore[union-attr]
            except Exception:  # noqa: S110 -- graphql-core reports it below
                pass
            else:
                if coerced is not None and coerced is not Undefined:
                    return coerced
        return Executor.execute_field(self, parent, source, step.fdl,
                                      Path(path, step.key, parent.name), None)

    def _resolve(self, step: Step, parent: GraphQLObjectType, source: Any, path: Path) -> Any:
        """graphql-core's execute_field, with the lookups done beforehand."""
        field = step.field
        assert field is not None and step.shape is not None and step.resolve is not None
        # No resolve info for strawberry's getattr or a call that reads none (`_Site`).
        info: Info | None = None
        try:
            if step.getter:
                result = getattr(source, step.getter)
            else:
                if not step.info_free:
                    info = self.build_resolve_info(field, step.nodes, parent, path)
                args = step.args
                if args is None:
                    first = step.fdl[0]
                    args = get_argument_values(field, first.node, self.variable_values,
                                               first.fragment_variable_values,
                                               self.hide_suggestions)
                result = step.call(source, info, args) if step.call is not None \
                    else step.resolve(source, info, **args)
            direct = step.object
            if direct is not None and type(result) is direct.cls:
                # An object of the field's type's own class: what `_complete` comes to.
                completed = self._instance(direct, info, path, result)
                if type(completed) is dict:
                    return completed
                return self._await_completed(step, path, completed)
            if info is None:
                info = _Site(self, step, parent, path)
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
                # strawberry's reads no info: a `_Site` stays unbuilt.
                is_type_of = object_type.is_type_of(
                    result, cast(GraphQLResolveInfo[Any], info) if shape.free_check
                    else _real(info))
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

    def _instance(self, shape: Shape, info: Any, path: Path, result: Any) -> Any:
        """`_complete` of an OBJECT shape for an instance of its class (`Shape.cls`):
        strawberry's `is_type_of`, if the type has one (it reads no info: `info` may be
        unbuilt, or None), then the plan."""
        object_type: GraphQLObjectType = shape.type  # type: ignore[assignment]
        check = object_type.is_type_of
        if check is not None and not check(result, info):
            # strawberry's (see `Shape.cls`): a bool, from the object alone
            raise invalid_return_type_error(object_type, result, shape.fdl)
        plan = shape.plan
        if plan is None:
            plan = shape.plan = self._plan_of(object_type, shape.fdl)
        return self._object(plan, result, path)

    def _list(self, shape: Shape, info: Info, path: Path,
              items: list[Any] | tuple[Any, ...]) -> Any:
        """graphql-core's complete_iterable_value, for a list or tuple."""
        inner = shape.inner
        assert inner is not None
        item_type = inner.type
        fdl = shape.fdl
        direct = shape.items
        cls = direct.cls if direct is not None else None
        completed: list[Any] = []
        awaiting: list[int] | None = None
        is_awaitable = self.is_awaitable
        for index, item in enumerate(items):
            item_path = _path(Path, (path, index, None))
            vtype = type(item)
            if vtype is not cls and vtype not in _SYNC and is_awaitable(item):
                completed.append(self.complete_awaitable_list_item_value(
                    item, item_type, fdl, _real(info), item_path, None))
            else:
                try:
                    if vtype is cls:
                        value = self._instance(direct, info, item_path, item)  # type: ignore[arg-type]
                    else:
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
            done = await _gather([completed[i] for i in pending])
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


def planned(schema: GraphQLSchema, operation: OperationDefinitionNode) -> bool:
    """Whether `operation` ran on its compiled plan (asked after executing it).

    Only a planned operation may be driven without an event loop (pacte.api.batch): an
    operation graphql-core executes itself gathers its async fields on a loop.
    """
    by_op: dict[int, _Compiled] | None = getattr(schema, _PLANS, None)
    found = None if by_op is None else by_op.get(id(operation))
    return found is not None and found.ref() is operation and found.plan is not None
