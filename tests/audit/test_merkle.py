"""RFC 6962 hashing and RFC 9162 proofs: published vectors, reference roots, adversarial proofs."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacte.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleTree,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "merkle" / "testdata"
INCLUSION = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((VECTORS / "consistency").rglob("*.json"))

# The classic test tree of RFC 6962 implementations and its published roots.
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _b(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def _proof(doc: dict[str, Any]) -> list[bytes]:
    return [_b(p) for p in doc["proof"] or []]


def test_vectors_are_present() -> None:
    assert len(INCLUSION) > 50 and len(CONSISTENCY) > 50


@pytest.mark.parametrize("path", INCLUSION, ids=lambda p: str(p.relative_to(VECTORS)))
def test_inclusion_vectors(path: Path) -> None:
    doc = json.loads(path.read_text())
    ok = verify_inclusion(_b(doc["leafHash"]), doc["leafIdx"], doc["treeSize"], _proof(doc),
                          _b(doc["root"]))
    assert ok is (not doc["wantErr"])


@pytest.mark.parametrize("path", CONSISTENCY, ids=lambda p: str(p.relative_to(VECTORS)))
def test_consistency_vectors(path: Path) -> None:
    doc = json.loads(path.read_text())
    ok = verify_consistency(doc["size1"], doc["size2"], _b(doc["root1"]), _b(doc["root2"]),
                            _proof(doc))
    assert ok is (not doc["wantErr"])


@pytest.mark.parametrize("size", range(1, 9))
def test_reference_roots(size: int) -> None:
    hashes = [leaf_hash(x) for x in LEAVES[:size]]
    assert root_of(hashes).hex() == ROOTS[size - 1]
    assert MerkleTree(hashes).root.hex() == ROOTS[size - 1]
    cr = CompactRange()
    for h in hashes:
        cr.append(h)
    assert cr.root().hex() == ROOTS[size - 1]


def test_empty_tree() -> None:
    assert root_of([]) == EMPTY_ROOT == MerkleTree([]).root == CompactRange().root()
    assert EMPTY_ROOT.hex().startswith("e3b0c442")


def _hashes(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@pytest.mark.parametrize("n", [*range(1, 34), 64, 65, 100])
def test_every_proof_of_small_trees_verifies(n: int) -> None:
    hashes = _hashes(n)
    tree = MerkleTree(hashes)
    for i in range(n):
        assert verify_inclusion(hashes[i], i, n, tree.inclusion_proof(i), tree.root)
    for m in range(1, n + 1):
        old = root_of(hashes[:m])
        assert verify_consistency(m, n, old, tree.root, tree.consistency_proof(m))


def test_adversarial_inclusion_proofs() -> None:
    hashes = _hashes(13)
    tree = MerkleTree(hashes)
    proof = tree.inclusion_proof(6)
    leaf, root = hashes[6], tree.root
    assert verify_inclusion(leaf, 6, 13, proof, root)
    # Wrong sizes (that change the shape of the path; sizes that do not are
    # indistinguishable by design of RFC 9162, the root binds the size).
    assert not verify_inclusion(leaf, 6, 7, proof, root)
    assert not verify_inclusion(leaf, 6, 32, proof, root)
    assert not verify_inclusion(leaf, 7, 13, proof, root)          # wrong index
    assert not verify_inclusion(leaf, 6, 13, proof[:-1], root)     # truncated
    assert not verify_inclusion(leaf, 6, 13, [*proof, proof[0]], root)  # a hash too many
    assert not verify_inclusion(leaf, 6, 13, [proof[0], *proof], root)
    assert not verify_inclusion(leaf, 6, 13, [proof[0] + b"\0", *proof[1:]], root)  # extra bytes
    assert not verify_inclusion(leaf, 6, 13, [proof[0][:-1], *proof[1:]], root)
    assert not verify_inclusion(leaf + b"\0", 6, 13, proof, root)
    assert not verify_inclusion(leaf, -1, 13, proof, root)
    assert not verify_inclusion(leaf, 13, 13, proof, root)
    assert not verify_inclusion(leaf, 6, 13, proof, hashes[0])     # wrong root


def test_adversarial_consistency_proofs() -> None:
    hashes = _hashes(21)
    tree = MerkleTree(hashes)
    old = root_of(hashes[:7])
    proof = tree.consistency_proof(7)
    assert verify_consistency(7, 21, old, tree.root, proof)
    assert not verify_consistency(7, 40, old, tree.root, proof)   # wrong sizes
    assert not verify_consistency(7, 9, old, tree.root, proof)
    assert not verify_consistency(8, 21, old, tree.root, proof)
    assert not verify_consistency(7, 21, old, tree.root, proof[:-1])
    assert not verify_consistency(7, 21, old, tree.root, [*proof, proof[-1]])
    assert not verify_consistency(7, 21, old, tree.root, [proof[0] + b"x", *proof[1:]])
    assert not verify_consistency(7, 21, tree.root, old, proof)     # swapped roots
    assert not verify_consistency(0, 21, EMPTY_ROOT, tree.root, [])  # proves nothing
    assert not verify_consistency(21, 7, tree.root, old, proof)
    assert not verify_consistency(7, 21, old, tree.root, [])


def test_proof_requests_out_of_range_are_refused() -> None:
    tree = MerkleTree(_hashes(5))
    with pytest.raises(ValueError):
        tree.inclusion_proof(5)
    with pytest.raises(ValueError):
        tree.consistency_proof(0)
    with pytest.raises(ValueError):
        tree.consistency_proof(6)
    with pytest.raises(ValueError):
        CompactRange(3, [b"x" * 32])


@given(st.lists(st.integers(min_value=1, max_value=70), min_size=1, max_size=6))
def test_compact_range_extend_in_any_chunks_matches_the_tree(chunks: list[int]) -> None:
    hashes = _hashes(sum(chunks))
    cr = CompactRange()
    done = 0
    for c in chunks:
        cr.extend(hashes[done:done + c])
        done += c
        assert cr.size == done
        assert cr.root() == root_of(hashes[:done])
    resumed = CompactRange(cr.size, cr.hashes)
    resumed.append(leaf_hash(b"next"))
    assert resumed.root() == root_of([*hashes, leaf_hash(b"next")])
