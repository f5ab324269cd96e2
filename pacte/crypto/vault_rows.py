"""What a key vault keeps, and the protocol of the backends that keep it.

`KeyVault` (pacte.crypto.vault) holds the caches and the cryptography; a `VaultRows`
backend holds the rows: `SQLiteVaultRows` (keys.db, pacte.crypto.sqlite_vault) or
`Neo4jVaultRows` (pacte.crypto.neo4j_vault). Every backend holds:

- the vault's meta: the vault secret (wrapped under the KEK) and its key-check value,
  the current KEK version, and a counter bumped by every destruction;
- the data keys: one row per (customer, DEK version): the wrapped key and the KEK
  version that wrapped it;
- tombstones: one row per destroyed customer, keyed by its pseudonymous subject
  reference — no key material, no customer id;
- erasures under way: the customers destroyed whose nodes may not be deleted yet.

The KEK itself never goes in: a backup of the rows alone opens nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["DESTROYED", "FORMAT", "NOT_RECREATED", "REWRAP_BATCH", "DekRow", "VaultMeta",
           "VaultRows"]

FORMAT = b"pacte-keys/1"
DESTROYED = "this customer's data keys were destroyed"
# What `VaultRows.add` raises for a tombstoned customer.
NOT_RECREATED = f"{DESTROYED}; an erased customer cannot be re-created"
REWRAP_BATCH = 1000

# (customer id, DEK version, KEK version, wrapped key)
DekRow = tuple[str, int, int, bytes]
# name -> value: format, created_at, secret, secret_kek_version, key_check, kek_version,
# destroy_seq (bytes or int).
VaultMeta = dict[str, object]


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

    def tombstoned_among(self, refs: Sequence[str]) -> set[str]:
        """Those of `refs` that are tombstoned, in one read."""
        ...

    # Whether `state` may be called while other calls run (it is then called outside
    # the vault's lock, so that concurrent requests can share one read of it).
    concurrent_state: bool

    def state(self) -> tuple[int, int] | None:
        """(kek_version, destroy_seq), or None when surely nothing changed since the
        last call (a cheap check)."""
        ...

    def settle(self) -> None:
        """After a change of `state` returned by a call above (outside the vault's lock):
        wait until no other process may still act on the state before it."""
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

    def tombstones(self) -> set[str]:
        """Every tombstoned subject reference."""
        ...

    def add_tombstones(self, refs: list[str], *, at: int) -> int:
        """Tombstone `refs` (those not already) and bump destroy_seq, in one transaction.
        Returns the new destroy_seq."""
        ...

    def customer_ids(self) -> list[str]:
        """Every customer that has a data key."""
        ...

    def close(self) -> None: ...
