"""Bulk loading of plaintext records (seeding, imports): checked here, then sealed,
audited and written by the door (`Session._commit_stream`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from pacte.clock import check_micros
from pacte.errors import InputError
from pacte.features.door import Door
from pacte.graph.checks import check_date
from pacte.graph.operations import Action
from pacte.graph.steps import Step
from pacte.graph.store import WriteBatch

__all__ = ["ingest"]

# Node properties that hold times (epoch microseconds), by name.
_TIME_PROPS = ("created_at", "occurred_at", "revoked_at")


def ingest(door: Door, batches: WriteBatch | Iterable[WriteBatch], *,
           on_batch: Callable[[WriteBatch], object] | None = None) -> None:
    """Bulk-load plaintext records (seeding, imports): checked, sealed, audited, written.

    Batch k+1 is produced and sealed while batch k is being written: the store's
    writes release the GIL, so the two overlap on a second core. Each batch is
    audited before its write starts (see `Session._commit`); a failed write is recorded.
    """
    door._gate(Action.INGEST)
    if isinstance(batches, WriteBatch):
        batches = [batches]
    door._commit_stream(_checked(door, batches), on_batch=on_batch)


def _checked(door: Door, batches: Iterable[WriteBatch]) -> Iterator[tuple[WriteBatch, Step]]:
    """Each batch, once checked, with the audit step that announces it."""
    for batch in batches:
        check_times(batch, now_us=door._now_us)
        customers = sum(1 for n in batch.nodes if n.kind == "Customer")
        yield batch, door._record(Action.INGEST, extra={
            "customers": customers, "nodes": len(batch.nodes), "edges": len(batch.edges)})


def check_times(batch: WriteBatch, *, now_us: int) -> None:
    """Every time in a batch to ingest lies in the accepted range (see pacte.clock), and
    no consent choice is dated after now: the customer has not made it yet, and as the
    latest choice it would decide over every choice made until then."""
    for node in batch.nodes:
        for name in _TIME_PROPS:
            value = node.props.get(name)
            if value is not None:
                check_micros(value, f"{node.kind}.{name}")  # type: ignore[arg-type]
        birth = node.props.get("birth_date")
        if node.kind == "Customer" and isinstance(birth, str):
            check_date(birth)
    for edge in batch.edges:
        check_micros(edge.at, f"{edge.type} time")
        if edge.type == "CONSENTED" and edge.at > now_us:
            raise InputError("a consent choice cannot be dated in the future")
        until = edge.props.get("until")
        if until is not None:
            check_micros(until, f"{edge.type}.until")  # type: ignore[arg-type]
