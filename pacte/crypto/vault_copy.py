"""Moving a data directory's key vault (`keys.db`) into Neo4j (`pacte migrate`).

What moves is what the vault holds, as it is: the vault secret and every data key
still wrapped under the KEK, the tombstones (pseudonyms) and the erasures under way.
The KEK never moves. Every step is idempotent (a key or a tombstone already copied is
left alone), so a copy killed anywhere is finished by running it again. A Neo4j
database that already holds a vault is accepted only if it is this one (same vault
secret, by its key-check value): the keys of two installations are never mixed.

Verified at the end: the target opens under the KEK, and holds every data key and
tombstone of the source, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable

from pacte.crypto.neo4j_vault import Neo4jVaultRows
from pacte.crypto.provider import KeyProvider
from pacte.crypto.sqlite_vault import SQLiteVaultRows
from pacte.crypto.vault import KeyVault
from pacte.errors import IntegrityError, KeyVaultError
from pacte.graph.neo4j_store import Neo4jStore

__all__ = ["copy_vault"]


def copy_vault(source: SQLiteVaultRows, store: Neo4jStore, provider: KeyProvider, *,
               batch: int = 1000, progress: Callable[[str, int], object] | None = None
               ) -> int:
    """Copy `source` into the vault of `store`'s database; returns the keys copied."""
    meta = source.meta()
    if not Neo4jVaultRows.exists(store):
        Neo4jVaultRows.create(store, meta)
    target = Neo4jVaultRows(store)
    if target.meta().get("key_check") != meta.get("key_check"):
        raise KeyVaultError("the Neo4j database holds the key vault of another installation")
    kek = int(meta["kek_version"])  # type: ignore[call-overload]
    after, copied = ("", 0), 0
    while rows := source.page(after, batch):
        target.put(rows, kek_version=kek)
        copied += len(rows)
        after = (rows[-1][0][0], rows[-1][0][1])
        if progress is not None:
            progress("keys", copied)
    tombstones = sorted(source.tombstones())
    if tombstones:
        target.add_tombstones(tombstones, at=int(meta["created_at"]))  # type: ignore[call-overload]
    for customer_id in source.erasing():
        target.set_erasing(customer_id, on=True, at=int(meta["created_at"]))  # type: ignore[call-overload]
    _verify(source, target, provider, batch=batch)
    return copied


def _verify(source: SQLiteVaultRows, target: Neo4jVaultRows, provider: KeyProvider, *,
            batch: int) -> None:
    KeyVault.over(target, provider).close()  # the wrong KEK, or a damaged secret, fails
    after: tuple[str, int] = ("", 0)
    while rows := source.page(after, batch):
        ids = list(dict.fromkeys(row[0] for row, _ in rows))
        if not {row for row, _ in rows} <= set(target.load(ids)):
            raise IntegrityError("the key vault copy in Neo4j differs from keys.db")
        after = (rows[-1][0][0], rows[-1][0][1])
    if not source.tombstones() <= target.tombstones():
        raise IntegrityError("the key vault copy in Neo4j lacks tombstones of keys.db")
