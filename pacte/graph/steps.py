"""The steps of a request and the audit record they become (see `Session._entry`).

A request's steps are written as one entry: one step as it is, several merged. Merged,
the record holds the union of subjects and fields and lists each step with only what
the request as a whole does not already say: its action, its fields, and its subjects
or outcome where they differ. The entry stays short, and every step is still on record.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

__all__ = ["Step", "claim", "merged", "names", "single"]


class Step(NamedTuple):
    """One operation of a request, as its audit entry will list it."""

    action: str
    outcome: str
    subjects: tuple[str, ...]  # customer ids; pseudonymised when the entry is written
    fields: tuple[str, ...]
    reason: str | None
    extra: Mapping[str, object] | None


Ref = Callable[[str], str]


def single(step: Step, ref: Ref) -> dict[str, object]:
    """The record's body for one step."""
    body: dict[str, object] = {
        "action": step.action,
        "subjects": sorted({ref(c) for c in step.subjects}),
        "fields": names(step.fields),
        "outcome": step.outcome,
    }
    if step.reason is not None:
        body["reason"] = step.reason
    if step.extra:
        body.update(step.extra)
    return body


def merged(steps: Sequence[Step], ref: Ref) -> dict[str, object]:
    """The record's body for several steps: the union, and each step's difference."""
    # Plain loops: this runs once per request, and generators cost a call per item.
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
        "fields": names(tuple(fields)),
        "outcome": outcome,
    }


def _operation(step: Step, ids: set[str], ref: Ref) -> dict[str, object]:
    op: dict[str, object] = {"action": step.action}
    if step.fields:
        op["fields"] = names(step.fields)
    if step.subjects and set(step.subjects) != ids:
        op["subjects"] = sorted({ref(c) for c in step.subjects})
    if step.outcome != "ok":
        op["outcome"] = step.outcome
    if step.reason is not None:
        op["reason"] = step.reason
    if step.extra:
        op.update(step.extra)
    return op


# Field names as an audit entry lists them (sorted, once each), by the tuple a step
# holds: requests of one kind name the same fields, so each list is sorted once.
_NAMES: dict[tuple[str, ...], list[str]] = {}
_MAX_NAMES = 4096


def names(fields: tuple[str, ...]) -> list[str]:
    found = _NAMES.get(fields)
    if found is None:
        found = sorted(set(fields))
        if len(_NAMES) < _MAX_NAMES:
            _NAMES[fields] = found
    return found.copy()  # each record gets its own list


_PURPOSE_LIKE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def claim(purpose: str | None) -> str | None:
    """A claimed purpose as it may be recorded: short names as they are, else a hash.

    X-Purpose is whatever the caller sends (8,000 characters, or a personal value):
    the trail keeps enough to tell claims apart, and no more.
    """
    if purpose is None or _PURPOSE_LIKE.fullmatch(purpose):
        return purpose
    digest = hashlib.sha256(purpose.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest[:32]}"
