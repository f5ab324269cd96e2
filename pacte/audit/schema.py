"""The trail's SQLite file: its tables, its schema version, and the upgrade from 3.

The file holds the entries, the subject index (`pacte.audit.index`), the signed
checkpoints and the meta rows; `verify` checks that the file defines nothing else and
defines these exactly so (the columns time, principal and purpose are computed from
the hashed body by their definition).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pacte.audit.index import HEAD_KEY, INDEX_GENESIS, expected_head, read_head
from pacte.audit.wal import BACKSTOP_PAGES
from pacte.errors import CorruptStore

__all__ = ["SCHEMA_VERSION", "prepare_file", "schema_objects"]

# 3: checkpoints chained (prev) and the subject map signed (index_checkpoints); every
# meta row derived from the entries, so that verify can check it.
# 4: the subject index chained and its head signed by every checkpoint (index_head;
# see pacte.audit.index). A version 3 file is upgraded when opened for writing.
SCHEMA_VERSION = "4"
_APPLICATION_ID = 0x70617564  # "paud": marks the file as an audit trail

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq        INTEGER PRIMARY KEY,
    body       BLOB NOT NULL,
    entry_hash BLOB NOT NULL,
    time       TEXT GENERATED ALWAYS AS (json_extract(CAST(body AS TEXT), '$.time')) VIRTUAL,
    principal  TEXT GENERATED ALWAYS AS (CASE json_type(CAST(body AS TEXT), '$.principal')
               WHEN 'text' THEN json_extract(CAST(body AS TEXT), '$.principal') END) VIRTUAL,
    purpose    TEXT GENERATED ALWAYS AS (CASE json_type(CAST(body AS TEXT), '$.purpose')
               WHEN 'text' THEN json_extract(CAST(body AS TEXT), '$.purpose') END) VIRTUAL
);
CREATE TABLE IF NOT EXISTS subject_blocks (
    block   INTEGER NOT NULL,
    subject TEXT NOT NULL,
    seqs    TEXT NOT NULL,
    PRIMARY KEY (block, subject)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    size       INTEGER PRIMARY KEY,
    root       BLOB NOT NULL,
    head       BLOB NOT NULL,
    time       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    public_key BLOB NOT NULL,
    signature  BLOB NOT NULL,
    frontier   BLOB NOT NULL,
    prev       INTEGER
, index_head BLOB);
CREATE TABLE IF NOT EXISTS index_checkpoints (
    size       INTEGER PRIMARY KEY,
    root       BLOB NOT NULL,
    head       BLOB NOT NULL,
    time       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    public_key BLOB NOT NULL,
    signature  BLOB NOT NULL,
    index_root BLOB NOT NULL,
    subjects   INTEGER NOT NULL,
    prev       INTEGER
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""
_GET_META = "SELECT value FROM meta WHERE key = ?"
_INIT_META = "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)"
_SET_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"


def schema_objects() -> dict[tuple[str, str], str | None]:
    """What sqlite_master of every trail holds: (type, name) -> its CREATE statement."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        rows = db.execute("SELECT type, name, sql FROM sqlite_master")
        return {(t, n): sql for t, n, sql in rows}
    finally:
        db.close()


def prepare_file(db: sqlite3.Connection, path: Path, *, read_only: bool,
                  check_version: bool = True) -> None:
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    fresh = app_id != _APPLICATION_ID
    if fresh and (tables or read_only):
        raise CorruptStore(f"{path} is not a pacte audit trail")
    if not read_only:
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives application crashes; the graph store makes the
        # same choice, so an entry is exactly as durable as the write it records.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    if fresh:
        # Idempotent DDL: another process creating the same file at once is harmless.
        db.executescript("BEGIN IMMEDIATE;" + _SCHEMA
                         + f"PRAGMA application_id={_APPLICATION_ID}; COMMIT;")
        db.execute(_INIT_META, ("schema_version", SCHEMA_VERSION))
        return
    version = db.execute(_GET_META, ("schema_version",)).fetchone()
    found = "none" if version is None else version[0]
    if found == _UPGRADABLE and _is_version_3(db):
        if read_only:
            raise CorruptStore(f"{path} has audit schema version 3: open it once for writing "
                               "with this pacte (any command that records, such as `pacte "
                               "audit checkpoint`), which upgrades it, then verify it")
        _upgrade_from_3(db)
    elif check_version and found != SCHEMA_VERSION:
        raise CorruptStore(f"{path} has audit schema version {found}; this pacte reads "
                           f"version {SCHEMA_VERSION} (a trail from a pre-release build "
                           "cannot be read: move it aside and keep it as it is)")


_UPGRADABLE = "3"


def _is_version_3(db: sqlite3.Connection) -> bool:
    """A version 3 file: its checkpoints have no index_head yet (one that has, with a
    version row saying 3, is a version 4 file tampered with: verify names it)."""
    columns = [row[1] for row in db.execute("PRAGMA table_info(checkpoints)")]
    return "index_head" not in columns


def _upgrade_from_3(db: sqlite3.Connection) -> None:
    """Version 3 to 4: the checkpoints' index_head column, and the index chain's head.

    The head is made from the entries, not from the index rows (the slow way, once):
    checkpoints signed from now on vouch for the rows the entries make, so index rows
    changed before the upgrade are still found by verify. Checkpoints signed before it
    sign no head; verify recomputes the blocks only they cover.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        if _is_version_3(db):  # another process may have upgraded it meanwhile
            db.execute("ALTER TABLE checkpoints ADD COLUMN index_head BLOB")
            indexed, _ = read_head(db)
            if indexed:
                head = expected_head(db, 0, indexed, INDEX_GENESIS)
                db.execute(_SET_META, (HEAD_KEY, head.hex()))
            db.execute(_SET_META, ("schema_version", SCHEMA_VERSION))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
