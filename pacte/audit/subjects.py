"""The subject map: a Merkle tree that commits to every subject's complete list of uses.

An access report lists the entries naming one subject, each with its inclusion proof;
that proves each listed use is on the record, not that none was left out. The subject
map closes that gap. For every subject named in the first `size` entries it holds one
leaf,

    key    = SHA-256(subject, UTF-8)
    digest = SHA-256(the subject's seqs, ascending, in decimal, joined by ",")
    leaf   = RFC 6962 leaf hash of key || digest      (64 bytes of leaf data)

and the leaves are sorted by key into an RFC 6962 tree whose root (and leaf count) a
checkpoint signs. A report for subject s then proves completeness with either

    present: the index of s's leaf and its inclusion proof; the checker recomputes the
             digest from the seqs the report lists, so one left out changes it;
    absent:  the leaves just before and after where s's key would stand (adjacent
             indices, keys on either side of s's), each with its inclusion proof.

Keys are hashes, so the neighbours shown for an absent subject say nothing about who
they are. `verify` recomputes the map at every checkpoint that signs one.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from pacte.audit.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, verify_inclusion

__all__ = ["SubjectMap", "check_completeness", "seqs_digest", "seqs_text", "subject_key"]


def subject_key(subject: str) -> bytes:
    return hashlib.sha256(subject.encode("utf-8")).digest()


def seqs_digest(seqs: Sequence[int]) -> bytes:
    return hashlib.sha256(seqs_text(seqs).encode("ascii")).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def seqs_text(seqs: Sequence[int]) -> str:
    """The form the digest is taken of: "3,17,42"."""
    return ",".join(map(str, seqs))


class SubjectMap:
    """The map over {subject: its seqs as `seqs_text`, ascending}; empty texts are left out."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        sha = hashlib.sha256
        leaves = sorted((subject_key(subject), sha(text.encode("ascii")).digest())
                        for subject, text in texts.items() if text)
        self._keys = [k for k, _ in leaves]
        self._leaves = leaves
        self._tree = MerkleTree([leaf_hash(k + d) for k, d in leaves]) if leaves else None

    @property
    def size(self) -> int:
        return len(self._leaves)

    @property
    def root(self) -> bytes:
        return EMPTY_ROOT if self._tree is None else self._tree.root

    def _neighbour(self, i: int) -> dict[str, Any]:
        assert self._tree is not None
        key, digest = self._leaves[i]
        return {"index": i, "key": _b64(key), "digest": _b64(digest),
                "proof": [_b64(h) for h in self._tree.inclusion_proof(i)]}

    def proof(self, subject: str) -> dict[str, Any]:
        """What a report carries to prove it lists every use of `subject`."""
        key = subject_key(subject)
        i = bisect.bisect_left(self._keys, key)
        if i < self.size and self._keys[i] == key:
            assert self._tree is not None
            return {"present": True, "index": i,
                    "proof": [_b64(h) for h in self._tree.inclusion_proof(i)]}
        return {"present": False,
                "left": self._neighbour(i - 1) if i > 0 else None,
                "right": self._neighbour(i) if i < self.size else None}


def _hashes(items: object) -> list[bytes]:
    if not isinstance(items, list):
        raise ValueError("a proof must be a list of base64 hashes")
    return [base64.b64decode(h, validate=True) for h in items]


def check_completeness(subject: str, seqs: Sequence[int], *, index_root: bytes,
                       subjects: int, proof: Mapping[str, Any]) -> str | None:
    """None when `proof` shows that `seqs` are all the uses of `subject` in the map with
    this root and leaf count; otherwise what is wrong, in a few words."""
    key = subject_key(subject)
    try:
        if proof.get("present") is True:
            return _present(key, seqs, index_root=index_root, subjects=subjects, proof=proof)
        if proof.get("present") is not False:
            return "the completeness proof says neither present nor absent"
        if seqs:
            return "the report lists uses of a subject the signed map does not hold"
        return _absent(key, index_root=index_root, subjects=subjects, proof=proof)
    except (KeyError, TypeError, ValueError, binascii.Error):
        return "the completeness proof is malformed"


def _present(key: bytes, seqs: Sequence[int], *, index_root: bytes, subjects: int,
             proof: Mapping[str, Any]) -> str | None:
    """A presence proof: the subject's leaf holds exactly these uses."""
    if not seqs:
        return "the subject is in the map but the report lists no use"
    index = proof["index"]
    leaf = leaf_hash(key + seqs_digest(seqs))
    if not isinstance(index, int) or not verify_inclusion(
            leaf, index, subjects, _hashes(proof["proof"]), index_root):
        return "the listed uses are not the subject's uses in the signed map"
    return None


def _absent(key: bytes, *, index_root: bytes, subjects: int, proof: Mapping[str, Any]
            ) -> str | None:
    """An absence proof: the signed neighbours on either side of the subject's place."""
    left, right = proof.get("left"), proof.get("right")
    sides = [side for side in (left, right) if side is not None]
    found = [n for side in sides
             if (n := _neighbour(side, index_root=index_root, subjects=subjects))]
    if len(found) < len(sides):
        return "a neighbour in the absence proof is not in the signed map"
    if left is None and right is None:
        return None if subjects == 0 and index_root == EMPTY_ROOT \
            else "an absence proof without neighbours, for a map that is not empty"
    lo = found[0] if left is not None else None
    hi = found[-1] if right is not None else None
    return None if _encloses(key, lo, hi, subjects=subjects) \
        else "the neighbours do not enclose the subject's place in the map"


def _encloses(key: bytes, lo: tuple[int, bytes] | None, hi: tuple[int, bytes] | None, *,
              subjects: int) -> bool:
    """Whether the neighbours are next to each other (or at an end) around `key`."""
    if lo is not None and hi is not None:
        return hi[0] == lo[0] + 1 and lo[1] < key < hi[1]
    if lo is not None:
        return lo[0] == subjects - 1 and lo[1] < key
    return hi is not None and hi[0] == 0 and key < hi[1]


def _neighbour(side: Mapping[str, Any], *, index_root: bytes, subjects: int
               ) -> tuple[int, bytes] | None:
    """A neighbour's index and key, or None when it is not in the signed map."""
    k = base64.b64decode(side["key"], validate=True)
    d = base64.b64decode(side["digest"], validate=True)
    index = side["index"]
    if not isinstance(index, int) or len(k) != 32 or not verify_inclusion(
            leaf_hash(k + d), index, subjects, _hashes(side["proof"]), index_root):
        return None
    return index, k
