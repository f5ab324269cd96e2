"""The signed checkpoints as the trail file keeps them: signing one at a size, reading back.

A plain checkpoint (`checkpoints`) signs the Merkle root and chain head of the first
`size` entries, the checkpoint before it, and the head of the subject index chain
(`pacte.audit.index`); it stores the tree's frontier beside it, so the next one
resumes from it instead of hashing the whole log. An index checkpoint
(`index_checkpoints`) signs the subject map of the same entries (`pacte.audit.subjects`)
as well: what an access report proves its completeness against. Both are written
inside the caller's write transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from pacte.audit.checkpoint import Checkpoint
from pacte.audit.index import BLOCK, read_head
from pacte.audit.merkle import HASH_SIZE, CompactRange
from pacte.audit.subjects import SubjectMap, seqs_text
from pacte.crypto.signing import SigningKey
from pacte.errors import IntegrityError

__all__ = [
    "LAST_CHECKPOINT",
    "LAST_INDEX_CHECKPOINT",
    "LEAVES",
    "checkpoint_from_row",
    "frontier_at",
    "index_checkpoint_from_row",
    "sign_checkpoint",
    "sign_index_checkpoint",
    "subject_map",
]

LEAVES = "SELECT entry_hash FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq"
LAST_CHECKPOINT = (
    "SELECT size, root, head, time, key_id, public_key, signature, prev, index_head"
    " FROM checkpoints ORDER BY size DESC LIMIT 1"
)
_CHECKPOINT_BASE = (
    "SELECT size, root, frontier FROM checkpoints WHERE size <= ? ORDER BY size DESC LIMIT 1"
)
_CHECKPOINT_AT = (
    "SELECT size, root, head, time, key_id, public_key, signature, prev, index_head"
    " FROM checkpoints WHERE size = ?"
)
_INSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (size, root, head, time, key_id, public_key, signature, frontier,"
    " prev, index_head) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INDEX_CHECKPOINT_AT = (
    "SELECT size, root, head, time, key_id, public_key, signature, index_root, subjects, prev"
    " FROM index_checkpoints WHERE size = ?"
)
LAST_INDEX_CHECKPOINT = (
    "SELECT size, root, head, time, key_id, public_key, signature, index_root, subjects, prev"
    " FROM index_checkpoints ORDER BY size DESC LIMIT 1"
)
_INSERT_INDEX_CHECKPOINT = (
    "INSERT INTO index_checkpoints (size, root, head, time, key_id, public_key, signature,"
    " index_root, subjects, prev) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_BODIES = "SELECT seq, body FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq"


def sign_checkpoint(db: sqlite3.Connection, signer: SigningKey, *, size: int, head: bytes,
                    time: str) -> Checkpoint:
    """The checkpoint of the first `size` entries (whose last hash is `head`): the one
    stored at that size, or a new one signed and stored now."""
    existing = db.execute(_CHECKPOINT_AT, (size,)).fetchone()
    if existing is not None:
        return checkpoint_from_row(existing)
    last = db.execute(LAST_CHECKPOINT).fetchone()
    frontier = frontier_at(db, size)
    # Every append indexes the blocks it completes: the index is whole at `size`.
    indexed, index_head = read_head(db)
    cp = Checkpoint.create(signer, size=size, root=frontier.root(), head=head, time=time,
                           prev=None if last is None else last[0],
                           index_head=index_head if indexed == size // BLOCK else None)
    db.execute(_INSERT_CHECKPOINT, (cp.size, cp.root, cp.head, cp.time, cp.key_id,
                                    cp.public_key, cp.signature, b"".join(frontier.hashes),
                                    cp.prev, cp.index_head))
    return cp


def sign_index_checkpoint(db: sqlite3.Connection, signer: SigningKey, *, size: int,
                          head: bytes, time: str) -> Checkpoint:
    """The same with the subject map of those entries signed too."""
    existing = db.execute(_INDEX_CHECKPOINT_AT, (size,)).fetchone()
    if existing is not None:
        return index_checkpoint_from_row(existing)
    the_map = subject_map(db, size)
    last = db.execute(LAST_INDEX_CHECKPOINT).fetchone()
    cp = Checkpoint.create(signer, size=size, root=frontier_at(db, size).root(), head=head,
                           time=time, prev=None if last is None else last[0],
                           index_root=the_map.root, subjects=the_map.size)
    db.execute(_INSERT_INDEX_CHECKPOINT,
               (cp.size, cp.root, cp.head, cp.time, cp.key_id, cp.public_key,
                cp.signature, cp.index_root, cp.subjects, cp.prev))
    return cp


def subject_map(db: sqlite3.Connection, size: int) -> SubjectMap:
    """The subject map of the first `size` entries."""
    return SubjectMap({s: seqs_text(seqs) for s, seqs in _subject_lists(db, size).items()})


def _subject_lists(db: sqlite3.Connection, size: int) -> dict[str, list[int]]:
    """Every subject's seqs below `size`, ascending, from the entries themselves.

    Not from the subject index: what is signed must not rest on a table a writer
    of the file could have changed without breaking the chain. It reads the whole
    log (about 1 s per million entries), which only index checkpoints pay.
    """
    lists: dict[str, list[int]] = {}
    loads = orjson.loads
    for start in range(0, size, 4096):
        for seq, body in db.execute(_BODIES, (start, min(size, start + 4096))):
            try:
                subjects = loads(body).get("subjects")
            except (orjson.JSONDecodeError, TypeError, AttributeError) as exc:
                raise IntegrityError(f"audit entry {seq} is unreadable") from exc
            if type(subjects) is list:
                for subject in dict.fromkeys(s for s in subjects if type(s) is str):
                    found = lists.get(subject)
                    if found is None:
                        lists[subject] = [seq]
                    else:
                        found.append(seq)
    return lists


def frontier_at(db: sqlite3.Connection, size: int) -> CompactRange:
    """The compact range at `size`, resumed from the last checkpoint's when it checks out."""
    frontier = CompactRange()
    base = db.execute(_CHECKPOINT_BASE, (size,)).fetchone()
    if base is not None:
        blob = base[2]
        hashes = [blob[i:i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
        with contextlib.suppress(ValueError):
            candidate = CompactRange(base[0], hashes)
            # A stored frontier is only a shortcut: one that does not fold to its
            # signed root is ignored and the tree is rebuilt from the leaves.
            if candidate.root() == base[1]:
                frontier = candidate
    leaves = [r[0] for r in db.execute(LEAVES, (frontier.size, size))]
    if len(leaves) != size - frontier.size:
        raise IntegrityError("the audit trail has a gap: cannot checkpoint it")
    frontier.extend(leaves)
    return frontier


def checkpoint_from_row(row: Sequence[Any]) -> Checkpoint:
    return Checkpoint(size=row[0], root=row[1], head=row[2], time=row[3], key_id=row[4],
                      public_key=row[5], signature=row[6], prev=row[7], index_head=row[8])


def index_checkpoint_from_row(row: Sequence[Any]) -> Checkpoint:
    return Checkpoint(size=row[0], root=row[1], head=row[2], time=row[3], key_id=row[4],
                      public_key=row[5], signature=row[6], index_root=row[7],
                      subjects=row[8], prev=row[9])
