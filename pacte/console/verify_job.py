"""The trail's verification, run in the background for the console, with progress.

On a large trail a verification takes minutes: the console starts it on a thread of
its own (one at a time per server) and shows how far it has got until it ends. The
thread opens its own session, as the auditor who asked, so the run is on record as
theirs like a verification through GraphQL.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pacte.errors import PacteError

if TYPE_CHECKING:
    from pacte.graph.principals import Principal
    from pacte.runtime import Pacte

__all__ = ["VerifyJob", "VerifyJobs"]


@dataclass
class VerifyJob:
    started: datetime
    by: str
    checked: int = 0
    total: int = 0
    finished: datetime | None = None
    report: dict[str, Any] | None = None
    lines: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.finished is None

    @property
    def percent(self) -> int:
        return 100 if not self.running else (100 * self.checked // self.total
                                             if self.total else 0)


class VerifyJobs:
    """The latest verification of this server, and the one running if any."""

    def __init__(self, rt: Pacte) -> None:
        self._rt = rt
        self._lock = threading.Lock()
        self.latest: VerifyJob | None = None

    def start(self, principal: Principal) -> VerifyJob:
        """Start a verification unless one is running; the job either way."""
        with self._lock:
            if self.latest is not None and self.latest.running:
                return self.latest
            job = self.latest = VerifyJob(started=self._rt.now(), by=principal.name)
        threading.Thread(target=self._run, args=(job, principal), daemon=True,
                         name="pacte-console-verify").start()
        return job

    def _run(self, job: VerifyJob, principal: Principal) -> None:
        def progress(checked: int, total: int) -> None:
            job.checked, job.total = checked, total

        try:
            report = self._rt.session(principal, "legal").audit_verification(
                progress=progress)
            job.report, job.lines = report.to_json(), list(report.lines())
            job.checked = report.entries_checked
        except PacteError as exc:
            job.error = str(exc)
        except Exception as exc:  # the page must say it failed, not spin forever
            job.error = f"the verification failed ({type(exc).__name__})"
        finally:
            job.finished = self._rt.now()
