"""The subject index: which entries name a subject, in blocks, and the chain that signs it.

For each block of BLOCK entries, one row per subject named in it, listing the seqs
that name it:

    subject_blocks (block, subject, seqs)    seqs ascending, "3,17,42"

Keyed by block first, so indexing a block appends at the end of the index like the
entries themselves (keyed by subject, every entry would rewrite an index page
somewhere in the middle). A block is indexed in the transaction of the entry that
completes it.

The index chain. Each indexed block's rows, in key order, are hashed into a chain,

    index_head(0)     = INDEX_GENESIS
    index_head(k + 1) = SHA-256(index_head(k) || the rows of block k as BLOCK_TEXT makes them)

whose head the trail keeps in meta (`subject_blocks_head`) and every plain checkpoint
signs (`Checkpoint.index_head`, over the blocks complete at its size). The writer
hashes the rows it has just made from the entries, so a signed head says: these are
the rows the entries made. Verify then checks a signed stretch of the index by
hashing its rows in SQLite's order (about a tenth of recomputing it from the entries'
JSON), and recomputes from the entries only the blocks no checkpoint signs yet, or a
stretch whose rows no longer hash to what was signed (to name the block and the
subject). The rows are serialised by SQLite as JSON, which tells text from numbers,
refuses blobs, and keeps every character (a NUL included), so two different sets of
rows never hash alike.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping, Sequence

__all__ = [
    "BLOCK",
    "BLOCK_TEXT",
    "EXPECTED_TEXT",
    "HEAD_KEY",
    "INDEXED_KEY",
    "INDEX_GENESIS",
    "SPAN_TEXTS",
    "expected_head",
    "index_blocks",
    "next_head",
    "read_head",
]

BLOCK = 1024
INDEX_GENESIS = hashlib.sha256(b"pacte.audit.index/v1 genesis").digest()
INDEXED_KEY = "subject_blocks_indexed"
HEAD_KEY = "subject_blocks_head"

# One block's rows as one JSON text: [[subject, seqs], ...] in key order (subjects
# ascending, the order of the primary key the subquery reads).
BLOCK_TEXT = (
    "SELECT json_group_array(json_array(subject, seqs)) FROM"
    " (SELECT subject, seqs FROM subject_blocks WHERE block = ? ORDER BY subject)"
)
# The rows of a block from its entries: subjects ascending, each subject's seqs
# ascending (the ordered subquery feeds group_concat). The general way; a process that
# wrote a whole block itself inserts the same rows from what it remembers.
_INDEX_BLOCK = (
    "INSERT OR IGNORE INTO subject_blocks (block, subject, seqs)"
    " SELECT ?1, value, group_concat(seq) FROM (SELECT DISTINCT j.value AS value, e.seq AS seq"
    " FROM entries e, json_each(CAST(e.body AS TEXT), '$.subjects') j"
    " WHERE e.seq >= ?1 * ?2 AND e.seq < (?1 + 1) * ?2 AND j.type = 'text'"
    " ORDER BY j.value, e.seq) GROUP BY value ORDER BY value"
)
_PUT_BLOCK_ROW = "INSERT OR IGNORE INTO subject_blocks (block, subject, seqs) VALUES (?, ?, ?)"
# BLOCK_TEXT of every block in [?1, ?2), in one statement: (block, text) in block order.
SPAN_TEXTS = (
    "SELECT block, json_group_array(json_array(subject, seqs)) FROM"
    " (SELECT block, subject, seqs FROM subject_blocks WHERE block >= ?1 AND block < ?2"
    " ORDER BY block, subject) GROUP BY block ORDER BY block"
)
# What BLOCK_TEXT gives for a block whose rows are the ones its entries make, from the
# entries alone (a JSON parse of every body: the slow way, for when the rows are not
# to be believed).
EXPECTED_TEXT = (
    "SELECT json_group_array(json_array(v, s)) FROM (SELECT v, group_concat(seq) AS s FROM"
    " (SELECT DISTINCT j.value AS v, e.seq AS seq FROM entries e,"
    " json_each(CAST(e.body AS TEXT), '$.subjects') j"
    " WHERE e.seq >= ?1 * ?2 AND e.seq < (?1 + 1) * ?2 AND j.type = 'text' ORDER BY v, seq)"
    " GROUP BY v ORDER BY v)"
)
_HAS_ROWS = "SELECT 1 FROM subject_blocks WHERE block = ? LIMIT 1"
_GET_META = "SELECT value FROM meta WHERE key = ?"
_SET_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"


def next_head(head: bytes, text: str | None) -> bytes:
    """The chain's head after one more block, whose rows BLOCK_TEXT gave as `text`."""
    return hashlib.sha256(head + (text or "[]").encode("utf-8")).digest()


def read_head(db: sqlite3.Connection) -> tuple[int, bytes]:
    """(blocks indexed, the chain's head over them) as meta says."""
    row = db.execute(_GET_META, (INDEXED_KEY,)).fetchone()
    done = 0 if row is None else int(row[0])
    row = db.execute(_GET_META, (HEAD_KEY,)).fetchone()
    return done, INDEX_GENESIS if row is None else bytes.fromhex(row[0])


def expected_head(db: sqlite3.Connection, start: int, stop: int, head: bytes) -> bytes:
    """The chain's head after blocks [start, stop) as their entries make them, from
    `head` (the head at `start`)."""
    for block in range(start, stop):
        head = next_head(head, db.execute(EXPECTED_TEXT, (block, BLOCK)).fetchone()[0])
    return head


def index_blocks(db: sqlite3.Connection, blocks: int,
                 remembered: Mapping[int, Mapping[str, Sequence[int]]]) -> None:
    """Index the complete blocks not indexed yet, below `blocks`, and move the chain on.

    `remembered`: the rows of blocks this process wrote every entry of, by block
    (subject -> seqs); any other block is indexed from its entries.
    """
    done, head = read_head(db)
    for block in range(done, blocks):
        rows = remembered.get(block)
        if db.execute(_HAS_ROWS, (block,)).fetchone() is not None:
            # Rows for a block not indexed yet: someone wrote them who should not have.
            # They stay (verify names them); the chain takes the rows of the entries.
            db.execute(_INDEX_BLOCK, (block, BLOCK))
            head = expected_head(db, block, block + 1, head)
            continue
        if rows is None:
            db.execute(_INDEX_BLOCK, (block, BLOCK))
        else:
            # Subjects ascending, as the statement inserts them: appends in key order.
            db.executemany(_PUT_BLOCK_ROW, [(block, subject, ",".join(map(str, rows[subject])))
                                            for subject in sorted(rows)])
        # Made from the entries a moment ago, into an empty block: the rows to sign.
        head = next_head(head, db.execute(BLOCK_TEXT, (block,)).fetchone()[0])
    if blocks > done:
        db.execute(_SET_META, (INDEXED_KEY, str(blocks)))
        db.execute(_SET_META, (HEAD_KEY, head.hex()))
