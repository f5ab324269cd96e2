"""The key vault's rows in Neo4j, beside the graph: what lets servers on many machines
decrypt the same customers (`VaultRows`; see pacte.crypto.vault_rows and docs/scale-out.md).

    (:PacteVault {key: 'vault', format, created_at, secret, secret_kek_version,
                  key_check, kek_version, destroy_seq, adds})      one node
    (:PacteDek {key, customer_id, version, kek_version, wrapped, created_at})
                                                unique key (customer_id/version)
    (:PacteTombstone {subject_ref, destroyed_at})           unique subject_ref
    (:PacteErasing {customer_id, since})                    unique customer_id

Only wrapped keys go in (the vault secret and the data keys, each wrapped under the
KEK, which never leaves the servers): a backup of the database alone opens nothing.

Every creation and every destruction of keys starts by writing the vault node, so
they hold its write lock until they commit: two servers cannot both create a key for
one customer, and no key is created for a customer whose destruction is committing
(the creation waits, then sees the tombstone). Reads take no lock.

What Neo4j keeps of a deleted node in its own files (store records until reused,
transaction logs until pruned, backups) is the server's: those copies are wrapped
under a KEK version that a rotation with retirement makes unusable (docs/scale-out.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, LiteralString

import neo4j

from pacte.crypto.vault_rows import (
    FORMAT,
    NOT_RECREATED,
    REWRAP_BATCH,
    DekRow,
    VaultMeta,
)
from pacte.errors import Conflict, KeyVaultError
from pacte.graph.neo4j_shared import shared_state
from pacte.graph.neo4j_store import Neo4jStore

__all__ = ["Neo4jVaultRows"]

_CREATE_VAULT = "CREATE (v:PacteVault {key: 'vault'}) SET v += $meta"
_META = "MATCH (v:PacteVault {key: 'vault'}) RETURN properties(v)"
_LOAD = (
    "UNWIND $ids AS cid MATCH (k:PacteDek {customer_id: cid}) "
    "RETURN collect([k.customer_id, k.version, k.kek_version, k.wrapped])"
)
# Taken first by every creation and destruction: the vault node's write lock.
_LOCK = "MATCH (v:PacteVault {key: 'vault'}) SET v.adds = coalesce(v.adds, 0) + 1"
_TOMBSTONED_ANY = (
    "UNWIND $refs AS ref MATCH (t:PacteTombstone {subject_ref: ref}) RETURN count(t)"
)
_INSERT = (
    "UNWIND $rows AS r CREATE (k:PacteDek {key: r.key, customer_id: r.cid, "
    "version: r.version, kek_version: r.kek_version, wrapped: r.wrapped, "
    "created_at: r.at})"
)
_DESTROY_SEQ = (
    "MATCH (v:PacteVault {key: 'vault'}) SET v.destroy_seq = v.destroy_seq + 1 "
    "RETURN v.destroy_seq"
)
_DELETE_DEKS = "MATCH (k:PacteDek {customer_id: $cid}) DELETE k"
_TOMBSTONE = (
    "MERGE (t:PacteTombstone {subject_ref: $ref}) ON CREATE SET t.destroyed_at = $at"
)
_NOTE_ERASING = "MERGE (e:PacteErasing {customer_id: $cid}) ON CREATE SET e.since = $at"
_FORGET_ERASING = "MATCH (e:PacteErasing {customer_id: $cid}) DELETE e"
_ERASING = (
    "MATCH (e:PacteErasing) WITH e.customer_id AS cid ORDER BY cid RETURN collect(cid)"
)
_IS_TOMBSTONED = "MATCH (t:PacteTombstone {subject_ref: $ref}) RETURN count(t)"
_TOMBSTONED_AMONG = (
    "UNWIND $refs AS ref MATCH (t:PacteTombstone {subject_ref: ref}) RETURN collect(ref)"
)
_ROTATE_META = (
    "MATCH (v:PacteVault {key: 'vault'}) SET v.secret = $wrapped, "
    "v.secret_kek_version = $secret_kek_version, "
    "v.kek_version = CASE WHEN v.kek_version > $version THEN v.kek_version ELSE $version END"
)
_REWRAP_PAGE = (
    "MATCH (k:PacteDek) WHERE k.key > $after WITH k ORDER BY k.key LIMIT $limit "
    "RETURN collect([k.key, k.customer_id, k.version, k.kek_version, k.wrapped])"
)
_REWRAP = (
    "UNWIND $rows AS r MATCH (k:PacteDek {key: r.key}) WHERE k.kek_version = r.old "
    "SET k.kek_version = $version, k.wrapped = r.wrapped"
)
_IN_USE = "MATCH (k:PacteDek) RETURN collect(DISTINCT k.kek_version)"
# A copy (`pacte migrate`): idempotent, so that a re-run after a kill finishes it.
_PUT = (
    "UNWIND $rows AS r MERGE (k:PacteDek {key: r.key}) ON CREATE SET "
    "k.customer_id = r.cid, k.version = r.version, k.kek_version = r.kek_version, "
    "k.wrapped = r.wrapped, k.created_at = r.at"
)
_ADOPT = (
    "MATCH (v:PacteVault {key: 'vault'}) SET "
    "v.kek_version = CASE WHEN v.kek_version > $kek THEN v.kek_version ELSE $kek END"
)
_TOMBSTONES = "MATCH (t:PacteTombstone) RETURN collect(t.subject_ref)"
_ADD_TOMBSTONES = (
    "UNWIND $refs AS ref MERGE (t:PacteTombstone {subject_ref: ref}) "
    "ON CREATE SET t.destroyed_at = $at"
)
_CUSTOMER_IDS = (
    "MATCH (k:PacteDek) WITH DISTINCT k.customer_id AS cid ORDER BY cid RETURN collect(cid)"
)


def _dek_key(customer_id: str, version: int) -> str:
    return f"{customer_id}/{version}"


def _rows(values: list[Any]) -> list[DekRow]:
    return [(str(c), int(v), int(k), bytes(w)) for c, v, k, w in values]


def _rewrap_work(rows: list[dict[str, Any]], version: int
                 ) -> Callable[[neo4j.ManagedTransaction], None]:
    def work(tx: neo4j.ManagedTransaction) -> None:
        tx.run(_REWRAP, rows=rows, version=version).consume()
    return work


class Neo4jVaultRows:
    """A vault's rows in the database of a `Neo4jStore` (which stays the caller's to close)."""

    where = "neo4j"
    concurrent_state = True

    def __init__(self, store: Neo4jStore) -> None:
        self._store = store
        # Read with the revocation stamp in one query, under a lease: no round trip per
        # request, and a change here waits the lease out (pacte.graph.neo4j_shared).
        self._shared = shared_state(store)
        # The largest destruction counter this process has read or made: every flush of
        # the vault's caches follows one (see `load`).
        self._seen_seq = 0
        self._seen_lock = threading.Lock()

    @classmethod
    def create(cls, store: Neo4jStore, meta: VaultMeta) -> Neo4jVaultRows:
        """A new vault in the store's database; KeyVaultError if it holds one already."""
        try:
            store.run_write("key vault creation",
                            lambda tx: tx.run(_CREATE_VAULT, meta=meta).consume())
        except Conflict:
            raise KeyVaultError("the Neo4j database already holds a pacte key vault") from None
        return cls(store)

    @classmethod
    def exists(cls, store: Neo4jStore) -> bool:
        return bool(store.run_read("key vault", _META))

    def _one(self, query: LiteralString, **params: Any) -> Any:
        rows = self._store.run_read("key vault read", query, **params)
        return rows[0][0] if rows else None

    def meta(self) -> VaultMeta:
        meta = self._one(_META)
        if not isinstance(meta, dict) or bytes(meta.get("format", b"")) != FORMAT:
            raise KeyVaultError("the Neo4j database holds no pacte key vault")
        return {k: bytes(v) if isinstance(v, bytearray | bytes) else v
                for k, v in meta.items()}

    def meta_int(self, name: str) -> int:
        value = self.meta().get(name)
        return int(value) if isinstance(value, int) else 0

    def load(self, customer_ids: list[str]) -> list[DekRow]:
        # A customer-360 read its customer's keys with it (Neo4jStore.prefetched_keys).
        # Those keys are used, and cached, only when read after every destruction this
        # process knows of: a key read before one that the caches were since emptied for
        # could be the destroyed key itself (G5). Otherwise the server is asked now.
        known = self._store.prefetched_keys(customer_ids)
        if known is not None and known[0] >= self._seen_seq:
            return _rows(known[1])
        return _rows(self._one(_LOAD, ids=customer_ids) or [])

    def _saw(self, seq: int) -> int:
        with self._seen_lock:
            self._seen_seq = max(self._seen_seq, seq)
        return seq

    def add(self, customer_ids: list[str], refs: list[str],
            make: Callable[[list[str]], list[tuple[DekRow, int]]]) -> list[DekRow]:
        def work(tx: neo4j.ManagedTransaction) -> list[DekRow]:
            tx.run(_LOCK).consume()
            existing = _rows(tx.run(_LOAD, ids=customer_ids).single(strict=True)[0])
            if tx.run(_TOMBSTONED_ANY, refs=refs).single(strict=True)[0]:
                raise KeyVaultError(NOT_RECREATED)
            have = {r[0] for r in existing}
            made = make([c for c in customer_ids if c not in have])
            tx.run(_INSERT, rows=[
                {"key": _dek_key(cid, version), "cid": cid, "version": version,
                 "kek_version": kek_version, "wrapped": wrapped, "at": at}
                for (cid, version, kek_version, wrapped), at in made]).consume()
            return existing

        return self._store.run_write("data key creation", work)

    def destroy(self, customer_id: str, ref: str, *, at: int, pending: bool) -> int:
        def work(tx: neo4j.ManagedTransaction) -> int:
            seq = int(tx.run(_DESTROY_SEQ).single(strict=True)[0])
            tx.run(_DELETE_DEKS, cid=customer_id).consume()
            tx.run(_TOMBSTONE, ref=ref, at=at).consume()
            if pending:
                tx.run(_NOTE_ERASING, cid=customer_id, at=at).consume()
            return seq

        return self._saw(self._store.run_write("data key destruction", work))

    def erasing(self) -> list[str]:
        return [str(c) for c in self._one(_ERASING) or []]

    def set_erasing(self, customer_id: str, *, on: bool, at: int) -> None:
        query = _NOTE_ERASING if on else _FORGET_ERASING
        self._store.run_write("erasure note",
                              lambda tx: tx.run(query, cid=customer_id, at=at).consume())

    def tombstoned(self, ref: str) -> bool:
        return bool(self._one(_IS_TOMBSTONED, ref=ref))

    def tombstoned_among(self, refs: Sequence[str]) -> set[str]:
        return set(self._one(_TOMBSTONED_AMONG, refs=list(refs)) or ()) if refs else set()

    def state(self) -> tuple[int, int] | None:
        # There is no cheap "nothing changed" signal across machines: a read begun less
        # than a lease ago, what makes an erasure elsewhere hold from the next request.
        state = self._shared.get().vault
        if state is None:
            raise KeyVaultError("the Neo4j database holds no pacte key vault")
        return state[0], self._saw(state[1])

    def settle(self) -> None:
        # After a destruction, tombstones or a rotation: every server's next request
        # uses a state read after it.
        self._shared.changed()

    def scrub(self) -> None:
        # Deleted nodes are gone from every query at once; Neo4j's files are its own
        # (see the module's docstring).
        return None

    def set_secret(self, wrapped: bytes, *, secret_kek_version: int, kek_version: int
                   ) -> None:
        self._store.run_write("key rotation", lambda tx: tx.run(
            _ROTATE_META, wrapped=wrapped, secret_kek_version=secret_kek_version,
            version=kek_version).consume())

    def rewrap(self, version: int, rewrap: Callable[[DekRow], bytes]) -> None:
        after = ""
        while True:
            page = self._one(_REWRAP_PAGE, after=after, limit=REWRAP_BATCH) or []
            todo = [{"key": key, "old": old,
                     "wrapped": rewrap((str(cid), int(v), int(old), bytes(blob)))}
                    for key, cid, v, old, blob in page if old != version]
            if todo:
                self._store.run_write("key rotation", _rewrap_work(todo, version))
            if len(page) < REWRAP_BATCH:
                return
            after = str(page[-1][0])

    def kek_versions_in_use(self) -> set[int]:
        return {int(v) for v in self._one(_IN_USE) or []}

    def after_rotation(self) -> None:
        return None

    def tombstones(self) -> set[str]:
        return {str(r) for r in self._one(_TOMBSTONES) or []}

    def add_tombstones(self, refs: list[str], *, at: int) -> int:
        def work(tx: neo4j.ManagedTransaction) -> int:
            seq = int(tx.run(_DESTROY_SEQ).single(strict=True)[0])
            tx.run(_ADD_TOMBSTONES, refs=refs, at=at).consume()
            return seq

        return self._saw(self._store.run_write("tombstones restored", work))

    def customer_ids(self) -> list[str]:
        return [str(c) for c in self._one(_CUSTOMER_IDS) or []]

    def put(self, rows: list[tuple[DekRow, int]], *, kek_version: int) -> None:
        """Data keys copied from another vault (those already here are left as they are)."""
        def work(tx: neo4j.ManagedTransaction) -> None:
            tx.run(_LOCK).consume()
            tx.run(_PUT, rows=[
                {"key": _dek_key(cid, version), "cid": cid, "version": version,
                 "kek_version": kek, "wrapped": wrapped, "at": at}
                for (cid, version, kek, wrapped), at in rows]).consume()
            tx.run(_ADOPT, kek=kek_version).consume()

        self._store.run_write("key vault copy", work)

    def close(self) -> None:
        return None  # the store is its opener's to close
