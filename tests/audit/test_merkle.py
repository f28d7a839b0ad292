"""RFC 6962 Merkle tree: known roots, proofs that verify, and proofs that a flipped byte breaks."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_processor.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from stream_processor.audit.tree import StoredTree

pytestmark = pytest.mark.unit

# The leaves and roots of the RFC 6962 test vectors used by Certificate Transparency.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_hashes_are_domain_separated_by_hand() -> None:
    a, b, c = b"a", b"b", b"c"
    la, lb, lc = _h(b"\x00a"), _h(b"\x00b"), _h(b"\x00c")
    assert leaf_hash(a) == la and leaf_hash(b) == lb and leaf_hash(c) == lc
    ab = _h(b"\x01" + la + lb)
    assert MemoryTree([la, lb]).root() == ab
    # Three leaves: the left subtree is the largest power of two (2), c stands alone.
    assert MemoryTree([la, lb, lc]).root() == _h(b"\x01" + ab + lc)
    assert MemoryTree().root() == EMPTY_ROOT == _h(b"")
    # Proofs by hand: leaf c in the tree of 3 needs only ab; a needs b then c.
    tree = MemoryTree([la, lb, lc])
    assert inclusion_proof(tree, 2, 3) == [ab]
    assert inclusion_proof(tree, 0, 3) == [lb, lc]
    # From 2 to 3: the old root is a power-of-two subtree, so the proof is just c.
    assert consistency_proof(tree, 2, 3) == [lc]
    assert consistency_proof(tree, 1, 3) == [lb, lc]


def test_certificate_transparency_vectors() -> None:
    tree = MemoryTree([leaf_hash(x) for x in CT_LEAVES])
    assert [tree.root(n).hex() for n in range(1, 9)] == CT_ROOTS
    # The vectors' path for leaf 0 in the tree of 8.
    path = [p.hex() for p in inclusion_proof(tree, 0, 8)]
    assert path == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    cons = [p.hex() for p in consistency_proof(tree, 6, 8)]
    assert cons == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(f"entry {i}".encode()) for i in range(n)]


def _flip(proof: list[bytes], which: int, bit: int) -> list[bytes]:
    out = list(proof)
    b = bytearray(out[which])
    b[bit // 8] ^= 1 << (bit % 8)
    out[which] = bytes(b)
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 130), st.data())
def test_every_inclusion_proof_verifies_and_a_flip_fails(size: int, data: st.DataObject) -> None:
    tree = MemoryTree(_leaves(size))
    root = tree.root()
    bigger = MemoryTree(_leaves(size + 1)).root()
    for index in range(size):
        proof = inclusion_proof(tree, index, size)
        assert verify_inclusion(tree.leaves[index], index, size, proof, root)
        assert not verify_inclusion(tree.leaves[index], index, size, proof, bigger)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(tree, index, size)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        assert not verify_inclusion(tree.leaves[index], index, size, _flip(proof, which, bit), root)
    bit = data.draw(st.integers(0, 255))
    assert not verify_inclusion(_flip([tree.leaves[index]], 0, bit)[0], index, size, proof, root)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 200), st.data())
def test_every_consistency_proof_verifies_and_a_flip_fails(new: int, data: st.DataObject) -> None:
    tree = MemoryTree(_leaves(new))
    old = data.draw(st.integers(0, new))
    proof = consistency_proof(tree, old, new)
    assert verify_consistency(old, new, tree.root(old), tree.root(new), proof)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = _flip(proof, which, bit)
        assert not verify_consistency(old, new, tree.root(old), tree.root(new), bad)
        assert not verify_consistency(old, new, tree.root(old), tree.root(new), proof[:-1])
    if 0 < old:
        other = MemoryTree([*_leaves(old - 1), leaf_hash(b"rewritten"), *tree.leaves[old:]])
        # A rewritten leaf inside the old tree: no proof joins the two roots.
        assert not verify_consistency(old, new, tree.root(old), other.root(new), proof)


def test_every_pair_of_sizes_is_consistent_up_to_40() -> None:
    tree = MemoryTree(_leaves(40))
    for new in range(0, 41):
        for old in range(0, new + 1):
            proof = consistency_proof(tree, old, new)
            assert verify_consistency(old, new, tree.root(old), tree.root(new), proof), (old, new)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 70), min_size=1, max_size=6))
def test_stored_tree_equals_memory_tree_across_syncs(chunks: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _stored_equals_memory(Path(tmp), chunks)


def _stored_equals_memory(base: Path, chunks: list[int]) -> None:
    log = base / "log.jsonl"
    stored = StoredTree(base / "tree", log)
    lines: list[bytes] = []
    frontier = Frontier()
    with open(log, "ab") as fh:
        for n in chunks:
            for _ in range(n):
                line = f'{{"seq":{len(lines)}}}'.encode()
                lines.append(line)
                frontier.add(leaf_hash(line))
                fh.write(line + b"\n")
            fh.write(b'{"torn":')  # a partial line is not a leaf
            fh.flush()
            assert stored.sync() == len(lines)
            fh.truncate(fh.tell() - len(b'{"torn":'))
            fh.seek(0, 2)
    mem = MemoryTree([leaf_hash(x) for x in lines])
    size = len(lines)
    assert stored.root(size) == mem.root() == frontier.root()
    for index in range(0, size, max(1, size // 7)):
        assert stored.inclusion(index, size) == inclusion_proof(mem, index, size)
        assert stored.line(index) == lines[index]
    for old in range(0, size + 1, max(1, size // 5)):
        assert stored.consistency(old, size) == consistency_proof(mem, old, size)


def test_stored_tree_repairs_a_crash_between_writes(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(f"line {i}\n".encode() for i in range(5)))
    stored = StoredTree(tmp_path / "tree", log)
    stored.sync()
    # A crash after the level files grew but before the position was recorded.
    with open(tmp_path / "tree" / "level-00.bin", "ab") as fh:
        fh.write(b"\xff" * 64)
    with open(log, "ab") as fh:
        fh.write(b"line 5\nline 6\n")
    assert stored.sync() == 7
    expect = MemoryTree([leaf_hash(f"line {i}".encode()) for i in range(7)])
    assert stored.root(7) == expect.root()


def test_node_hash_is_not_leaf_hash() -> None:
    left, right = leaf_hash(b"x"), leaf_hash(b"y")
    assert node_hash(left, right) != leaf_hash(left + right)
