"""The key vault: per-customer data keys, wrapped under the KEK, in their own SQLite file.

Keeping the data keys (DEKs) in a file apart from the graph is what makes erasure
real: destroying a customer's DEKs here leaves every copy of their ciphertext — in
the graph, in its WAL, in last week's backup — unreadable (crypto-shredding, G8).

`keys.db` holds:

- `meta`: the vault secret (wrapped under the KEK) and its key-check value, the
  current KEK version, and a counter bumped by every destruction;
- `deks`: one row per (customer, DEK version): the wrapped key and the KEK version
  that wrapped it;
- `tombstones`: one row per destroyed customer, keyed by its pseudonymous subject
  reference — no key material, no customer id.

The vault secret gives the blind-index keys (one per field) and the subject
references of the audit trail; it is a key of its own, so the index and the trail
stay usable after any customer's DEK is destroyed.

Caches: unwrapped DEKs are cached in memory, and `FieldCipher` caches derived field
keys. Every destruction empties both at once (G5): the vault bumps `cache_epoch`
and calls every listener registered with `on_flush`. A destruction made by another
process is noticed by `sync()`, which costs one `PRAGMA data_version`; call it at
the start of each request.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from pacte.crypto._keys import (
    DataKey,
    IndexKey,
    VaultSecret,
    unwrap_data_key,
    wrap_data_key,
)
from pacte.crypto.provider import KeyProvider
from pacte.errors import KeyVaultError

__all__ = ["DataKey", "IndexKey", "KeyVault"]

_FORMAT = b"pacte-keys/1"
_WRONG_KEY = "the master key does not match this data directory"
_DESTROYED = "this customer's data keys were destroyed"
_ABSENT = "no data key exists for this customer"
_REWRAP_BATCH = 1000

# Customers whose keys are destroyed and whose erasure is not finished yet: written in
# the same transaction as the destruction, deleted once the nodes are gone, so a crash
# in between is finished when the data directory is next opened.
_ERASING = ("CREATE TABLE IF NOT EXISTS erasing (customer_id TEXT PRIMARY KEY)"
            " WITHOUT ROWID")
_SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE deks (customer_id TEXT NOT NULL, version INTEGER NOT NULL,"
    " kek_version INTEGER NOT NULL, wrapped BLOB NOT NULL, created_at INTEGER NOT NULL,"
    " PRIMARY KEY (customer_id, version)) WITHOUT ROWID",
    "CREATE TABLE tombstones (subject_ref TEXT PRIMARY KEY, destroyed_at INTEGER NOT NULL)"
    " WITHOUT ROWID",
    _ERASING,
)

# Constant query texts; a variable number of ids travels as one JSON array parameter.
_SELECT_MANY = ("SELECT customer_id, version, kek_version, wrapped FROM deks"
                " WHERE customer_id IN (SELECT value FROM json_each(?))")
_SELECT_ONE = "SELECT customer_id, version, kek_version, wrapped FROM deks WHERE customer_id = ?"
_TOMBSTONED_MANY = ("SELECT subject_ref FROM tombstones"
                    " WHERE subject_ref IN (SELECT value FROM json_each(?))")
_INSERT_DEK = ("INSERT INTO deks (customer_id, version, kek_version, wrapped, created_at)"
               " VALUES (?, ?, ?, ?, ?)")

Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _micros(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    # mode=rw: opening must never create an empty vault where a real one was expected.
    uri = f"{path.resolve().as_uri()}?mode={'rwc' if create else 'rw'}"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                               timeout=30.0)
    except sqlite3.Error as exc:
        raise KeyVaultError(f"cannot open the key vault {path}: {exc}") from None
    # Deleted rows are overwritten with zeros rather than left in free space: this is what
    # makes a destroyed key leave the file, not merely the table. Per connection.
    conn.execute("PRAGMA secure_delete = ON")
    # Losing a freshly written DEK after a crash would strand data already encrypted
    # under it, so key writes are fully synced.
    conn.execute("PRAGMA synchronous = FULL")
    return conn


class KeyVault:
    """Per-customer data keys wrapped under a `KeyProvider`'s KEK. Use `create` or `open`."""

    def __init__(self, conn: sqlite3.Connection, path: Path, provider: KeyProvider,
                 secret: VaultSecret, *, now: Now, cache_size: int) -> None:
        self._conn = conn
        self._path = path
        self._provider = provider
        self._secret = secret
        self._now = now
        self._cache_size = cache_size
        self._lock = threading.RLock()
        # customer id -> {DEK version: key}; every version of a customer is loaded at once.
        self._deks: OrderedDict[str, dict[int, DataKey]] = OrderedDict()
        self._index_keys: dict[str, IndexKey] = {}
        self._closed = False
        # Bumped whenever cached keys must go, so a key fetched before a flush is not cached
        # after it; listeners (FieldCipher caches) are emptied at the same moment.
        self.cache_epoch = 0
        self._listeners: list[weakref.WeakMethod[Callable[[], None]]] = []
        self._kek_version = max(provider.current_version, self._meta_int("kek_version"))
        self._destroy_seq = self._meta_int("destroy_seq")
        self._data_version = self._pragma_data_version()

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, provider: KeyProvider, *, now: Now = _utcnow,
               cache_size: int = 65536) -> KeyVault:
        """Make a new vault file (mode 0600) with a fresh vault secret; refuses to overwrite."""
        path = Path(path)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise KeyVaultError(f"the key vault {path} already exists") from None
        except OSError as exc:
            raise KeyVaultError(f"cannot create the key vault {path}: {exc.strerror}") from None
        conn = _connect(path, create=True)
        try:
            secret = VaultSecret.generate()
            kek_version, wrapped = wrap_data_key(provider, secret)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            for ddl in _SCHEMA:
                conn.execute(ddl)
            conn.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", [
                ("format", _FORMAT),
                ("created_at", _micros(now())),
                ("secret", wrapped),
                ("secret_kek_version", kek_version),
                # The key-check value: lets `open` tell a wrong master key from a damaged
                # file even behind a provider whose wrapping is not authenticated.
                ("key_check", secret.check_value()),
                ("kek_version", kek_version),
                ("destroy_seq", 0),
            ])
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            raise
        return cls(conn, path, provider, secret, now=now, cache_size=cache_size)

    @classmethod
    def open(cls, path: Path, provider: KeyProvider, *, now: Now = _utcnow,
             cache_size: int = 65536) -> KeyVault:
        """Open an existing vault; a wrong master key is refused before anything is written."""
        path = Path(path)
        if not path.exists():
            raise KeyVaultError(f"the key vault {path} does not exist")
        conn = _connect(path, create=False)
        try:
            try:
                rows = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            except sqlite3.DatabaseError:
                raise KeyVaultError(f"{path} is not a pacte key vault") from None
            if rows.get("format") != _FORMAT:
                raise KeyVaultError(f"{path} is not a pacte key vault")
            try:
                secret = VaultSecret.unwrap(provider, int(rows["secret_kek_version"]),
                                            bytes(rows["secret"]))
            except KeyVaultError:
                raise KeyVaultError(_WRONG_KEY) from None
            if secret.check_value() != rows.get("key_check"):
                raise KeyVaultError(_WRONG_KEY)
            conn.execute(_ERASING)  # vaults made before it was
            return cls(conn, path, provider, secret, now=now, cache_size=cache_size)
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._flush()
            self._closed = True
            self._conn.close()

    def __enter__(self) -> KeyVault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KeyVault({str(self._path)!r}, kek_version={self._kek_version})"

    @property
    def path(self) -> Path:
        return self._path

    @property
    def kek_version(self) -> int:
        return self._kek_version

    # -- data keys -----------------------------------------------------------------------

    def data_key(self, customer_id: str, *, create: bool = False,
                 version: int | None = None) -> DataKey:
        """The customer's current DEK (or that `version`); KeyVaultError if absent or destroyed."""
        with self._lock:
            self._check_open()
            versions = self._deks.get(customer_id)
            if versions is None:
                if create:
                    return self.data_keys([customer_id], create=True)[customer_id]
                versions = self._load([customer_id]).get(customer_id)
                if versions is None:
                    raise KeyVaultError(_DESTROYED if self.is_destroyed(customer_id)
                                        else _ABSENT)
            else:
                self._deks.move_to_end(customer_id)
            key = versions.get(max(versions) if version is None else version)
            if key is None:
                raise KeyVaultError(f"this customer has no data key version {version}")
            return key

    def data_keys(self, customer_ids: Iterable[str], *,
                  create: bool = False) -> dict[str, DataKey]:
        """The current DEK of each customer, in one round trip; creates missing ones if asked.

        Creation happens in one transaction (BEGIN IMMEDIATE, so two processes cannot
        both create a key for the same customer) with one executemany. A destroyed
        customer is never given a new key: erasure is final.
        """
        ids = list(dict.fromkeys(customer_ids))
        with self._lock:
            self._check_open()
            found: dict[str, dict[int, DataKey]] = {}
            missing: list[str] = []
            for cid in ids:
                versions = self._deks.get(cid)
                if versions is None:
                    missing.append(cid)
                else:
                    found[cid] = versions
            if missing:
                found.update(self._load(missing))
                missing = [cid for cid in missing if cid not in found]
            if missing and not create:
                raise KeyVaultError(f"no data key for {len(missing)} of the requested "
                                    "customers (absent or destroyed)")
            if missing:
                found.update(self._create(missing))
            return {cid: found[cid][max(found[cid])] for cid in ids}

    def _load(self, customer_ids: list[str]) -> dict[str, dict[int, DataKey]]:
        if len(customer_ids) == 1:
            rows = self._conn.execute(_SELECT_ONE, (customer_ids[0],)).fetchall()
        else:
            rows = self._conn.execute(_SELECT_MANY, (json.dumps(customer_ids),)).fetchall()
        out: dict[str, dict[int, DataKey]] = {}
        for cid, version, kek_version, wrapped in rows:
            out.setdefault(cid, {})[version] = unwrap_data_key(
                self._provider, cid, version, kek_version, wrapped)
        for cid, versions in out.items():
            self._remember(cid, versions)
        return out

    def _create(self, customer_ids: list[str]) -> dict[str, dict[int, DataKey]]:
        refs = {self.subject_ref(cid): cid for cid in customer_ids}
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have just created some.
            rows = conn.execute(_SELECT_MANY, (json.dumps(customer_ids),)).fetchall()
            existing: dict[str, dict[int, DataKey]] = {}
            for cid, version, kek_version, wrapped in rows:
                existing.setdefault(cid, {})[version] = unwrap_data_key(
                    self._provider, cid, version, kek_version, wrapped)
            if conn.execute(_TOMBSTONED_MANY, (json.dumps(list(refs)),)).fetchone():
                raise KeyVaultError(f"{_DESTROYED}; an erased customer cannot be re-created")
            at = _micros(self._now())
            created: dict[str, dict[int, DataKey]] = {}
            params: list[tuple[str, int, int, bytes, int]] = []
            for cid in customer_ids:
                if cid in existing:
                    continue
                key = DataKey.generate(cid, 1)
                kek_version, wrapped = wrap_data_key(self._provider, key,
                                                     version=self._kek_version)
                params.append((cid, 1, kek_version, wrapped, at))
                created[cid] = {1: key}
            conn.executemany(_INSERT_DEK, params)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        for source in (existing, created):
            for cid, versions in source.items():
                self._remember(cid, versions)
        return {**existing, **created}

    def _remember(self, customer_id: str, versions: dict[int, DataKey]) -> None:
        self._deks[customer_id] = versions
        self._deks.move_to_end(customer_id)
        while len(self._deks) > self._cache_size:
            self._deks.popitem(last=False)

    # -- erasure -------------------------------------------------------------------------

    def destroy(self, customer_id: str, *, pending: bool = False) -> None:
        """Crypto-shred: delete every DEK version of the customer and leave a tombstone.

        With secure_delete the rows are zeroed in the database pages; the file is then
        rewritten (VACUUM) and the WAL checkpointed and truncated, so the wrapped keys
        linger in no file. Caches of this process are emptied now; other processes
        empty theirs on `sync()`. If the file cannot be rewritten or the log truncated
        (other connections keep reading for longer than the busy timeout), the keys are
        gone from the table but KeyVaultError is raised: destroy again to finish.

        With `pending`, the customer is also noted as an erasure in progress, in the
        same transaction, and the file is not rewritten yet: `erasure_finished` does
        it once the customer's nodes are deleted, so a busy vault cannot stop the
        deletion of nodes whose keys are already gone (see `erasures_pending`).
        """
        with self._lock:
            self._check_open()
            conn = self._conn
            ref = self.subject_ref(customer_id)
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM deks WHERE customer_id = ?", (customer_id,))
                conn.execute("INSERT OR IGNORE INTO tombstones (subject_ref, destroyed_at)"
                              " VALUES (?, ?)", (ref, _micros(self._now())))
                if pending:
                    conn.execute("INSERT OR IGNORE INTO erasing (customer_id) VALUES (?)",
                                 (customer_id,))
                conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'destroy_seq'")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._destroy_seq = self._meta_int("destroy_seq")
            self._flush()
            if not pending:
                self._scrub()

    def erasures_pending(self) -> list[str]:
        """Customers destroyed with `pending` whose erasure is not marked finished.

        An erasure under way in some process, or one its process did not finish (a
        crash, or files that could not be rewritten yet).
        """
        with self._lock:
            self._check_open()
            return [r[0] for r in self._conn.execute(
                "SELECT customer_id FROM erasing ORDER BY customer_id")]

    def erasure_finished(self, customer_id: str) -> None:
        """The customer's nodes are gone: forget the id and rewrite the file.

        The rewrite (see `destroy`) also removes the destroyed keys from every file.
        If it cannot be done, the erasure stays pending and KeyVaultError is raised.
        """
        with self._lock:
            self._check_open()
            self._conn.execute("DELETE FROM erasing WHERE customer_id = ?", (customer_id,))
            try:
                self._scrub()
            except KeyVaultError:
                # Noted again, so that the rewrite is retried (see `erasures_pending`).
                self._conn.execute("INSERT OR IGNORE INTO erasing (customer_id) VALUES (?)",
                                   (customer_id,))
                raise

    def is_destroyed(self, customer_id: str) -> bool:
        with self._lock:
            self._check_open()
            row = self._conn.execute("SELECT 1 FROM tombstones WHERE subject_ref = ?",
                                     (self.subject_ref(customer_id),)).fetchone()
            return row is not None

    def sync(self) -> None:
        """Notice changes made by other processes (destructions, KEK rotation).

        One `PRAGMA data_version` when nothing changed. After another process destroyed
        a key, every cached key here is dropped, so no cache outlives an erasure (G5).
        """
        with self._lock:
            self._check_open()
            version = self._pragma_data_version()
            if version == self._data_version:
                return
            self._data_version = version
            self._kek_version = max(self._kek_version, self._meta_int("kek_version"))
            seq = self._meta_int("destroy_seq")
            if seq != self._destroy_seq:
                self._destroy_seq = seq
                self._flush()

    def on_flush(self, callback: Callable[[], None]) -> None:
        """Call the bound method `callback` whenever cached keys must be dropped.

        Held weakly, so a cache that is no longer used is not kept alive by the vault.
        """
        with self._lock:
            self._listeners.append(weakref.WeakMethod(callback))

    def _flush(self) -> None:
        self._deks.clear()
        self.cache_epoch += 1
        alive = []
        for ref in self._listeners:
            callback = ref()
            if callback is not None:
                callback()
                alive.append(ref)
        self._listeners = alive

    def _scrub(self) -> None:
        # secure_delete zeroes the deleted cells, but B-tree rebalancing leaves stale
        # copies of rows that moved to another page in the unused space of the page
        # they left, and nothing zeroes those: a destroyed key could still be in one.
        # VACUUM rebuilds the file from the live rows only (the vault is small: one
        # short row per customer). The checkpoint then copies the new pages over the
        # old ones and empties the log; it waits for other connections' reads (busy
        # timeout, 30 s) and reports, rather than raises, if they still hold it.
        try:
            self._conn.execute("VACUUM")
            busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.OperationalError as exc:
            raise KeyVaultError(f"the keys were destroyed, but {self._path} could not be "
                                f"rewritten ({exc}); retry to finish") from None
        if busy:
            raise KeyVaultError("the keys were destroyed, but the key vault's write-ahead "
                                "log could not be truncated while other connections read; "
                                "retry to finish")

    def _truncate_wal(self) -> None:
        # A reader in another process can hold the WAL open; retry briefly. If it stays
        # busy the key is still gone from the live database, and the next checkpoint
        # (at the latest when the last connection closes) removes the old frames.
        for attempt in range(20):
            busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return
            time.sleep(0.005 * (attempt + 1))

    # -- rotation ------------------------------------------------------------------------

    def rotate_kek(self) -> int:
        """New KEK version from the provider; every DEK and the vault secret re-wrapped.

        Re-wrapping goes in batches, each its own short transaction, so readers are never
        blocked for long; rows not yet re-wrapped still open under their old version, so
        nothing is unreadable at any point, and an interrupted rotation is finished by
        the next one. Returns the new version.
        """
        with self._lock:
            self._check_open()
            version = self._provider.rotate()
            # A stateless provider (EnvKeyProvider) forgets rotations across restarts; the
            # vault remembers the version, so step the provider past it.
            while version <= self._kek_version:
                version = self._provider.rotate()
            conn = self._conn
            kek_version, wrapped = wrap_data_key(self._provider, self._secret, version=version)
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("UPDATE meta SET value = ? WHERE name = ?", [
                    (wrapped, "secret"), (kek_version, "secret_kek_version"),
                    (version, "kek_version")])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._kek_version = version
            after = ("", 0)
            while True:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    rows = conn.execute(
                        "SELECT customer_id, version, kek_version, wrapped FROM deks"
                        " WHERE (customer_id, version) > (?, ?) ORDER BY customer_id, version"
                        " LIMIT ?", (*after, _REWRAP_BATCH)).fetchall()
                    params = []
                    for cid, dek_version, old, blob in rows:
                        if old == version:
                            continue
                        key = unwrap_data_key(self._provider, cid, dek_version, old, blob)
                        _, new_blob = wrap_data_key(self._provider, key, version=version)
                        params.append((version, new_blob, cid, dek_version, old))
                    conn.executemany(
                        "UPDATE deks SET kek_version = ?, wrapped = ?"
                        " WHERE customer_id = ? AND version = ? AND kek_version = ?", params)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                if len(rows) < _REWRAP_BATCH:
                    break
                after = (rows[-1][0], rows[-1][1])
            self._retire_keks(current=version)
            self._truncate_wal()
            return version

    def _retire_keks(self, *, current: int) -> None:
        """Drop from the provider the KEK versions nothing is wrapped under any more.

        The version just before the current one is kept too: another process that has
        not yet seen the rotation may still wrap a new data key under it (the next
        rotation re-wraps that key, and retires the version then). Providers that keep
        nothing (PACTE_MASTER_KEY derives every version) have no `retire`.
        """
        retire = getattr(self._provider, "retire", None)
        if retire is None:
            return
        in_use = {int(r[0]) for r in self._conn.execute("SELECT DISTINCT kek_version FROM deks")}
        in_use.add(self._meta_int("secret_kek_version"))
        retire(keep=in_use | {current, current - 1})

    # -- vault-level keys ----------------------------------------------------------------

    def index_key(self, name: str) -> IndexKey:
        """The HMAC key of the blind index `name` (one per field), derived from the vault secret."""
        key = self._index_keys.get(name)
        if key is None:
            key = self._index_keys[name] = self._secret.index_key(name)
        return key

    def subject_ref(self, customer_id: str) -> str:
        """A stable pseudonymous reference ('s_' + 16 hex) for the audit trail.

        Keyed by the vault secret, not the customer's DEK, so it survives erasure: the
        trail can still show what happened to an erased customer without naming them.
        """
        return "s_" + self._secret.subject_mac(customer_id)[:8].hex()

    # -- helpers -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise KeyVaultError("the key vault is closed")

    def _meta_int(self, name: str) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _pragma_data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
