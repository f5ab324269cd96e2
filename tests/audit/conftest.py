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


class SQLiteBackend:
    """The trail's SQLite file, as an attacker with write access sees it.

    The tamper matrix runs against every backend listed in `BACKENDS`: a second place
    the trail may live adds a class with the same methods (`create`, `open`, `tamper`,
    `save`, `restore`) and its name to the list.
    """

    name = "sqlite"

    def __init__(self, root: Path) -> None:
        self.path = root / "audit.db"

    def create(self, *, signer: SigningKey | None, every: int = 1000,
               clock: Clock | None = None) -> AuditTrail:
        return make_trail(self.path, signer=signer, every=every, clock=clock)

    def open(self) -> AuditTrail:
        return AuditTrail.open(self.path, signer=None, read_only=True, for_verify=True)

    def tamper(self, *statements: tuple[str, tuple[object, ...]]) -> None:
        import sqlite3

        db = sqlite3.connect(self.path)
        for sql, params in statements:
            db.execute(sql, params)
        db.commit()
        db.close()

    def save(self) -> bytes:
        """The whole trail as it is now (to roll back to later)."""
        import sqlite3

        db = sqlite3.connect(self.path)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        return self.path.read_bytes()

    def restore(self, saved: bytes) -> None:
        for suffix in ("-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        self.path.write_bytes(saved)


BACKENDS = [SQLiteBackend]


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> SQLiteBackend:
    return request.param(tmp_path)  # type: ignore[no-any-return]
