"""Times as integer microseconds and back (pacte.clock), exactly, over the stored range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pacte.clock import EARLIEST, LATEST, from_micros, to_micros


def test_from_micros_inverts_to_micros_over_the_stored_range() -> None:
    one = timedelta(microseconds=1)
    moments = [EARLIEST, LATEST - one, datetime(1970, 1, 1, tzinfo=UTC),
               datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
               datetime(2199, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
               datetime(2026, 5, 1, 12, 30, 0, 500_000, tzinfo=UTC)]
    for dt in moments:
        for step in (-one, timedelta(0), one):
            moment = dt + step
            back = from_micros(to_micros(moment))
            assert back == moment and back.tzinfo is UTC
    assert from_micros(-1) == datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert to_micros(datetime(1970, 1, 1, 0, 0, 1)) == 1_000_000  # naive: taken as UTC
