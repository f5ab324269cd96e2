"""The audit record of a request's steps (see `pacte.graph.access.Access._entry`).

A request's steps are written as one entry: one step as it is, several merged. Merged,
the record holds the union of subjects and fields and lists each step with only what
the request as a whole does not already say: its action, its fields, and its subjects
or outcome where they differ. The entry stays short, and every step is still on record.

Requests of one kind take the same steps over the same fields: only the principal, the
request id and the subjects change. So the parts that follow from the steps alone (the
operations, the fields, the outcome) are made once per shape of steps, checked and
serialised once (`Sealed`), and each request then costs a dictionary lookup, the
pseudonyms of its subjects and one serialisation of a short flat record: it is the
audit append of every request, and code run once per request is cold in the caches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from pacte.audit.canonical import Sealed

__all__ = ["Ref", "StepLike", "record"]

Ref = Callable[[str], str]


class StepLike(Protocol):
    """One operation of a request (`pacte.graph.steps.Step`)."""

    @property
    def action(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def subjects(self) -> tuple[str, ...]: ...  # customer ids, pseudonymised here
    @property
    def fields(self) -> tuple[str, ...]: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def extra(self) -> Mapping[str, object] | None: ...


# The parts of a record that follow from its steps' shape: (action, outcome, fields,
# reason) per step, keyed by value and bounded (requests of one kind share a shape).
_Shape = tuple[tuple[str, str, tuple[str, ...], str | None], ...]
_PARTS: dict[_Shape, dict[str, object]] = {}
_MAX_SHAPES = 1024


def record(head: Mapping[str, object], steps: Sequence[StepLike], ref: Ref
           ) -> dict[str, object]:
    """The record of `steps` under `head` (the request's principal, purpose, policy)."""
    first = steps[0].subjects
    shape: list[tuple[str, str, tuple[str, ...], str | None]] = []
    for step in steps:
        # Steps that add fields of their own (`extra`), or name other subjects than the
        # rest, are written as they come (the general path below).
        if step.extra or step.subjects != first:
            return {**head, **(_single(step, ref) if len(steps) == 1 else _merged(steps, ref))}
        shape.append((step.action, step.outcome, step.fields, step.reason))
    key = tuple(shape)
    parts = _PARTS.get(key)
    if parts is None:
        parts = _sealed(steps)
        if len(_PARTS) < _MAX_SHAPES:
            _PARTS[key] = parts
    out = {**head, **parts}
    out["subjects"] = sorted({ref(c) for c in first})
    return out


def _sealed(steps: Sequence[StepLike]) -> dict[str, object]:
    """The record of steps that share their subjects, less the subjects, sealed."""
    plain = _single(steps[0], _none) if len(steps) == 1 else _merged(steps, _none)
    del plain["subjects"]
    return {k: v if type(v) is str else Sealed(v) for k, v in plain.items()}


def _none(customer_id: str) -> str:
    return ""


def _single(step: StepLike, ref: Ref) -> dict[str, object]:
    """The record's body for one step."""
    body: dict[str, object] = {
        "action": step.action,
        "subjects": sorted({ref(c) for c in step.subjects}),
        "fields": sorted(set(step.fields)),
        "outcome": step.outcome,
    }
    if step.reason is not None:
        body["reason"] = step.reason
    if step.extra:
        body.update(step.extra)
    return body


def _merged(steps: Sequence[StepLike], ref: Ref) -> dict[str, object]:
    """The record's body for several steps: the union, and each step's difference."""
    ids: set[str] = set()
    fields: list[str] = []
    outcome = "ok"
    for step in steps:
        ids.update(step.subjects)
        fields += step.fields
        # The first step that did not succeed gives the request its outcome.
        if outcome == "ok" and step.outcome != "ok":
            outcome = step.outcome
    return {
        "action": "request",
        "operations": [_operation(step, ids, ref) for step in steps],
        "subjects": sorted({ref(c) for c in ids}),
        "fields": sorted(set(fields)),
        "outcome": outcome,
    }


def _operation(step: StepLike, ids: set[str], ref: Ref) -> dict[str, object]:
    op: dict[str, object] = {"action": step.action}
    if step.fields:
        op["fields"] = sorted(set(step.fields))
    if step.subjects and set(step.subjects) != ids:
        op["subjects"] = sorted({ref(c) for c in step.subjects})
    if step.outcome != "ok":
        op["outcome"] = step.outcome
    if step.reason is not None:
        op["reason"] = step.reason
    if step.extra:
        op.update(step.extra)
    return op
