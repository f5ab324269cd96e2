"""Time, injectable: everything that stamps, expires or retains takes a `now` callable;
what measures durations (pacte.lease) takes an `elapsed` one."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pacte.errors import InputError

__all__ = ["EARLIEST", "LATEST", "Clock", "Elapsed", "check_micros", "elapsed",
           "from_micros", "input_micros", "to_micros", "utcnow"]

Clock = Callable[[], datetime]
Elapsed = Callable[[], float]  # seconds from an arbitrary origin, never going back


def utcnow() -> datetime:
    return datetime.now(UTC)


# CLOCK_BOOTTIME where there is one (Linux): like the monotonic clock it never jumps
# with the wall clock, and unlike it, it keeps counting while the machine is suspended,
# so a duration measured across a suspend is not taken for a short one.
_ELAPSED_CLOCK = getattr(time, "CLOCK_BOOTTIME", None)


def elapsed() -> float:
    """Seconds on this machine's steady clock: for durations only, never for dates."""
    if _ELAPSED_CLOCK is not None:
        return time.clock_gettime(_ELAPSED_CLOCK)
    return time.monotonic()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(dt: datetime) -> int:
    """Microseconds since the Unix epoch; naive datetimes are taken as UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    # Integer arithmetic: exact, and about three times as fast as going through a float
    # timestamp (every interaction and consent a request returns is converted); the
    # positional form skips the keyword parsing.
    return _EPOCH + timedelta(0, 0, us)



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
