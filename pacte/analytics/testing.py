"""Hand-made projections for examples and tests, without a data directory.

`row()` makes one `ProjectedCustomer` the way `Session.project()` would return it;
`projection_of()` builds a projection from rows through the real builder.

>>> p = projection_of([row(1, bought=["lamp"]), row(2, referred=[1])])
>>> p.anonymity.customers, p.customers  # two projected: fewer than k, none released
(2, 0)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from pacte.analytics.projection import Projection, build_projection
from pacte.analytics.suppress import K_DEFAULT
from pacte.clock import Clock
from pacte.graph.views import ProjectedCustomer

__all__ = ["START", "Rows", "projection_of", "row"]

START = datetime(2026, 1, 1, tzinfo=UTC)


def row(
    n: int,
    *,
    segment: str | None = "gold",
    age_band: str | None = "30-39",
    bought: Sequence[str] = (),
    ratings: Mapping[str, int] | None = None,
    journey: Sequence[tuple[str, str, str | None]] = (),
    devices: Sequence[str] = (),
    referred: Sequence[int] = (),
    extra: Mapping[str, object] | None = None,
) -> ProjectedCustomer:
    """Customer `c_{n}`: purchases at day n, then interactions an hour apart.

    `journey` lists `(channel, kind, product)` steps in time order; `referred` lists
    the numbers of other rows; `extra` adds raw fields (to check they are dropped).
    """
    t0 = START + timedelta(days=n)
    fields: dict[str, object] = {"segment": segment, "age_band": age_band, **(extra or {})}
    return ProjectedCustomer(
        id=f"c_{n}",
        fields=fields,  # type: ignore[arg-type]  # tests pass odd values on purpose
        purchases=[(p, t0 + timedelta(minutes=i), 10.0) for i, p in enumerate(bought)],
        reviews=[(p, t0 + timedelta(minutes=30), r) for p, r in (ratings or {}).items()],
        interactions=[(t0 + timedelta(hours=i + 1), ch, kind, prod)
                      for i, (ch, kind, prod) in enumerate(journey)],
        devices=list(devices),
        referred=[f"c_{m}" for m in referred],
    )


class Rows:
    """A stand-in for a session: `project()` yields the given rows in batches."""

    def __init__(self, rows: Iterable[ProjectedCustomer]) -> None:
        self.rows = list(rows)

    def project(self, *, batch: int = 1000) -> Iterator[list[ProjectedCustomer]]:
        for start in range(0, len(self.rows), batch):
            yield self.rows[start:start + batch]


def projection_of(rows: Iterable[ProjectedCustomer], *, key: bytes | None = None,
                  k: int = K_DEFAULT, now: Clock = lambda: START) -> Projection:
    """The projection `build_projection` makes of these rows."""
    return build_projection(Rows(rows), k=k, key=key, now=now)
