"""The erasure log: what makes an erasure survive the restore of an older backup.

Crypto-shredding destroys a customer's data keys, and the erasure deletes their nodes;
restoring last week's `keys.db` and `graph.db` (or last week's Neo4j backup, which
holds both) brings both back. So every erasure is also written, before anything is
destroyed, to a log kept apart from the store and the vault (`erasures.log`: in the
data directory; for attached servers where `PACTE_ERASURE_LOG` or `Pacte.attach`
names, by default their working directory), and every open applies the log again.

One JSON line per erasure: {"subject": "s_…", "at": microseconds, "mac": "…"}. The subject is
the pseudonymous reference of the audit trail (a keyed hash of the customer id under
the vault secret): no customer id, no personal value, no key. It is enough to find a
restored customer again without plaintext: the open hashes the id of every customer
that has a data key, and of every Customer node, and compares. Each line carries an
HMAC-SHA256 under a key derived from the vault secret, so a line nobody holding the
KEK wrote is refused (the open fails with IntegrityError naming the line), and a log
from another installation does not verify.

What an open does (`restored`, then the runtime erases what it names, audited as
`customer.erase` with outcome `reapplied`):

1. the vault's tombstones the log lacks are added to it (erasures made before the
   log existed, or by another server writing another log);
2. the subjects of the log the vault has no tombstone for were erased after the
   vault's copy was taken: their tombstones are put back (re-creating them is refused
   again) and their data keys, if the copy has any, are found and destroyed;
3. when the log holds more subjects than the store last saw applied (a meta mark; an
   older store has an older mark) or the vault was restored, the Customer nodes (and
   merged parts) are scanned for logged subjects, whose nodes are then deleted.

Limits: the log guards against restoring the store or the vault, not against
restoring the log with them (a whole-directory restore brings the erased customers
back; keep the log out of the backup set, or on other storage, and re-erase from the
`customer.erase` entries of the audit trail). Deleting lines from the log is not
detected by the log itself (only added lines are refused): step 1 puts back what the
live vault knows. Concurrent appends from many processes are serialised by `flock`,
which assumes a local file system. Servers on several machines that open at once
after a restore may each re-apply (and audit) the same erasure.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from pacte.clock import to_micros
from pacte.crypto import KeyVault
from pacte.errors import IntegrityError
from pacte.graph.model import MERGED_PART
from pacte.graph.store import Store

__all__ = ["LOG_FILE", "ErasureLog", "applied", "restored"]

LOG_FILE = "erasures.log"
# The store's meta key: how many subjects of the log the store has had applied.
MARK = "erasure_log.applied"
# The name under which the vault derives the log's MAC key (never a field's name).
_KEY_NAME = "\x00erasure-log"


class ErasureLog:
    """The append-only log of erased subjects at `path`, authenticated by `vault`."""

    def __init__(self, path: Path, vault: KeyVault) -> None:
        self.path = path
        self._key = vault.index_key(_KEY_NAME)

    def _mac(self, subject: str, at: str) -> str:
        return self._key.mac(f"{subject}\x00{at}".encode()).hex()

    def append(self, subjects: list[str], *, at: datetime) -> None:
        """Add `subjects`, synced to disk before returning (an erasure waits for it)."""
        when = str(to_micros(at))
        lines = "".join(json.dumps({"subject": s, "at": when, "mac": self._mac(s, when)},
                                   separators=(",", ":")) + "\n" for s in subjects)
        with self._locked() as fd:
            # A line torn by a crash mid-append is cut off first, so that it does not
            # run into the next one.
            size = os.lseek(fd, 0, os.SEEK_END)
            if size and os.pread(fd, 1, size - 1) != b"\n":
                whole = os.pread(fd, size, 0)
                os.ftruncate(fd, whole.rfind(b"\n") + 1)
            os.write(fd, lines.encode("utf-8"))
            os.fsync(fd)

    def subjects(self) -> set[str]:
        """Every subject in the log; IntegrityError at the first line that does not
        verify (a torn last line, cut short by a crash, is not one)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return set()
        out: set[str] = set()
        lines = data.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line:
                continue
            try:
                entry = json.loads(line)
                subject, at, mac = entry["subject"], entry["at"], entry["mac"]
                ok = hmac.compare_digest(self._mac(subject, at), mac)
            except (ValueError, KeyError, TypeError):
                if number == len(lines):  # no newline after it: torn by a crash
                    continue
                ok = False
            if not ok:
                raise IntegrityError(f"the erasure log {self.path} does not verify at line "
                                     f"{number}: it was not written by this installation")
            out.add(subject)
        return out

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)


def restored(log: ErasureLog, *, vault: KeyVault, store: Store, now: datetime,
             page: int = 1000) -> tuple[list[str], int]:
    """The customers a restore brought back, whose erasure must be done again, and the
    number of subjects in the log (for `applied`). Puts back lost tombstones and adds
    to the log what the vault knows and it lacks (steps 1 and 2 of the module's doc)."""
    logged = log.subjects()
    known = vault.tombstones()
    if known - logged:
        log.append(sorted(known - logged), at=now)
        logged |= known
    lost = vault.restore_tombstones(logged)
    found = set(vault.customers_of(set(lost))) if lost else set()
    mark = store.get_meta(MARK)
    if lost or int(mark or 0) < len(logged):
        for kind in ("Customer", MERGED_PART):  # a merged part is erased with its survivor
            after: str | None = None
            while batch := store.scan_nodes(kind, after=after, limit=page):
                found.update(n.id for n in batch if vault.subject_ref(n.id) in logged)
                after = batch[-1].id
    return sorted(found), len(logged)


def applied(store: Store, count: int) -> None:
    """Note in the store that the first `count` subjects of the log hold in it."""
    if int(store.get_meta(MARK) or 0) < count:
        store.set_meta(MARK, str(count))
