"""The key vault: per-customer data keys, wrapped under the KEK, kept apart from the graph.

Keeping the data keys (DEKs) apart from the graph's ciphertext is what makes erasure
real: destroying a customer's DEKs leaves every copy of their ciphertext — in the
graph, in its WAL, in last week's backup — unreadable (crypto-shredding, G8).

Where the wrapped keys live is a `VaultRows` backend: by default the SQLite file
`keys.db` (`SQLiteVaultRows`, below); beside a Neo4j store, Neo4j itself
(`pacte.crypto.neo4j_vault`), so that every server on every machine reads the same
keys (docs/scale-out.md). Either holds:

- the vault's meta: the vault secret (wrapped under the KEK) and its key-check value,
  the current KEK version, and a counter bumped by every destruction;
- the data keys: one row per (customer, DEK version): the wrapped key and the KEK
  version that wrapped it;
- tombstones: one row per destroyed customer, keyed by its pseudonymous subject
  reference — no key material, no customer id;
- erasures under way: the customers destroyed whose nodes may not be deleted yet.

The KEK itself never goes in: a backup of the rows alone opens nothing.

The vault secret gives the blind-index keys (one per field) and the subject
references of the audit trail; it is a key of its own, so the index and the trail
stay usable after any customer's DEK is destroyed.

Caches: unwrapped DEKs are cached in memory, and `FieldCipher` caches derived field
keys. Every destruction empties both at once (G5): the vault bumps `cache_epoch`
and calls every listener registered with `on_flush`. A destruction made by another
process is noticed by `sync()` (one `PRAGMA data_version` on SQLite, one read on
Neo4j); call it at the start of each request.
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
from typing import Protocol

from pacte.crypto._keys import (
    DataKey,
    IndexKey,
    TokenKey,
    VaultSecret,
    unwrap_data_key,
    wrap_data_key,
)
from pacte.crypto.provider import KeyProvider
from pacte.errors import KeyVaultError

__all__ = ["DataKey", "DekRow", "IndexKey", "KeyVault", "SQLiteVaultRows", "VaultMeta",
           "VaultRows"]

FORMAT = b"pacte-keys/1"
_WRONG_KEY = "the master key does not match this data directory"
_DESTROYED = "this customer's data keys were destroyed"
_ABSENT = "no data key exists for this customer"
# What `VaultRows.add` raises for a tombstoned customer.
NOT_RECREATED = f"{_DESTROYED}; an erased customer cannot be re-created"
REWRAP_BATCH = 1000

# (customer id, DEK version, KEK version, wrapped key)
DekRow = tuple[str, int, int, bytes]
# name -> value: format, created_at, secret, secret_kek_version, key_check, kek_version,
# destroy_seq (bytes or int).
VaultMeta = dict[str, object]

Now = Callable[[], datetime]


class VaultRows(Protocol):
    """Where a vault's wrapped keys, tombstones and meta are kept (one transaction each)."""

    where: str  # for messages: a path, or "neo4j"

    def meta(self) -> VaultMeta:
        """Every meta value; KeyVaultError if this is not a vault."""
        ...

    def meta_int(self, name: str) -> int: ...

    def load(self, customer_ids: list[str]) -> list[DekRow]: ...

    def add(self, customer_ids: list[str], refs: list[str],
            make: Callable[[list[str]], list[tuple[DekRow, int]]]) -> list[DekRow]:
        """In one transaction that excludes every other creation and destruction: the
        rows already there for `customer_ids` (returned), KeyVaultError(NOT_RECREATED)
        if any of `refs` is tombstoned, else the rows `make(missing ids)` gives (with
        their creation time) inserted."""
        ...

    def destroy(self, customer_id: str, ref: str, *, at: int, pending: bool) -> int:
        """Delete the customer's rows, tombstone `ref`, note the erasure if `pending`,
        bump destroy_seq: one transaction. Returns the new destroy_seq."""
        ...

    def erasing(self) -> list[str]: ...

    def set_erasing(self, customer_id: str, *, on: bool, at: int) -> None: ...

    def tombstoned(self, ref: str) -> bool: ...

    def state(self) -> tuple[int, int] | None:
        """(kek_version, destroy_seq), or None when surely nothing changed since the
        last call (a cheap check)."""
        ...

    def scrub(self) -> None:
        """Make sure destroyed keys linger in no file this backend controls."""
        ...

    def set_secret(self, wrapped: bytes, *, secret_kek_version: int, kek_version: int
                   ) -> None: ...

    def rewrap(self, version: int, rewrap: Callable[[DekRow], bytes]) -> None:
        """Every row not under KEK `version` re-wrapped by `rewrap`, in short batches."""
        ...

    def kek_versions_in_use(self) -> set[int]: ...

    def after_rotation(self) -> None: ...

    def close(self) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _micros(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def new_vault_meta(provider: KeyProvider, *, now: Now) -> tuple[VaultSecret, VaultMeta]:
    """A fresh vault secret and the meta a new vault starts with."""
    secret = VaultSecret.generate()
    kek_version, wrapped = wrap_data_key(provider, secret)
    return secret, {
        "format": FORMAT,
        "created_at": _micros(now()),
        "secret": wrapped,
        "secret_kek_version": kek_version,
        # The key-check value: lets `open` tell a wrong master key from a damaged
        # store even behind a provider whose wrapping is not authenticated.
        "key_check": secret.check_value(),
        "kek_version": kek_version,
        "destroy_seq": 0,
    }


class KeyVault:
    """Per-customer data keys wrapped under a `KeyProvider`'s KEK. Use `create` or `open`
    (keys.db), or `over` (any `VaultRows`)."""

    def __init__(self, rows: VaultRows, provider: KeyProvider, secret: VaultSecret, *,
                 now: Now, cache_size: int) -> None:
        self._rows = rows
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
        self._kek_version = max(provider.current_version, rows.meta_int("kek_version"))
        self._destroy_seq = rows.meta_int("destroy_seq")
        rows.state()  # the baseline `sync` compares with

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, provider: KeyProvider, *, now: Now = _utcnow,
               cache_size: int = 65536) -> KeyVault:
        """Make a new vault file (mode 0600) with a fresh vault secret; refuses to overwrite."""
        secret, meta = new_vault_meta(provider, now=now)
        rows = SQLiteVaultRows.create(Path(path), meta)
        return cls(rows, provider, secret, now=now, cache_size=cache_size)

    @classmethod
    def open(cls, path: Path, provider: KeyProvider, *, now: Now = _utcnow,
             cache_size: int = 65536) -> KeyVault:
        """Open an existing vault; a wrong master key is refused before anything is written."""
        return cls.over(SQLiteVaultRows.open(Path(path)), provider, now=now,
                        cache_size=cache_size)

    @classmethod
    def over(cls, rows: VaultRows, provider: KeyProvider, *, now: Now = _utcnow,
             cache_size: int = 65536) -> KeyVault:
        """The vault whose rows these are; closes `rows` if the master key is wrong."""
        try:
            meta = rows.meta()
            try:
                secret = VaultSecret.unwrap(provider, int(meta["secret_kek_version"]),  # type: ignore[call-overload]
                                            bytes(meta["secret"]))  # type: ignore[call-overload]
            except KeyVaultError:
                raise KeyVaultError(_WRONG_KEY) from None
            if secret.check_value() != meta.get("key_check"):
                raise KeyVaultError(_WRONG_KEY)
            return cls(rows, provider, secret, now=now, cache_size=cache_size)
        except BaseException:
            rows.close()
            raise

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._flush()
            self._closed = True
            self._rows.close()

    def __enter__(self) -> KeyVault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KeyVault({self._rows.where!r}, kek_version={self._kek_version})"

    @property
    def path(self) -> Path | None:
        """The vault file, or None when the keys are not in a file of their own."""
        path = getattr(self._rows, "path", None)
        return path if isinstance(path, Path) else None

    @property
    def kek_version(self) -> int:
        return self._kek_version

    @property
    def provider(self) -> KeyProvider:
        return self._provider

    # -- data keys -----------------------------------------------------------------------

    def token_key(self, purpose: str) -> TokenKey:
        """The key of one front door's sealed tokens, derived from the vault secret:
        the same on every server that opens this vault (and only there)."""
        return self._secret.token_key(purpose)

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

        Creation happens in one transaction that excludes other creations (so two
        processes cannot both create a key for the same customer). A destroyed
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

    def _unwrap(self, rows: Iterable[DekRow]) -> dict[str, dict[int, DataKey]]:
        out: dict[str, dict[int, DataKey]] = {}
        for cid, version, kek_version, wrapped in rows:
            out.setdefault(cid, {})[version] = unwrap_data_key(
                self._provider, cid, version, kek_version, wrapped)
        return out

    def _load(self, customer_ids: list[str]) -> dict[str, dict[int, DataKey]]:
        out = self._unwrap(self._rows.load(customer_ids))
        for cid, versions in out.items():
            self._remember(cid, versions)
        return out

    def _create(self, customer_ids: list[str]) -> dict[str, dict[int, DataKey]]:
        created: dict[str, dict[int, DataKey]] = {}

        def make(missing: list[str]) -> list[tuple[DekRow, int]]:
            created.clear()
            at = _micros(self._now())
            made: list[tuple[DekRow, int]] = []
            for cid in missing:
                key = DataKey.generate(cid, 1)
                kek_version, wrapped = wrap_data_key(self._provider, key,
                                                     version=self._kek_version)
                made.append(((cid, 1, kek_version, wrapped), at))
                created[cid] = {1: key}
            return made

        rows = self._rows.add(customer_ids, [self.subject_ref(c) for c in customer_ids], make)
        existing = self._unwrap(rows)
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

        On keys.db, with secure_delete the rows are zeroed in the database pages; the
        file is then rewritten (VACUUM) and the WAL checkpointed and truncated, so the
        wrapped keys linger in no file. Caches of this process are emptied now; other
        processes empty theirs on `sync()`. If the file cannot be rewritten or the log
        truncated (other connections keep reading for longer than the busy timeout),
        the keys are gone from the table but KeyVaultError is raised: destroy again to
        finish.

        With `pending`, the customer is also noted as an erasure in progress, in the
        same transaction, and the file is not rewritten yet: `erasure_finished` does
        it once the customer's nodes are deleted, so a busy vault cannot stop the
        deletion of nodes whose keys are already gone (see `erasures_pending`).
        """
        with self._lock:
            self._check_open()
            self._destroy_seq = self._rows.destroy(
                customer_id, self.subject_ref(customer_id), at=_micros(self._now()),
                pending=pending)
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
            return self._rows.erasing()

    def erasure_finished(self, customer_id: str) -> None:
        """The customer's nodes are gone: forget the id and rewrite the file.

        The rewrite (see `destroy`) also removes the destroyed keys from every file.
        If it cannot be done, the erasure stays pending and KeyVaultError is raised.
        """
        with self._lock:
            self._check_open()
            at = _micros(self._now())
            self._rows.set_erasing(customer_id, on=False, at=at)
            try:
                self._scrub()
            except KeyVaultError:
                # Noted again, so that the rewrite is retried (see `erasures_pending`).
                self._rows.set_erasing(customer_id, on=True, at=at)
                raise

    def is_destroyed(self, customer_id: str) -> bool:
        with self._lock:
            self._check_open()
            return self._rows.tombstoned(self.subject_ref(customer_id))

    def sync(self) -> None:
        """Notice changes made by other processes (destructions, KEK rotation).

        Cheap when nothing changed. After another process destroyed a key, every cached
        key here is dropped, so no cache outlives an erasure (G5).
        """
        with self._lock:
            self._check_open()
            state = self._rows.state()
            if state is None:
                return
            kek_version, seq = state
            self._kek_version = max(self._kek_version, kek_version)
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
        self._rows.scrub()

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
            kek_version, wrapped = wrap_data_key(self._provider, self._secret, version=version)
            self._rows.set_secret(wrapped, secret_kek_version=kek_version, kek_version=version)
            self._kek_version = version

            def rewrap(row: DekRow) -> bytes:
                cid, dek_version, old, blob = row
                key = unwrap_data_key(self._provider, cid, dek_version, old, blob)
                return wrap_data_key(self._provider, key, version=version)[1]

            self._rows.rewrap(version, rewrap)
            self._retire_keks(current=version)
            self._rows.after_rotation()
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
        in_use = self._rows.kek_versions_in_use()
        in_use.add(self._rows.meta_int("secret_kek_version"))
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


# -- keys.db ---------------------------------------------------------------------------

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


def _rows(rows: Iterable[tuple[object, ...]]) -> list[DekRow]:
    return [(str(r[0]), int(r[1]), int(r[2]), bytes(r[3])) for r in rows]  # type: ignore[call-overload]


class SQLiteVaultRows:
    """A vault's rows in the SQLite file `keys.db` (the calls are serialised by the vault)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.where = str(path)
        self._data_version = -1

    @classmethod
    def create(cls, path: Path, meta: VaultMeta) -> SQLiteVaultRows:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise KeyVaultError(f"the key vault {path} already exists") from None
        except OSError as exc:
            raise KeyVaultError(f"cannot create the key vault {path}: {exc.strerror}") from None
        conn = _connect(path, create=True)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            for ddl in _SCHEMA:
                conn.execute(ddl)
            conn.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", list(meta.items()))
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            raise
        return cls(conn, path)

    @classmethod
    def open(cls, path: Path) -> SQLiteVaultRows:
        if not path.exists():
            raise KeyVaultError(f"the key vault {path} does not exist")
        conn = _connect(path, create=False)
        try:
            try:
                conn.execute("SELECT name, value FROM meta").fetchall()
            except sqlite3.DatabaseError:
                raise KeyVaultError(f"{path} is not a pacte key vault") from None
            conn.execute(_ERASING)  # vaults made before it was
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    def meta(self) -> VaultMeta:
        rows = dict(self._conn.execute("SELECT name, value FROM meta").fetchall())
        if rows.get("format") != FORMAT:
            raise KeyVaultError(f"{self.path} is not a pacte key vault")
        return rows

    def meta_int(self, name: str) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def load(self, customer_ids: list[str]) -> list[DekRow]:
        if len(customer_ids) == 1:
            return _rows(self._conn.execute(_SELECT_ONE, (customer_ids[0],)))
        return _rows(self._conn.execute(_SELECT_MANY, (json.dumps(customer_ids),)))

    def add(self, customer_ids: list[str], refs: list[str],
               make: Callable[[list[str]], list[tuple[DekRow, int]]]) -> list[DekRow]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have just created some.
            existing = _rows(conn.execute(_SELECT_MANY, (json.dumps(customer_ids),)))
            if conn.execute(_TOMBSTONED_MANY, (json.dumps(refs),)).fetchone():
                raise KeyVaultError(NOT_RECREATED)
            have = {r[0] for r in existing}
            made = make([c for c in customer_ids if c not in have])
            conn.executemany(_INSERT_DEK, [(*row, at) for row, at in made])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return existing

    def destroy(self, customer_id: str, ref: str, *, at: int, pending: bool) -> int:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM deks WHERE customer_id = ?", (customer_id,))
            conn.execute("INSERT OR IGNORE INTO tombstones (subject_ref, destroyed_at)"
                         " VALUES (?, ?)", (ref, at))
            if pending:
                conn.execute("INSERT OR IGNORE INTO erasing (customer_id) VALUES (?)",
                             (customer_id,))
            conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'destroy_seq'")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return self.meta_int("destroy_seq")

    def erasing(self) -> list[str]:
        return [r[0] for r in self._conn.execute(
            "SELECT customer_id FROM erasing ORDER BY customer_id")]

    def set_erasing(self, customer_id: str, *, on: bool, at: int) -> None:
        if on:
            self._conn.execute("INSERT OR IGNORE INTO erasing (customer_id) VALUES (?)",
                               (customer_id,))
        else:
            self._conn.execute("DELETE FROM erasing WHERE customer_id = ?", (customer_id,))

    def tombstoned(self, ref: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM tombstones WHERE subject_ref = ?",
                                 (ref,)).fetchone()
        return row is not None

    def state(self) -> tuple[int, int] | None:
        # One PRAGMA when nothing changed: data_version moves when another connection
        # commits.
        version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        if version == self._data_version:
            return None
        self._data_version = version
        return self.meta_int("kek_version"), self.meta_int("destroy_seq")

    def scrub(self) -> None:
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
            raise KeyVaultError(f"the keys were destroyed, but {self.path} could not be "
                                f"rewritten ({exc}); retry to finish") from None
        if busy:
            raise KeyVaultError("the keys were destroyed, but the key vault's write-ahead "
                                "log could not be truncated while other connections read; "
                                "retry to finish")

    def set_secret(self, wrapped: bytes, *, secret_kek_version: int, kek_version: int
                   ) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("UPDATE meta SET value = ? WHERE name = ?", [
                (wrapped, "secret"), (secret_kek_version, "secret_kek_version"),
                (kek_version, "kek_version")])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def rewrap(self, version: int, rewrap: Callable[[DekRow], bytes]) -> None:
        conn = self._conn
        after: tuple[str, int] = ("", 0)
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = _rows(conn.execute(
                    "SELECT customer_id, version, kek_version, wrapped FROM deks"
                    " WHERE (customer_id, version) > (?, ?) ORDER BY customer_id, version"
                    " LIMIT ?", (*after, REWRAP_BATCH)))
                params = [(version, rewrap(row), row[0], row[1], row[2])
                          for row in rows if row[2] != version]
                conn.executemany(
                    "UPDATE deks SET kek_version = ?, wrapped = ?"
                    " WHERE customer_id = ? AND version = ? AND kek_version = ?", params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if len(rows) < REWRAP_BATCH:
                return
            after = (rows[-1][0], rows[-1][1])

    def kek_versions_in_use(self) -> set[int]:
        return {int(r[0]) for r in self._conn.execute("SELECT DISTINCT kek_version FROM deks")}

    def after_rotation(self) -> None:
        # A reader in another process can hold the WAL open; retry briefly. If it stays
        # busy the key is still gone from the live database, and the next checkpoint
        # (at the latest when the last connection closes) removes the old frames.
        for attempt in range(20):
            busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return
            time.sleep(0.005 * (attempt + 1))

    def close(self) -> None:
        self._conn.close()
