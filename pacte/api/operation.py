"""One GraphQL operation of pacte's schema, run without strawberry's per-request wrapper.

strawberry's `Schema.execute` is a coroutine that, for every request, builds an
execution context, makes the schema's extensions, enters four async extension context
managers (operation, parsing, validation, executing) and asks the extensions for
results at the end; and, being a coroutine, it needs an event loop even when every
resolver is synchronous. On `{ __typename }` that came to about a third of the
request's GraphQL time.

pacte's schema has one extension, `QueryGuard`, whose work (parse with the token limit,
check the limits, validate, both cached) needs none of that. `DirectExecution` takes
strawberry's steps in the same order, with the same outcomes:

1. no query: `MissingQueryError`;
2. a query that does not parse: a `PreExecutionError` with the parser's error;
3. no operation to run: `CannotGetOperationTypeError`; one of a type the transport
   does not allow (a mutation over GET): `InvalidOperationTypeError`;
4. the limits' and the validation's errors: a `PreExecutionError` with them;
5. graphql-core's `execute`, with the arguments strawberry passes it (the schema's
   executor, strawberry's awaitable check, no middleware); its result is returned as
   it is when execution completed synchronously, else as an awaitable the caller runs;
6. an exception out of execution: a `PreExecutionError` with it as a GraphQL error.

It serves a schema only where that is all strawberry would do: `QueryGuard` its only
extension, no schema directive, no incremental delivery, errors not processed
(`PacteSchema`), and the compiled executor. Any other schema (the tests compare the
app against one with strawberry's stock executor) goes through `Schema.execute`.
"""

from __future__ import annotations

from asyncio import _get_running_loop
from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any, TypeAlias, TypeGuard, cast

import strawberry
from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    execute,
    specified_rules,
)
from graphql import ExecutionResult as CoreResult
from graphql.execution import MiddlewareManager
from graphql.execution.executor import Executor
from strawberry.exceptions import MissingQueryError
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType

from pacte.api.batch import drive, loop_free
from pacte.api.compiled import CompiledExecutor, planned
from pacte.api.limits import DocumentGuard

__all__ = ["DirectExecution", "Outcome", "direct_execution"]

Outcome: TypeAlias = ExecutionResult | PreExecutionError
_RULES = tuple(specified_rules)  # strawberry's default validation rules
# No middleware: graphql-core is handed an empty manager, as strawberry hands it.
_NO_MIDDLEWARE = MiddlewareManager()
_IS_AWAITABLE = cast(Callable[[Any], TypeGuard[Awaitable[Any]]], optimized_is_awaitable)


def direct_execution(schema: strawberry.Schema) -> DirectExecution | None:
    """The direct path for `schema`, or None where strawberry's must run."""
    from pacte.api.schema import PacteSchema

    extensions = list(schema.extensions)
    executor = schema.execution_context_class
    if not isinstance(executor, type) or not issubclass(executor, CompiledExecutor):
        return None
    if type(schema).process_errors is not PacteSchema.process_errors \
            or len(extensions) != 1 or not isinstance(extensions[0], DocumentGuard) \
            or schema.directives or schema.config.enable_experimental_incremental_execution:
        return None
    return DirectExecution(schema, extensions[0], executor)


def _first_operation(doc: DocumentNode) -> OperationDefinitionNode | None:
    return next((d for d in doc.definitions if isinstance(d, OperationDefinitionNode)), None)


def _operation(doc: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    if name is None:
        return _first_operation(doc)
    return next((d for d in doc.definitions if isinstance(d, OperationDefinitionNode)
                 and d.name is not None and d.name.value == name), None)


def _operation_type(doc: DocumentNode, name: str | None) -> OperationType:
    """strawberry's `get_operation_type`."""
    found = _operation(doc, name)
    if found is None:
        raise RuntimeError("Can't get GraphQL operation type")
    return OperationType(found.operation.value)


def _pre_execution(error: Exception) -> PreExecutionError:
    gql = error if isinstance(error, GraphQLError) else GraphQLError(str(error),
                                                                     original_error=error)
    return PreExecutionError(data=None, errors=[gql])


def _outcome(result: CoreResult) -> ExecutionResult:
    return ExecutionResult(data=result.data, errors=result.errors)


class DirectExecution:
    """Run operations of one schema as its `Schema.execute` would (see the module)."""

    def __init__(self, schema: strawberry.Schema, guard: DocumentGuard,
                 executor: type[Executor[Any]]) -> None:
        self._schema = schema
        self._core = schema._schema
        self._guard = guard
        self._executor = executor
        self._loop_free = loop_free(self._core)

    def execute(self, query: str | None, *, variables: dict[str, Any] | None,
                context: Any, operation_name: str | None,
                allowed: Collection[OperationType]
                ) -> Outcome | Coroutine[Any, Any, Outcome]:
        """The outcome, or a coroutine for it when a resolver is asynchronous."""
        if not query:
            raise MissingQueryError
        try:
            doc = self._guard.parse(query)
        except Exception as exc:  # strawberry reports any failure to parse alike
            return _pre_execution(exc)
        if operation_name is None:
            # strawberry names the first operation when the request names none.
            first = _first_operation(doc)
            operation_name = first.name.value if first is not None and first.name else None
        try:
            operation_type = _operation_type(doc, operation_name)
        except RuntimeError as exc:
            raise CannotGetOperationTypeError(operation_name) from exc
        if operation_type not in allowed:
            raise InvalidOperationTypeError(operation_type)
        errors = self._guard.errors(query, doc, self._core, _RULES)
        if errors:
            return PreExecutionError(data=None, errors=list(errors))
        try:
            result = execute(self._core, doc, root_value=None, middleware=_NO_MIDDLEWARE,
                             variable_values=variables, operation_name=operation_name,
                             context_value=context, is_awaitable=_IS_AWAITABLE,
                             executor_class=self._executor, operation_extensions=None)
        except Exception as exc:
            return _pre_execution(exc)
        if isinstance(result, CoreResult):
            return _outcome(result)
        if self._loop_free and _get_running_loop() is None \
                and planned(self._core, cast(OperationDefinitionNode,
                                             _operation(doc, operation_name))):
            # Its only waits are batched loads: answered here, with no event loop (an
            # operation graphql-core ran itself, not on its plan, gathers on a loop).
            return drive(_finish(result))
        return _finish(result)


async def _finish(pending: Awaitable[CoreResult]) -> Outcome:
    try:
        return _outcome(await pending)
    except Exception as exc:
        return _pre_execution(exc)
