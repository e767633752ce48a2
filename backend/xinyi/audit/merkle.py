"""RFC 9162 §2.1 Merkle tree hashing, proofs over stored subtree hashes, and their checks.

The tree is stored as its *perfect* subtrees: node ``(level, index)`` is the hash of leaves
``index·2^level … (index+1)·2^level − 1``, written once every leaf under it is sealed and
never changed. Any range a proof needs, ``MTH(D[a:b])`` for the ranges RFC 9162's PATH and
SUBPROOF recurse through, is at most ``log₂ n`` such nodes, so a proof in a tree of millions
of leaves reads a few dozen rows in one query, never the leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

Range = tuple[int, int]
Node = tuple[int, int]  # (level, index)


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def path_ranges(m: int, size: int) -> list[Range]:
    """RFC 9162 §2.1.3.1 PATH(m, D[size]) as the leaf ranges whose MTH it lists, in order."""
    if not 0 <= m < size:
        raise ValueError("leaf index out of range")
    out: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if m - lo < k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(old: int, new: int) -> list[Range]:
    """RFC 9162 §2.1.4.1 PROOF(old, D[new]) as leaf ranges, in order (empty when equal)."""
    if not 0 < old <= new:
        raise ValueError("tree sizes out of range")
    if old == new:
        return []
    out: list[Range] = []
    lo, hi, m, whole = 0, new, old, True
    while True:
        n = hi - lo
        if m == n:
            if not whole:
                out.append((lo, hi))
            break
        k = _split(n)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    out.reverse()
    return out


def perfect_nodes(a: int, b: int) -> list[Node]:
    """The perfect subtrees that make up ``D[a:b]``, left to right (``a`` is aligned, as in
    every range the proofs recurse through)."""
    out: list[Node] = []
    while a < b:
        level = (b - a).bit_length() - 1
        while a % (1 << level):
            level -= 1
        out.append((level, a >> level))
        a += 1 << level
    return out


def range_hash(a: int, b: int, node: Callable[[Node], bytes]) -> bytes:
    """MTH(D[a:b]) from its perfect subtrees: RFC 9162 splits at the largest power of two, so
    the rightmost subtrees fold first."""
    parts = [node(n) for n in perfect_nodes(a, b)]
    acc = parts[-1]
    for part in reversed(parts[:-1]):
        acc = node_hash(part, acc)
    return acc


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """The root of a tree from its right-edge perfect subtrees, largest first."""
    if not frontier:
        return EMPTY_ROOT
    acc = frontier[-1]
    for part in reversed(frontier[:-1]):
        acc = node_hash(part, acc)
    return acc


def frontier_nodes(size: int) -> list[Node]:
    """The perfect subtrees of a tree of ``size`` leaves, largest first."""
    return perfect_nodes(0, size) if size else []


def append_leaves(size: int, frontier: dict[int, bytes],
                  leaves: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
    """Add ``leaves`` (leaf hashes) after ``size``; ``frontier`` maps level → hash of the
    right-edge perfect subtree at that level and is updated. Returns every new node."""
    new: list[tuple[int, int, bytes]] = []
    for leaf in leaves:
        index, level, acc = size, 0, leaf
        new.append((0, index, acc))
        while index & 1:  # a left sibling is complete: their parent is too
            acc = node_hash(frontier.pop(level), acc)
            index >>= 1
            level += 1
            new.append((level, index, acc))
        frontier[level] = acc
        size += 1
    return new


# Checking a proof (RFC 9162 §2.1.3.2, §2.1.4.2) is the partner SDK's: xinyi_partner.transparency
# verify_inclusion and verify_consistency (the tests check this module's proofs with it).
