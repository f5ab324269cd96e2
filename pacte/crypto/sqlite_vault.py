"""A key vault's rows in the SQLite file `keys.db` (the `VaultRows` of a data directory
whose graph is in SQLite, or made before the keys could live in Neo4j).

The file is opened with `secure_delete` and rewritten (VACUUM, truncating checkpoint)
after a destruction, so that a destroyed key lingers in no page of it (docs/erasure.md).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pacte.crypto.vault_rows import FORMAT, NOT_RECREATED, REWRAP_BATCH, DekRow, VaultMeta
from pacte.errors import KeyVaultError

__all__ = ["SQLiteVaultRows"]

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

    concurrent_state = False  # one PRAGMA on the vault's connection

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
        with _immediate(conn):
            # Re-read under the write lock: another process may have just created some.
            existing = _rows(conn.execute(_SELECT_MANY, (json.dumps(customer_ids),)))
            if conn.execute(_TOMBSTONED_MANY, (json.dumps(refs),)).fetchone():
                raise KeyVaultError(NOT_RECREATED)
            have = {r[0] for r in existing}
            made = make([c for c in customer_ids if c not in have])
            conn.executemany(_INSERT_DEK, [(*row, at) for row, at in made])
        return existing

    def destroy(self, customer_id: str, ref: str, *, at: int, pending: bool) -> int:
        conn = self._conn
        with _immediate(conn):
            conn.execute("DELETE FROM deks WHERE customer_id = ?", (customer_id,))
            conn.execute("INSERT OR IGNORE INTO tombstones (subject_ref, destroyed_at)"
                         " VALUES (?, ?)", (ref, at))
            if pending:
                conn.execute("INSERT OR IGNORE INTO erasing (customer_id) VALUES (?)",
                             (customer_id,))
            conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'destroy_seq'")
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

    def tombstoned_among(self, refs: Sequence[str]) -> set[str]:
        return {r for r in refs if self.tombstoned(r)}  # local reads: no round trips

    def state(self) -> tuple[int, int] | None:
        # One PRAGMA when nothing changed: data_version moves when another connection
        # commits.
        version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        if version == self._data_version:
            return None
        self._data_version = version
        return self.meta_int("kek_version"), self.meta_int("destroy_seq")

    def settle(self) -> None:
        # Every process of this file learns of a change at its next request
        # (`PRAGMA data_version`): nothing to wait for.
        return None

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
        with _immediate(conn):
            conn.executemany("UPDATE meta SET value = ? WHERE name = ?", [
                (wrapped, "secret"), (secret_kek_version, "secret_kek_version"),
                (kek_version, "kek_version")])

    def rewrap(self, version: int, rewrap: Callable[[DekRow], bytes]) -> None:
        conn = self._conn
        after: tuple[str, int] = ("", 0)
        while True:
            with _immediate(conn):
                rows = _rows(conn.execute(
                    "SELECT customer_id, version, kek_version, wrapped FROM deks"
                    " WHERE (customer_id, version) > (?, ?) ORDER BY customer_id, version"
                    " LIMIT ?", (*after, REWRAP_BATCH)))
                params = [(version, rewrap(row), row[0], row[1], row[2])
                          for row in rows if row[2] != version]
                conn.executemany(
                    "UPDATE deks SET kek_version = ?, wrapped = ?"
                    " WHERE customer_id = ? AND version = ? AND kek_version = ?", params)
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

    def tombstones(self) -> set[str]:
        return {str(r[0]) for r in self._conn.execute("SELECT subject_ref FROM tombstones")}

    def add_tombstones(self, refs: list[str], *, at: int) -> int:
        conn = self._conn
        with _immediate(conn):
            conn.executemany("INSERT OR IGNORE INTO tombstones (subject_ref, destroyed_at)"
                             " VALUES (?, ?)", [(ref, at) for ref in refs])
            conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'destroy_seq'")
        return self.meta_int("destroy_seq")

    def customer_ids(self) -> list[str]:
        return [str(r[0]) for r in self._conn.execute(
            "SELECT DISTINCT customer_id FROM deks ORDER BY customer_id")]

    def page(self, after: tuple[str, int], limit: int) -> list[tuple[DekRow, int]]:
        """Data keys after (customer id, version), in that order, with creation times."""
        return [((str(r[0]), int(r[1]), int(r[2]), bytes(r[3])), int(r[4]))
                for r in self._conn.execute(
                    "SELECT customer_id, version, kek_version, wrapped, created_at FROM deks"
                    " WHERE (customer_id, version) > (?, ?) ORDER BY customer_id, version"
                    " LIMIT ?", (*after, limit))]

    def close(self) -> None:
        self._conn.close()


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, its lock taken at once (BEGIN IMMEDIATE): committed when
    the block ends, rolled back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
