"""Batched loads that complete without an event loop (issue #19).

`customer(id:)` is asynchronous only so that sibling fields (aliases) are read in one
batch: each waits on its load while the others collect their keys. Under asyncio that
wait costs the request an event loop's turns (five per customer-360), a task, futures
and their callbacks, for work that is all synchronous.

`Batch` is the customer loader. Under a running event loop it is strawberry's
DataLoader, unchanged. Without one (the app runs a plan on none), a load is a
`Waiting`: awaiting it hands the `Waiting` itself up the chain of coroutines, to
`drive`, which answers every load waiting in that round in one call of the batch
function, then resumes the chain; a gather of several pending siblings steps each in
turn, in order, and hands their loads up together (`gather_waiting`), so aliases are
still one batch. The order of events is asyncio's: every sibling runs up to its load,
one batch answers them all (keys in the order they were asked, each key once), then
each sibling resumes, in order.

`drive` only runs a coroutine whose awaits all end on such loads: an operation runs
loop-free only where every asynchronous resolver of the schema is marked
`@awaits_loads_only` (`loop_free`); anything else it meets is an error, never a silent
second run.
"""

from __future__ import annotations

from asyncio import _get_running_loop
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from itertools import count
from typing import Any, Generic, TypeVar

from graphql import GraphQLObjectType, GraphQLSchema
from strawberry.dataloader import DataLoader
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

__all__ = ["Batch", "Waiting", "awaits_loads_only", "drive", "gather_waiting", "loop_free"]

K = TypeVar("K")
V = TypeVar("V")
F = TypeVar("F", bound=Callable[..., Any])

_MARK = "_pacte_awaits_loads_only"
_PENDING = object()
# Answers in the order they were given, as a DataLoader resolves its futures.
_ANSWERED = count(1)


def awaits_loads_only(func: F) -> F:
    """Mark an async resolver whose awaits are all `Batch` loads (see the module)."""
    setattr(func, _MARK, True)
    return func


class Waiting(Generic[K, V]):
    """One key's load outside an event loop; awaited, it is answered by its batch."""

    __slots__ = ("batch", "key", "order", "value")

    def __init__(self, batch: Batch[K, V], key: K) -> None:
        self.batch = batch
        self.key = key
        self.value: Any = _PENDING
        self.order = 0  # when it was answered: its awaiters resume in that order

    def __await__(self) -> Generator[Any, None, V]:
        if self.value is _PENDING:
            yield self  # up to `drive`, which answers the batch
            if self.value is _PENDING:
                raise RuntimeError("a batched load was resumed unanswered")
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value  # type: ignore[no-any-return]


class Batch(Generic[K, V]):
    """A DataLoader under an event loop; without one, `Waiting`s answered by `drive`.

    `fetch` answers keys in order, with a value or an exception for each (raised to
    the fields asking for that key only); if it raises, every key of the batch gets
    the error, as a DataLoader's do.
    """

    def __init__(self, fetch: Callable[[list[K]], Sequence[V | BaseException]]) -> None:
        self._fetch = fetch
        # Made at the first load under an event loop: the app's plans run on none, and
        # every request makes a Batch.
        self._loader: DataLoader[K, V] | None = None
        self._seen: dict[K, Waiting[K, V]] = {}
        self._pending: list[Waiting[K, V]] = []

    def load(self, key: K) -> Awaitable[V]:
        if _get_running_loop() is not None:
            if self._loader is None:
                self._loader = DataLoader(self._load_fn)
            return self._loader.load(key)
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = Waiting(self, key)
            self._pending.append(found)
        return found

    async def _load_fn(self, keys: list[K]) -> Sequence[V | BaseException]:
        return self._fetch(keys)

    def answer(self) -> None:
        """Answer every load waiting, in one call of `fetch`."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            values: Sequence[Any] = self._fetch([w.key for w in batch])
            if len(values) != len(batch):
                raise TypeError("the batch function must answer each key")
        except Exception as exc:
            values = [exc] * len(batch)
        for waiting, value in zip(batch, values, strict=True):
            waiting.value = value
            waiting.order = next(_ANSWERED)


class _Round(list[Waiting[Any, Any]]):
    """The loads siblings wait on in one round of `gather_waiting`."""


def _waits(yielded: object) -> list[Waiting[Any, Any]]:
    if isinstance(yielded, Waiting):
        return [yielded]
    if isinstance(yielded, _Round):
        return yielded
    raise RuntimeError(f"loop-free execution awaited {yielded!r}, not a batched load")


class _Gather:
    """Awaitables stepped in turn, each up to its next load, until all are done.

    The first round steps them in order; later rounds resume them in the order their
    loads were answered (by key, then in the order they awaited), as asyncio wakes the
    tasks waiting on a DataLoader's futures.
    """

    def __init__(self, awaitables: Sequence[Awaitable[Any]]) -> None:
        self._steps = [a.__await__() for a in awaitables]

    def __await__(self) -> Generator[Any, None, list[Any]]:
        steps = self._steps
        done: list[Any] = [_PENDING] * len(steps)
        waiting: dict[int, list[Waiting[Any, Any]]] = {i: [] for i in range(len(steps))}
        try:
            while waiting:
                order = sorted(waiting, key=lambda i: (min((w.order for w in waiting[i]),
                                                           default=0), i))
                for index in order:
                    try:
                        waiting[index] = _waits(steps[index].send(None))
                    except StopIteration as finished:
                        done[index] = finished.value
                        del waiting[index]
                if waiting:
                    yield _Round(w for waits in waiting.values() for w in waits)
            return done
        except BaseException:
            for index, step in enumerate(steps):
                if done[index] is _PENDING:
                    step.close()  # as asyncio's gather cancels the siblings left
            raise


def gather_waiting(awaitables: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    """The results of `awaitables`, stepped in turn outside an event loop."""
    return _Gather(awaitables)


def drive(coroutine: Coroutine[Any, Any, V]) -> V:
    """Run `coroutine` to its end outside an event loop, answering its loads by batch."""
    while True:
        try:
            yielded = coroutine.send(None)
        except StopIteration as finished:
            return finished.value  # type: ignore[no-any-return]
        try:
            batches = {id(w.batch): w.batch for w in _waits(yielded)}
        except RuntimeError:
            coroutine.close()
            raise
        for batch in batches.values():
            batch.answer()


def loop_free(schema: GraphQLSchema) -> bool:
    """Whether every asynchronous resolver of `schema` awaits `Batch` loads only."""
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for field in type_.fields.values():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if not isinstance(definition, StrawberryField):
                return False
            resolver = definition.base_resolver
            if resolver is not None and resolver.is_async \
                    and not getattr(resolver.wrapped_func, _MARK, False):
                return False
    return True
