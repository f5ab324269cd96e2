"""Helpers for the audit tests: a fixed clock and a trail factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pacte.audit import AuditTrail
from pacte.crypto.signing import SigningKey

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A clock that moves only when told to (or by `step` on each read)."""

    def __init__(self, start: datetime = START, step: timedelta = timedelta(milliseconds=1)
                 ) -> None:
        self.t = start
        self.step = step

    def __call__(self) -> datetime:
        self.t += self.step
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


def record(i: int, *, subjects: list[str] | None = None, action: str = "customer.read",
           purpose: str = "service", principal: str = "pr_crm") -> dict[str, object]:
    return {
        "action": action,
        "principal": principal,
        "principal_name": principal.removeprefix("pr_"),
        "role": "app",
        "purpose": purpose,
        "legal_basis": "contract",
        "subjects": subjects if subjects is not None else [f"s_{i % 5:02d}"],
        "fields": ["email", "name"],
        "outcome": "ok",
        "policy_version": "p_test",
        "request_id": f"r{i}",
    }


def make_trail(path: Path, *, n: int = 0, signer: SigningKey | None = None,
               every: int = 1000, clock: Clock | None = None) -> AuditTrail:
    trail = AuditTrail.open(path, signer=signer, checkpoint_every=every,
                            checkpoint_seconds=3600, now=clock or Clock())
    for i in range(n):
        trail.append(record(i))
    return trail


@pytest.fixture(scope="session")
def signer() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def trail_factory(tmp_path: Path, signer: SigningKey, clock: Clock
                  ) -> Iterator[Callable[..., AuditTrail]]:
    opened: list[AuditTrail] = []

    def factory(n: int = 0, *, every: int = 1000, name: str = "audit.db") -> AuditTrail:
        t = make_trail(tmp_path / name, n=n, signer=signer, every=every, clock=clock)
        opened.append(t)
        return t

    yield factory
    for t in opened:
        t.close()
