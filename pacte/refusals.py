"""Refusals of unauthenticated requests, audited without one entry per request.

Anyone who can reach the server can send requests without a valid key, and each
refusal used to append an audit entry: 500 requests, 500 entries. Refusals are
instead counted per time window: the first refusal of a window is appended at once
(so an attempt is on record before its answer leaves), the others are counted, and
their count is appended as one entry when the next window opens, or when the data
directory is closed (`flush`). The trail keeps how many refusals there were, for
which reason and when; it no longer keeps one request id per refusal, and the
count of a window still open is lost if the process is killed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

__all__ = ["RefusalTally"]

WINDOW = timedelta(minutes=1)

Append = Callable[[Sequence[Mapping[str, object]]], object]


class RefusalTally:
    """Counts refusals per window; writes through `append`, records built by `record`."""

    def __init__(self, *, append: Append, record: Callable[[str], dict[str, object]],
                 window: timedelta = WINDOW) -> None:
        self._append = append
        self._record = record
        self._window = window
        self._lock = threading.Lock()
        self._opened: datetime | None = None
        self._counts: dict[str, tuple[int, datetime, datetime]] = {}

    def refused(self, reason: str, *, at: datetime, request_id: str | None) -> None:
        """Audit one refusal: appended now if it opens a window, else counted."""
        with self._lock:
            if self._opened is not None and at - self._opened < self._window:
                count, first, _last = self._counts.get(reason, (0, at, at))
                self._counts[reason] = (count + 1, first, at)
                return
            first_of_window = self._record(reason)
            first_of_window["request_id"] = request_id
            # The counts of the window that ends go first, in the same append.
            self._append([*self._summaries(), first_of_window])
            self._opened = at
            self._counts = {}

    def flush(self) -> None:
        """Append the counts not yet written (on close)."""
        with self._lock:
            summaries = self._summaries()
            if summaries:
                self._append(summaries)
            self._counts = {}

    def _summaries(self) -> list[dict[str, object]]:
        out = []
        for reason, (count, first, last) in sorted(self._counts.items()):
            rec = self._record(reason)
            rec.update(count=count, first_at=first.isoformat(), last_at=last.isoformat())
            out.append(rec)
        return out
