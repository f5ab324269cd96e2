"""The ingestion loop: rows in, batches of checked writes out, through the session.

Per batch of rows: parse and check every row (a bad one is rejected whole), turn the
batch into one `WriteBatch` (`pacte.ingest.loader`: identities resolved, idempotency
checked) and hand it to `Session.ingest`, which seals, writes and audits it in one
transaction. Then the resume checkpoint moves past the batch.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from pacte.clock import to_micros
from pacte.errors import InputError
from pacte.graph.policy import Policy
from pacte.graph.session import Session
from pacte.graph.store import WriteBatch
from pacte.identity.rules import MatchRules
from pacte.ingest.formats import BadRow, Row, detect_format, open_source, read_rows, source_name
from pacte.ingest.loader import Deferred, Loader
from pacte.ingest.mapping import Mapping, canonical_kind, guess_kind
from pacte.ingest.records import Record, to_record
from pacte.ingest.rejects import RejectFile, masked
from pacte.ingest.resume import Checkpoints, file_digest

__all__ = ["OUTCOMES", "FileReport", "IngestReport", "ingest_files"]

OUTCOMES = ("created", "updated", "merged", "unchanged", "rejected")
# Rows per batch: one write, one checkpoint, one lookup per index. Fewer, larger
# batches cost less per row (each has its lookups, audit entries and transaction, and
# each commit writes out every store page its scattered ids touched), about as large
# as a seed batch of 1,000 customers.
BATCH_ROWS = 20_000
# Beside Neo4j a batch is one server transaction, held in the server's transaction
# memory (256 MiB in the test server: 20,000 rows outgrew it).
BATCH_ROWS_NEO4J = 5_000

@dataclass
class FileReport:
    source: str
    kind: str | None = None
    read: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        return f"{self.source}: read {self.read}, {parts}"


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)
    rejects: Path | None = None

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files)

    def count(self, outcome: str) -> int:
        return sum(f.counts[outcome] for f in self.files)

    @property
    def rejected(self) -> int:
        return self.count("rejected")

    def to_json(self) -> dict[str, object]:
        return {"read": self.read, **{k: self.count(k) for k in OUTCOMES},
                "rejects": None if self.rejects is None or not self.rejected
                else str(self.rejects),
                "files": [{"source": f.source, "kind": f.kind, "read": f.read, **f.counts}
                          for f in self.files]}

    def summary(self) -> str:
        """One line: read, created, updated, merged, unchanged, rejected."""
        parts = ", ".join(f"{k} {self.count(k)}" for k in OUTCOMES)
        line = f"read {self.read}, {parts}"
        if self.rejects is not None and self.rejected:
            line += f" (rejected rows: {self.rejects})"
        return line


Progress = Callable[[str, int], object]


def ingest_files(session: Session, files: Sequence[str], *, mapping: Mapping,
                 format: str | None, max_errors: int | None, policy: Policy,
                 work_dir: Path, now: datetime,
                 erased: Callable[[Sequence[str]], set[str]], rules: MatchRules,
                 progress: Progress | None = None, batch_rows: int = BATCH_ROWS
                 ) -> IngestReport:
    report = IngestReport()
    run = now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
    rejects = RejectFile(work_dir / "rejects" / f"ingest-{run}.csv")
    report.rejects = rejects.path
    checkpoints = Checkpoints(work_dir / "ingest-progress")
    loader = Loader(session, policy=policy, now_us=to_micros(now), erased=erased,
                     rules=rules)
    try:
        for path in files:
            file_report = FileReport(source_name(path))
            report.files.append(file_report)
            _FileRun(loader, path, file_report, mapping=mapping, max_errors=max_errors,
                     rejects=rejects, checkpoints=checkpoints, progress=progress,
                     batch_rows=batch_rows).run(format)
    finally:
        rejects.close()
    return report


class _FileRun:
    """One file's rows through the loader, batch by batch, with its checkpoint.

    The batches stream into one `Session.ingest` call, which writes batch k on a second
    thread while this one parses, looks up and resolves the rows of batch k+1 and
    seals it (the loader adds batch k's writes to what its lookups find, as they may
    not be committed yet). At most one batch is in flight: memory stays bounded. A
    batch whose records need a merge ends the stream: the merges read the store, so
    they run once it is written, and the next rows stream on after them.
    """

    def __init__(self, loader: Loader, path: str, report: FileReport, *, mapping: Mapping,
                 max_errors: int | None, rejects: RejectFile, checkpoints: Checkpoints,
                 progress: Progress | None, batch_rows: int) -> None:
        self.loader, self.path, self.report, self.mapping = loader, path, report, mapping
        self.max_errors, self.rejects, self.checkpoints = max_errors, rejects, checkpoints
        self.progress, self.batch_rows = progress, batch_rows
        self.name = source_name(path)
        # The source's name for the matching rules: --source, else the file's stem.
        self.source = mapping.source or (Path(path).stem if path != "-" else "stdin")
        self.key: str | None = None
        self.batch: list[Record] = []
        self.last_line = 0
        self.kind_of: Callable[[dict[str, Any]], str | None] | None = None
        # Per batch handed to the stream and not yet written: the line its checkpoint
        # moves to once it is (None: not before its merges), and the rows read by then.
        self.marks: deque[tuple[int | None, int]] = deque()
        self.merges: list[Deferred] = []

    def run(self, format: str | None) -> None:
        path = self.path
        with ExitStack() as stack:
            stream = open_source(path)
            if path != "-":
                stack.callback(stream.close)
            fmt = format or self.mapping.format or detect_format(path, _head(stream))
            if path != "-":
                self.key = f"{file_digest(path)[:32]}-{self.mapping.fingerprint()}-{fmt}"
            done = self.checkpoints.line(self.key) if self.key else 0
            rows = iter(read_rows(stream, name=self.name, format=fmt))
            more = True
            while more:
                more = False
                self.loader.write(self._batches(rows, done), on_batch=self._written)
                if self.merges:
                    self._merge()
                    more = True
            if self.key:
                self.checkpoints.clear(self.key)

    def _batches(self, rows: Iterator[Row | BadRow], done: int) -> Iterator[WriteBatch]:
        """The write of each batch of rows, until the rows end or a batch needs merges."""
        for item in rows:
            self.report.read += 1
            if item.line <= done:
                self.report.counts["unchanged"] += 1  # committed by an earlier, killed run
                continue
            self.last_line = item.line
            self._take(item)
            if len(self.batch) >= self.batch_rows:
                yield from self._commit()
                if self.merges:
                    return
        yield from self._commit()

    def _take(self, item: Row | BadRow) -> None:
        """A row checked into the batch, or rejected."""
        if isinstance(item, BadRow):
            self._reject(item.line, item.reason, item.raw, None)
            return
        if self.kind_of is None:
            self.kind_of = _kind_rule(self.path, item, self.mapping)
            self.report.kind = self.kind_of(item.record)
        kind = self.kind_of(item.record)
        if kind is None:
            self._reject(item.line, "cannot tell what kind of record this is "
                         "(give --mapping with kind or kind_field)", item.record, None)
            return
        try:
            rec = to_record(kind, item.line, item.record, self.mapping)
            if kind == "consents":
                _check_consent(rec, self.loader)
        except InputError as exc:
            self._reject(item.line, str(exc), item.record, kind)
            return
        self.batch.append(rec)

    def _reject(self, line: int, reason: str, row: dict[Any, Any], kind: str | None) -> None:
        counts = self.report.counts
        counts["rejected"] += 1
        self.rejects.add(self.name, line, reason, masked(row, self.mapping, kind))
        if self.max_errors is not None and counts["rejected"] > self.max_errors:
            self.rejects.flush()
            raise InputError(f"{self.name}: more than {self.max_errors} rows rejected; "
                             f"stopped at line {line} (rows before it are in)")

    def _commit(self) -> Iterator[WriteBatch]:
        """The batch's write, if it has one; its checkpoint follows once it is written."""
        counts = self.report.counts
        outcomes, writes = self.loader.apply(self.batch, self.source, self._reject)
        for outcome in outcomes:
            counts[outcome] += 1
        self.batch = []
        self.rejects.flush()
        self.merges = self.loader.deferred
        mark = (None if self.merges else self.last_line, self.report.read)
        if writes is None:
            if self.marks:
                # A batch is still being written: this mark holds only once it is.
                self.marks[-1] = mark
            else:
                self._checkpoint(mark)
            return
        self.marks.append(mark)
        yield writes

    def _written(self, _batch: WriteBatch) -> None:
        self._checkpoint(self.marks.popleft())

    def _checkpoint(self, mark: tuple[int | None, int]) -> None:
        line, read = mark
        if line is not None and self.key:
            self.checkpoints.save(self.key, line)
        if self.progress is not None:
            self.progress(self.name, read)

    def _merge(self) -> None:
        """The records that named several customers, once their batch is written; then
        the checkpoint moves past that batch."""
        counts = self.report.counts
        for rec, customers, evidence in self.merges:
            merged = self.loader.merge(rec, customers, evidence, self.source, self._reject)
            if merged is not None:
                counts[merged] += 1
        self.merges = []
        self.rejects.flush()
        self._checkpoint((self.last_line, self.report.read))


def _head(stream: IO[bytes]) -> bytes:
    """The first bytes of a stream, left in it (for telling its format)."""
    peek = getattr(stream, "peek", None)
    return peek(64)[:64] if peek is not None else b""


def _check_consent(rec: Record, loader: Loader) -> None:
    if rec.values["purpose"] not in loader.purposes:
        raise InputError("purpose: not a purpose of the policy")
    at = rec.values["at"]
    if isinstance(at, int) and at > loader.now_us:
        # Not made yet; as the latest choice it would overrule every later one.
        raise InputError("at: a consent choice cannot be dated in the future")


def _kind_rule(path: str, first: Row, mapping: Mapping
               ) -> Callable[[dict[str, Any]], str | None]:
    """How to tell each record's kind: the mapping's rule; else a `type` field naming a
    kind (a mixed source); else the file's name or header."""
    if mapping.kind is not None or mapping.kind_field is not None:
        return mapping.kind_of
    value = first.record.get("type")
    if isinstance(value, str) and canonical_kind(value) is not None:
        return Mapping(kind_field="type", kinds=mapping.kinds).kind_of
    guessed = guess_kind(path, list(first.record))
    return lambda _record: guessed
