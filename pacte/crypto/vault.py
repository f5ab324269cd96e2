"""The key vault: per-customer data keys, wrapped under the KEK, kept apart from the graph.

Keeping the data keys (DEKs) apart from the graph's ciphertext is what makes erasure
real: destroying a customer's DEKs leaves every copy of their ciphertext — in the
graph, in its WAL, in last week's backup — unreadable (crypto-shredding, G8).

Where the wrapped keys live is a `VaultRows` backend (pacte.crypto.vault_rows says
what each holds): by default the SQLite file `keys.db` (pacte.crypto.sqlite_vault);
beside a Neo4j store, Neo4j itself (pacte.crypto.neo4j_vault), so that every server on
every machine reads the same keys (docs/scale-out.md). The KEK itself never goes in: a
backup of the rows alone opens nothing.

The vault secret gives the blind-index keys (one per field) and the subject
references of the audit trail; it is a key of its own, so the index and the trail
stay usable after any customer's DEK is destroyed.

Caches: unwrapped DEKs are cached in memory, and `FieldCipher` caches derived field
keys. Every destruction empties both at once (G5): the vault bumps `cache_epoch`
and calls every listener registered with `on_flush`. A destruction made by another
process is noticed by `sync()` (one `PRAGMA data_version` on SQLite; on Neo4j a read
begun less than a lease ago, pacte.graph.neo4j_shared, which every destruction, restore
of tombstones and rotation waits out before it returns); call it at the start of each
request.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pacte.crypto._keys import (
    DataKey,
    IndexKey,
    TokenKey,
    VaultSecret,
    unwrap_data_key,
    wrap_data_key,
)
from pacte.crypto.provider import KeyProvider
from pacte.crypto.sqlite_vault import SQLiteVaultRows
from pacte.crypto.vault_rows import DESTROYED, FORMAT, NOT_RECREATED, DekRow, VaultMeta, VaultRows
from pacte.errors import KeyVaultError

__all__ = ["FORMAT", "NOT_RECREATED", "DataKey", "DekRow", "IndexKey", "KeyVault",
           "SQLiteVaultRows", "VaultMeta", "VaultRows", "new_vault_meta"]

_WRONG_KEY = "the master key does not match this data directory"
_ABSENT = "no data key exists for this customer"

Now = Callable[[], datetime]


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
        # customer id -> subject reference (see `subject_ref`).
        self._refs: dict[str, str] = {}
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
                    raise KeyVaultError(DESTROYED if self.is_destroyed(customer_id)
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
        self._rows.settle()  # outside the lock: this process's requests go on meanwhile

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

    def tombstones(self) -> set[str]:
        """The subject reference of every customer whose keys were destroyed."""
        with self._lock:
            self._check_open()
            return self._rows.tombstones()

    def restore_tombstones(self, refs: Iterable[str]) -> list[str]:
        """Tombstone the subject references this vault lost (a restore of an older
        copy): re-creating those customers is refused again. The references it
        already holds are left alone; returns those added."""
        with self._lock:
            self._check_open()
            lost = sorted(set(refs) - self._rows.tombstones())
            if lost:
                self._destroy_seq = self._rows.add_tombstones(lost, at=_micros(self._now()))
                self._flush()
        if lost:
            self._rows.settle()
        return lost

    def customers_of(self, refs: set[str]) -> list[str]:
        """The customers holding a data key whose subject reference is in `refs`: one
        HMAC per customer of the vault, for finding keys a restore brought back."""
        with self._lock:
            self._check_open()
            return [cid for cid in self._rows.customer_ids() if self.subject_ref(cid) in refs]

    def is_destroyed(self, customer_id: str) -> bool:
        with self._lock:
            self._check_open()
            return self._rows.tombstoned(self.subject_ref(customer_id))

    def destroyed_among(self, customer_ids: Sequence[str]) -> set[str]:
        """`is_destroyed` of many customers in one read (a bulk load's new ids)."""
        with self._lock:
            self._check_open()
            refs = {self.subject_ref(cid): cid for cid in customer_ids}
            return {refs[r] for r in self._rows.tombstoned_among(list(refs))}

    def sync(self) -> None:
        """Notice changes made by other processes (destructions, KEK rotation).

        Cheap when nothing changed. After another process destroyed a key, every cached
        key here is dropped, so no cache outlives an erasure (G5).
        """
        rows = self._rows
        if rows.concurrent_state:
            with self._lock:
                self._check_open()
            state = rows.state()
        with self._lock:
            if self._closed:  # _check_open, inline: every request runs this
                raise KeyVaultError("the key vault is closed")
            if not rows.concurrent_state:
                state = rows.state()
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
        self._rows.settle()
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
        # Memoised (bounded): a reference never changes, not even when the customer is
        # erased, and every request names its customers by them (one HMAC each).
        ref = self._refs.get(customer_id)
        if ref is None:
            ref = "s_" + self._secret.subject_mac(customer_id)[:8].hex()
            if len(self._refs) >= self._cache_size:
                self._refs.clear()
            self._refs[customer_id] = ref
        return ref

    # -- helpers -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise KeyVaultError("the key vault is closed")
