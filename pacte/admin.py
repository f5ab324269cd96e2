"""The operator's audited operations: API keys, key rotations, checkpoints, migration.

These act on the data directory itself rather than on customer data, so they do not
go through a purpose-bound `Session`; each is still on record the way every write is
(G6): its audit record is appended *before* the change, and a change that then fails
is recorded as failed (`on_record`, the one way they record). The command line and
`Pacte`'s methods of the same names are their only callers; nothing here hands out
the store, the vault or the trail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacte.audit import Checkpoint, key_fingerprint
from pacte.clock import from_micros, to_micros
from pacte.crypto import EnvKeyProvider, SigningKey
from pacte.errors import ConfigError
from pacte.graph.migrate import MigrationReport, migrate
from pacte.graph.principals import Principal
from pacte.graph.stores import open_store

if TYPE_CHECKING:
    from pacte.backend import Backend as _Backend

__all__ = ["checkpoint", "create_principal", "list_principals", "migrate_store",
           "on_record", "revoke_principal", "rotate_keys", "rotate_signing_key"]

SIGNING_KEY_FILE = "signing.key"
STORE_URI_FILE = "store.uri"
AUDIT_FILE = "audit.db"


class _Record:
    """What `on_record` yields: call it with the change's details to put it on record."""

    def __init__(self, backend: _Backend, action: str, outcome: str) -> None:
        self._backend, self._action, self._outcome = backend, action, outcome
        self.record: dict[str, object] | None = None

    def __call__(self, extra: Mapping[str, object] | None = None) -> None:
        record = self._backend.system_record(self._action, outcome=self._outcome,
                                             extra=extra)
        self._backend.audit_append([record])
        self.record = record


@contextmanager
def on_record(backend: _Backend, action: str, *, outcome: str = "ok"
              ) -> Iterator[_Record]:
    """Audit an operator's change before it is made (G6; as `Access._commit` does).

    The body calls what this yields, with the change's details, just before the change
    (a failed append stops it there); if the body then fails, a second record says so.
    The trail may name a change that did not happen, never miss one that did.
    """
    record = _Record(backend, action, outcome)
    try:
        yield record
    except BaseException as exc:
        if record.record is not None:
            # A change made whose aftermath failed (a revocation whose stamp could not
            # move) is on record as made, and incomplete, not as failed.
            made = getattr(exc, "change_made", False)
            backend.audit_append([{**record.record, "outcome": "incomplete"} if made
                                  else {**record.record, "outcome": "failed"}])
        raise


# -- API keys --------------------------------------------------------------------

def create_principal(backend: _Backend, *, name: str, role: str, purposes: Sequence[str]
                     ) -> tuple[Principal, str]:
    with on_record(backend, "principal.create") as record:
        return backend.principals.create(
            name=name, role=role, purposes=purposes, now=to_micros(backend.now()),
            before_write=lambda p: record({"target": p.id, "target_role": p.role,
                                           "target_purposes": list(p.purposes)}))


def revoke_principal(backend: _Backend, principal_id: str) -> Principal:
    with on_record(backend, "principal.revoke") as record:
        return backend.principals.revoke(principal_id, now=to_micros(backend.now()),
                                         before_write=lambda p: record({"target": p.id}))


def list_principals(backend: _Backend) -> list[dict[str, Any]]:
    """Every principal (never a key): id, name, role, purposes, state, created and
    last-used dates (ISO 8601; the last use to the day)."""
    rows = []
    for p in backend.principals.list():
        last = backend.principals.last_used(p.id)
        day = None if last is None else from_micros(last).date().isoformat()
        rows.append({"id": p.id, "name": p.name, "role": p.role,
                     "purposes": list(p.purposes),
                     "state": "revoked" if p.revoked else "active",
                     "created": _iso(p.created_at),
                     "last_used": day})
    return rows


# -- keys --------------------------------------------------------------------------

def rotate_keys(backend: _Backend) -> int:
    """A new KEK version; every data key re-wrapped under it. Returns the new version.

    With the keys in Neo4j, every server must be able to unwrap under the new version
    from its next request: PACTE_MASTER_KEY derives every version on every server,
    whereas a new version written to this machine's key file would be on it alone.
    """
    if backend.vault.path is None and not isinstance(backend.vault.provider, EnvKeyProvider):
        raise ConfigError("with the keys in Neo4j, rotate with PACTE_MASTER_KEY set on "
                          "every server (a key file's new version would be on this "
                          "machine only)")
    # On record before master.key and the vault change: the entry names the version
    # rotated from; a second one the version made, or failure.
    with on_record(backend, "key.rotate", outcome="started") as record:
        record({"from_kek_version": backend.vault.kek_version})
        version = backend.vault.rotate_kek()
    backend.audit_append([backend.system_record("key.rotate", extra={"kek_version": version})])
    return version


def rotate_signing_key(backend: _Backend, path: Path) -> str:
    """A new audit signing key, handed over on the trail; returns its fingerprint.

    The hand-over is itself the record: an entry of the trail signed by both keys (see
    `pacte.audit.rotation`). The new key is written beside the old one first and
    replaces it once the trail has recorded the hand-over, so a failure leaves the
    directory signing as before. `path`: the signing key file.
    """
    staged = path.with_name(path.name + ".new")
    staged.unlink(missing_ok=True)
    new = SigningKey.create(staged)
    try:
        backend.audit.rotate_signer(new)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    os.replace(staged, path)
    backend.signer = new
    return key_fingerprint(new.public_key)


def checkpoint(backend: _Backend) -> Checkpoint:
    """Sign a checkpoint of the trail now; kept in the trail itself, which is its record."""
    return backend.audit.checkpoint()


# -- the store ---------------------------------------------------------------------

def migrate_store(backend: _Backend, data_dir: Path, to: str, *, switch: bool = False,
                  batch: int = 1000, progress: Callable[[str, int], object] | None = None
                  ) -> MigrationReport:
    """Copy the graph (ciphertext as is) to the store at `to`; to Neo4j, the wrapped data
    keys of keys.db and the audit trail too. Every part is verified, and idempotent or
    resumable, so a run killed anywhere is finished by running it again.

    With `switch`, the data directory uses the new store from then on and, the keys
    being in Neo4j, keys.db is deleted (a copy left behind would keep the keys of
    customers erased later); this handle's vault is closed: open the directory again.
    """
    target = open_store(to, create=True)
    try:
        with on_record(backend, "migrate.start") as record:
            record({"to": _safe(to)})
            if target.uri == backend.store.uri:  # a re-run after the switch
                report = MigrationReport(source=target.uri, target=target.uri)
            else:
                report = migrate(backend.store, target, batch=batch, progress=progress)
            moved = _move_keys_and_trail(backend, target, report, batch=batch,
                                         progress=progress)
        if moved:
            report.decrypted = _read_attached(to, data_dir)
        backend.audit_append([backend.system_record("migrate.done", extra={
            "to": _safe(to), "counts": report.counts, "checksum": report.checksum,
            "keys": report.keys, "trail": report.trail, "decrypted": report.decrypted})])
        if switch and moved:
            _last_entries(backend, target, batch=batch)
    finally:
        target.close()
    if switch:
        _switch(backend, data_dir, to, keys_moved=report.keys is not None)
    return report


def _last_entries(backend: _Backend, target: Any, *, batch: int) -> None:
    """Before a switch: what audit.db gained since its copy (this run's own entries,
    `migrate.done` included) goes to the shared trail too, which the copy verifies."""
    from pacte.audit import AuditTrail
    from pacte.graph.migrate_trail import copy_trail

    if isinstance(backend.audit, AuditTrail):
        copy_trail(backend.audit, target, signer=backend.signer, batch=batch)


def _move_keys_and_trail(backend: _Backend, target: Any, report: MigrationReport, *,
                         batch: int, progress: Callable[[str, int], object] | None) -> bool:
    """Beside a Neo4j target: keys.db's rows into its vault, audit.db into its shared
    trail, then every customer's data key unwrapped from Neo4j under the KEK. Whether
    the target is Neo4j."""
    from pacte.graph.neo4j_store import Neo4jStore

    if not isinstance(target, Neo4jStore):
        return False
    from pacte.crypto.neo4j_vault import Neo4jVaultRows
    from pacte.crypto.sqlite_vault import SQLiteVaultRows
    from pacte.crypto.vault import KeyVault
    from pacte.crypto.vault_copy import copy_vault
    from pacte.graph.migrate_trail import copy_trail

    provider = backend.vault.provider
    path = backend.vault.path
    if path is not None:
        source = SQLiteVaultRows.open(path)
        try:
            report.keys = copy_vault(source, target, provider, batch=batch, progress=progress)
        finally:
            source.close()
    from pacte.audit import AuditTrail

    if isinstance(backend.audit, AuditTrail):  # else the directory writes the shared one
        report.trail = copy_trail(backend.audit, target, signer=backend.signer, batch=batch,
                                  progress=progress).entries
    with KeyVault.over(Neo4jVaultRows(target), provider) as vault:
        after: str | None = None
        while page := target.scan_nodes("Customer", after=after, limit=batch):
            vault.data_keys([n.id for n in page])  # KeyVaultError if one is missing
            after = page[-1].id
    return True


def _read_attached(to: str, data_dir: Path) -> int:
    """Read every customer the service purpose sees through a runtime attached to `to`
    as a server with no data directory is (keys and graph from Neo4j only), which
    decrypts their fields; how many. The reads are on record in this directory's trail.
    """
    from pacte.runtime import Pacte

    key_file = data_dir / "master.key"
    with Pacte.attach(to, policy_file=data_dir / "policy.toml",
                      signing_key_file=data_dir / SIGNING_KEY_FILE, work_dir=data_dir,
                      master_key_file=key_file if key_file.exists() else None) as rt:
        session = rt.operator_session("service")
        read, after = 0, None
        while True:
            page = session.customers(first=100, after=after)
            read += len(page.items)
            if not page.has_next:
                return read
            after = page.end_cursor


def _switch(backend: _Backend, data_dir: Path, to: str, *, keys_moved: bool) -> None:
    uri_file = data_dir / STORE_URI_FILE
    uri_file.write_text(to + "\n", encoding="utf-8")
    uri_file.chmod(0o600)  # it may carry the store's password
    if keys_moved and backend.vault.path is not None:
        path = backend.vault.path
        backend.vault.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    if keys_moved and (data_dir / AUDIT_FILE).exists():
        # Its entries are in the shared trail (`_last_entries`): kept aside as a record,
        # no longer written, so the next open appends to the shared trail like every
        # server does (a directory on Neo4j without audit.db, pacte.runtime).
        backend.trail.close()
        for suffix in ("", "-wal", "-shm"):
            old = data_dir / f"{AUDIT_FILE}{suffix}"
            if old.exists():
                old.replace(data_dir / f"{AUDIT_FILE}.migrated{suffix}")


def _safe(uri: str) -> str:
    """A store URI without its password, for the audit trail."""
    scheme, sep, rest = uri.partition("://")
    if sep and "@" in rest:
        creds, _, host = rest.rpartition("@")
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return uri


def _iso(micros: int | None) -> str | None:
    return None if micros is None else from_micros(micros).isoformat().replace("+00:00", "Z")
