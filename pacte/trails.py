"""The runtime's audit trail, whichever it is: one protocol, two trails.

A data directory's trail is its `audit.db` (pacte.audit.trail: one writer, one chain);
an attached server's is the trail shared by every server in Neo4j
(pacte.audit.shared_trail: one chain per writer). Sessions, reports and the operator's
commands reach either through `Trail`, so nothing above the runtime knows which one
it has (docs/scale-out.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from pacte.audit import AuditTrail, Checkpoint, access_report, trace, verify
from pacte.crypto import SigningKey
from pacte.errors import InputError

if TYPE_CHECKING:  # the Neo4j driver is slow to import: a SQLite directory needs none
    from pacte.audit.shared_trail import SharedTrail
    from pacte.audit.shared_verify import SharedVerification

__all__ = ["LocalTrail", "NeoTrail", "Trail", "verify_store"]

Progress = Callable[[int, int], object]


class Trail(Protocol):
    """What the runtime needs of an audit trail."""

    def append(self, records: Sequence[Mapping[str, object]]) -> int:
        """Append in one transaction; the `seq` of the last record."""

    def entries(self, *, subject: str | None, after_seq: int | None, limit: int,
                **filters: Any) -> list[Any]: ...

    def exclusive(self) -> contextlib.AbstractContextManager[None]: ...

    def verify(self, *, public_key: bytes, progress: Progress | None) -> Any:
        """A report with ok, size, entries_checked, checkpoints_valid, checkpoints_total,
        first_bad (a seq), reason, lines() and to_json()."""

    def trace(self, subject: str) -> list[Any]: ...

    def access_report(self, subject: str, policy_summary: Mapping[str, Any], *,
                      now: Callable[[], datetime]) -> dict[str, Any]: ...

    def checkpoint(self) -> Checkpoint: ...

    def rotate_signer(self, new: SigningKey) -> Checkpoint: ...

    def close(self) -> None: ...


class _Delegate:
    """What both trails do by handing the call to the trail they wrap."""

    raw: Any

    def append(self, records: Sequence[Mapping[str, object]]) -> int:
        seq: int = self.raw.append_many(records)[-1].seq
        return seq

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        held: contextlib.AbstractContextManager[None] = self.raw.exclusive()
        return held

    def checkpoint(self) -> Checkpoint:
        made: Checkpoint = self.raw.checkpoint()
        return made

    def rotate_signer(self, new: SigningKey) -> Checkpoint:
        made: Checkpoint = self.raw.rotate_signer(new)
        return made

    def close(self) -> None:
        self.raw.close()


class LocalTrail(_Delegate):
    """A data directory's audit.db."""

    raw: AuditTrail

    def __init__(self, trail: AuditTrail) -> None:
        self.raw = trail

    def entries(self, *, subject: str | None, after_seq: int | None, limit: int,
                **filters: Any) -> list[Any]:
        return self.raw.entries(subject=subject, after_seq=after_seq, limit=limit, **filters)

    def verify(self, *, public_key: bytes, progress: Progress | None) -> Any:
        # Pinned: a checkpoint signed by any key the trail did not rotate to from it fails.
        return verify(self.raw, public_key=public_key, progress=progress)

    def trace(self, subject: str) -> list[Any]:
        return trace(self.raw, subject)

    def access_report(self, subject: str, policy_summary: Mapping[str, Any], *,
                      now: Callable[[], datetime]) -> dict[str, Any]:
        return access_report(self.raw, subject, policy_summary=policy_summary, now=now)


@dataclass
class SharedReport:
    """`verify_shared`'s result as the API, the console and the CLI read a report."""

    ok: bool
    size: int
    entries_checked: int
    checkpoints_valid: int
    checkpoints_total: int
    first_bad: int | None
    reason: str | None
    chains: int
    unsigned: int
    first_bad_entry: str | None  # chain/n
    _lines: list[str]

    def lines(self) -> list[str]:
        return list(self._lines)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("_lines")
        return out


class NeoTrail(_Delegate):
    """The trail shared by every server in Neo4j: this process writes its own chain."""

    raw: SharedTrail

    def __init__(self, trail: SharedTrail) -> None:
        self.raw = trail

    def entries(self, *, subject: str | None, after_seq: int | None, limit: int,
                **filters: Any) -> list[Any]:
        return list(self.raw.entries(subject=subject, after_seq=after_seq, limit=limit,
                                     **filters))

    def verify(self, *, public_key: bytes, progress: Progress | None) -> Any:
        from pacte.audit.shared_trail import CHAIN_SPAN
        from pacte.audit.shared_verify import verify_shared

        report = verify_shared(self.raw.store, public_key=public_key)
        if progress is not None:
            progress(report.entries, report.entries)
        first_bad = None
        if report.first_bad is not None:
            chain, _, n = report.first_bad.rpartition("/")
            first_bad = int(chain[1:]) * CHAIN_SPAN + int(n) if chain.startswith("#") \
                else self.raw.seq_of(chain, int(n))
        return SharedReport(
            ok=report.ok, size=report.entries, entries_checked=report.entries,
            checkpoints_valid=report.checkpoints if report.ok else 0,
            checkpoints_total=report.checkpoints, first_bad=first_bad, reason=report.reason,
            chains=report.chains, unsigned=report.unsigned, first_bad_entry=report.first_bad,
            _lines=report.lines())

    def trace(self, subject: str) -> list[Any]:
        return trace(self._unproven(), subject)

    def access_report(self, subject: str, policy_summary: Mapping[str, Any], *,
                      now: Callable[[], datetime]) -> dict[str, Any]:
        report = access_report(self._unproven(), subject, policy_summary=policy_summary,
                               fresh_checkpoint=False, now=now)
        report["proofs"] = ("none: the trail is shared by many servers, one chain each; "
                            "each use names its entry, and `pacte audit verify` checks every "
                            "chain (docs/scale-out.md)")
        return report

    def _unproven(self) -> AuditTrail:
        # The reports read a trail's pages and, for proofs, its subject-indexed
        # checkpoint: a shared trail has none that covers every chain, so the report
        # lists the uses without proofs (see `access_report` above).
        return cast(AuditTrail, _PagesOnly(self.raw))

class _PagesOnly:
    signer = None

    def __init__(self, trail: SharedTrail) -> None:
        self._trail = trail

    def entries(self, **query: Any) -> list[Any]:
        return list(self._trail.entries(**query))

    def latest_index_checkpoint(self) -> None:
        return None


def verify_store(uri: str, *, key: str | None, signing_key_file: Path | None
                 ) -> SharedVerification:
    """Verify the trail every server shares in the Neo4j store at `uri`, pinned to
    `key` (a base64 public key) or else the public key of `signing_key_file`
    (`pacte audit verify --store`). Reads only: no chain is opened."""
    from pacte.audit import parse_key
    from pacte.audit.shared_verify import verify_shared
    from pacte.graph.neo4j_store import Neo4jStore
    from pacte.graph.stores import NEO4J_SCHEMES, open_store

    if not uri.startswith(NEO4J_SCHEMES):
        raise InputError("--store verifies a trail kept in Neo4j (neo4j://...)")
    if key is not None:
        public, _ = parse_key(key)
        if public is None:
            raise InputError("a shared trail is pinned to its base64 public key")
    elif signing_key_file is not None:
        public = SigningKey.load(signing_key_file).public_key
    else:
        raise InputError("give the key to pin")
    store = open_store(uri)
    try:
        assert isinstance(store, Neo4jStore)
        return verify_shared(store, public_key=public)
    finally:
        store.close()
