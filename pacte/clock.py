"""Time, injectable: everything that stamps, expires or retains takes a `now` callable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pacte.errors import InputError

__all__ = ["EARLIEST", "LATEST", "Clock", "check_micros", "from_micros", "input_micros",
           "to_micros", "utcnow"]

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_micros(dt: datetime) -> int:
    """Microseconds since the Unix epoch; naive datetimes are taken as UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).replace(microsecond=us % 1_000_000)


# Every time pacte stores lies in [EARLIEST, LATEST), in UTC. A time outside it could be
# stored but not read back as a datetime everywhere (year 10000 after a -14:00 offset):
# one such row would break every read of its customer, so it is refused on the way in.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_RANGE_US = (to_micros(EARLIEST), to_micros(LATEST))


def check_micros(us: int, what: str) -> int:
    """`us` if it lies in the accepted range, else InputError naming `what`."""
    if isinstance(us, bool) or not isinstance(us, int) \
            or not _RANGE_US[0] <= us < _RANGE_US[1]:
        raise InputError(f"{what} must be a time from {EARLIEST.year} to {LATEST.year - 1} "
                         "(UTC)")
    return us


def input_micros(dt: datetime, what: str) -> int:
    """A caller's datetime as microseconds, refused (InputError) outside the range."""
    if not isinstance(dt, datetime):
        raise InputError(f"{what} must be a datetime")
    return check_micros(to_micros(dt), what)
