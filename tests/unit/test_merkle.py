"""The service's Merkle tree (stored perfect subtrees, proofs built from them) against the
certificate-transparency project's published vectors and a plain RFC 9162 MTH."""

from __future__ import annotations

import hashlib

import pytest

from tests.proofs import consistency_ok, inclusion_ok
from xinyi.audit import merkle

LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
          bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
ROOT_8 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
PATH_5_OF_8 = ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
               "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
               "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]
CONSISTENCY_6_TO_8 = ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]


def _mth(data: list[bytes]) -> bytes:
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return merkle.leaf_hash(data[0])
    k = 1 << ((len(data) - 1).bit_length() - 1)
    return merkle.node_hash(_mth(data[:k]), _mth(data[k:]))


def _stored(data: list[bytes], batches: int = 3) -> tuple[dict[tuple[int, int], bytes],
                                                           dict[int, bytes]]:
    """Append in a few batches, as the sealer does, keeping every node it writes."""
    nodes: dict[tuple[int, int], bytes] = {}
    frontier: dict[int, bytes] = {}
    step = max(1, len(data) // batches)
    for start in range(0, len(data), step):
        for level, index, digest in merkle.append_leaves(
                start, frontier, [merkle.leaf_hash(x) for x in data[start:start + step]]):
            assert (level, index) not in nodes  # every node is written once
            nodes[(level, index)] = digest
    return nodes, frontier


def test_the_published_vectors_come_out_of_the_stored_tree() -> None:
    nodes, frontier = _stored(LEAVES)
    assert merkle.frontier_root([frontier[lv] for lv in sorted(frontier, reverse=True)]
                                ).hex() == ROOT_8
    path = [merkle.range_hash(a, b, nodes.__getitem__) for a, b in merkle.path_ranges(5, 8)]
    assert [h.hex() for h in path] == PATH_5_OF_8
    proof = [merkle.range_hash(a, b, nodes.__getitem__)
             for a, b in merkle.consistency_ranges(6, 8)]
    assert [h.hex() for h in proof] == CONSISTENCY_6_TO_8


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 13, 33, 64, 100])
def test_every_proof_of_a_tree_verifies_and_reads_few_nodes(size: int) -> None:
    data = [i.to_bytes(4, "big") for i in range(size)]
    nodes, _ = _stored(data)
    root = _mth(data)
    wanted = merkle.frontier_nodes(size)
    assert merkle.frontier_root([nodes[n] for n in wanted]) == root
    for m in range(size):
        ranges = merkle.path_ranges(m, size)
        read = {n for a, b in ranges for n in merkle.perfect_nodes(a, b)}
        assert len(read) <= 2 * size.bit_length()  # never every leaf
        path = [merkle.range_hash(a, b, nodes.__getitem__) for a, b in ranges]
        assert inclusion_ok(merkle.leaf_hash(data[m]), m, size, path, root)
        assert not inclusion_ok(merkle.leaf_hash(b"x"), m, size, path, root)
    for old in range(1, size + 1):
        proof = [merkle.range_hash(a, b, nodes.__getitem__)
                 for a, b in merkle.consistency_ranges(old, size)]
        assert consistency_ok(old, size, _mth(data[:old]), root, proof)
        if old < size:
            assert not consistency_ok(old, size, _mth(data[1:old + 1]), root, proof)
