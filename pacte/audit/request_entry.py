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


# The parts of a record that follow from its steps' shape: per step (action, outcome,
# fields, reason, whether it names no subject, whether it adds fields of its own), keyed
# by value and bounded (requests of one kind share a shape). With them, the operations
# of a merged record: each sealed, or None for a step with fields of its own (`extra`:
# the products a customer-360 read, say), which is written per request.
_Shape = tuple[tuple[str, str, tuple[str, ...], str | None, bool, bool], ...]
_Parts = tuple[dict[str, object], tuple["Sealed | None", ...] | None]
_PARTS: dict[_Shape, _Parts] = {}
_MAX_SHAPES = 1024


def record(head: Mapping[str, object], steps: Sequence[StepLike], ref: Ref
           ) -> dict[str, object]:
    """The record of `steps` under `head` (the request's principal, purpose, policy)."""
    subjects = _shared_subjects(steps)
    if subjects is None or (len(steps) == 1 and steps[0].extra):
        # Steps that name different subjects, or one step with fields of its own, are
        # written as they come (the general path below).
        return {**head, **(_single(steps[0], ref) if len(steps) == 1 else _merged(steps, ref))}
    key = tuple((step.action, step.outcome, step.fields, step.reason, not step.subjects,
                 bool(step.extra)) for step in steps)
    cached = _PARTS.get(key)
    if cached is None:
        cached = _sealed(steps)
        if len(_PARTS) < _MAX_SHAPES:
            _PARTS[key] = cached
    parts, operations = cached
    out = {**head, **parts}
    if operations is not None:
        ids = set(subjects)
        out["operations"] = [op if op is not None else _operation(step, ids, ref)
                             for op, step in zip(operations, steps, strict=True)]
    out["subjects"] = sorted({ref(c) for c in subjects})
    return out


def _shared_subjects(steps: Sequence[StepLike]) -> tuple[str, ...] | None:
    """The subjects of the steps when each names them or none (then no operation of
    a merged record lists subjects of its own), else None."""
    shared: tuple[str, ...] = ()
    for step in steps:
        if step.subjects and step.subjects != shared:
            if shared:
                return None
            shared = step.subjects
    return shared


def _sealed(steps: Sequence[StepLike]) -> _Parts:
    """The record of steps that share their subjects, less the subjects, sealed; the
    operations apart (each sealed, None where a step adds fields of its own) when
    some step does."""
    plain = _single(steps[0], _none) if len(steps) == 1 else _merged(steps, _none)
    del plain["subjects"]
    operations: tuple[Sealed | None, ...] | None = None
    if any(step.extra for step in steps):
        ops = plain.pop("operations")
        assert isinstance(ops, list)
        operations = tuple(None if step.extra else Sealed(op)
                           for op, step in zip(ops, steps, strict=True))
    return {k: v if type(v) is str else Sealed(v) for k, v in plain.items()}, operations


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
