"""Checking the xinyi+ access log's transparency proofs (RFC 9162 §2.1).

The service keeps every access-log entry as a leaf of one Merkle tree and signs its head
(size, root, time) with its audit key. Keep the heads you receive (the hourly
``transparency.tree_head`` event, or ``GET /v1/transparency/tree-head``); later:

* :func:`verify_tree_head` checks a head's Ed25519 signature against the audit key's JWK;
* :func:`verify_consistency` checks ``GET /v1/transparency/consistency?from=&to=``: that the
  newer tree extends the one you kept, no entry rewritten or removed;
* :func:`verify_inclusion` checks an entry's audit path (``GET /v1/me/queries/{id}/proof``,
  which a citizen may show you) against a root; :func:`entry_leaf` computes its leaf.

Each raises :class:`ProofError` (``code``: ``inclusion_failed``, ``consistency_failed`` or
``bad_signature``) when the check fails, and returns nothing when it holds.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "ProofError",
    "TreeHead",
    "entry_leaf",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
    "verify_tree_head",
]

ProofErrorCode = Literal["inclusion_failed", "consistency_failed", "bad_signature"]


class ProofError(Exception):
    """A proof or signature that does not hold: the log is not what it claims."""

    def __init__(self, code: ProofErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """MTH over raw leaf data (RFC 9162 §2.1.1), for small trees and tests."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(root_hash(leaves[:k]), root_hash(leaves[k:]))


def entry_leaf(prev_hash_hex: str, entry: str) -> bytes:
    """The leaf hash of an access-log entry: its ``prev_hash`` bytes and canonical JSON."""
    return leaf_hash(bytes.fromhex(prev_hash_hex) + entry.encode("utf-8"))


def _hashes(values: Sequence[bytes | str]) -> list[bytes]:
    return [bytes.fromhex(v) if isinstance(v, str) else bytes(v) for v in values]


def verify_inclusion(leaf: bytes, leaf_index: int, tree_size: int,
                     audit_path: Sequence[bytes | str], root: bytes | str) -> None:
    """RFC 9162 §2.1.3.2: ``leaf`` (a leaf hash) is at ``leaf_index`` of the tree of
    ``tree_size`` leaves whose root is ``root``; hashes as bytes or hex."""
    expected = bytes.fromhex(root) if isinstance(root, str) else root
    if not 0 <= leaf_index < tree_size:
        raise ProofError("inclusion_failed", "the leaf index is outside the tree")
    fn, sn, r = leaf_index, tree_size - 1, leaf
    for p in _hashes(audit_path):
        if sn == 0:
            raise ProofError("inclusion_failed", "the audit path is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != expected:
        raise ProofError("inclusion_failed", "the audit path does not lead to the root")


def verify_consistency(old_size: int, new_size: int, old_root: bytes | str,
                       new_root: bytes | str, proof: Sequence[bytes | str]) -> None:
    """RFC 9162 §2.1.4.2: the tree of ``new_size`` leaves (``new_root``) extends the tree of
    ``old_size`` leaves (``old_root``) unchanged."""
    first = bytes.fromhex(old_root) if isinstance(old_root, str) else old_root
    second = bytes.fromhex(new_root) if isinstance(new_root, str) else new_root
    path = _hashes(proof)
    if not 0 < old_size <= new_size:
        raise ProofError("consistency_failed", "the tree sizes are out of order")
    if old_size == new_size:
        if path or first != second:
            raise ProofError("consistency_failed", "equal sizes with different roots")
        return
    if old_size & (old_size - 1) == 0:
        path.insert(0, first)
    if not path:
        raise ProofError("consistency_failed", "the proof is empty")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency_failed", "the proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != first or sr != second:
        raise ProofError("consistency_failed",
                         "the newer tree does not extend the older one: history was rewritten")


@dataclass(frozen=True)
class TreeHead:
    """A signed tree head whose signature was checked."""

    tree_size: int
    root_hash: bytes
    timestamp: int  # milliseconds since 1970-01-01 UTC
    kid: str


def _public_key(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "x" not in jwk:
        raise ProofError("bad_signature", "the audit key is not an Ed25519 JWK")
    x = str(jwk["x"])
    return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))


def verify_tree_head(head: Mapping[str, Any], public_jwk: Mapping[str, Any]) -> TreeHead:
    """Check a head's Ed25519 signature (over compact JSON of ``root_hash``, ``timestamp``
    and ``tree_size``, keys sorted) with the audit key ``public_jwk``; the head it proves."""
    if public_jwk.get("kid") not in (None, head.get("kid")):
        raise ProofError("bad_signature", "the head was signed by another key")
    signed = json.dumps({"tree_size": int(head["tree_size"]), "root_hash": head["root_hash"],
                         "timestamp": int(head["timestamp"])},
                        sort_keys=True, separators=(",", ":")).encode()
    try:
        _public_key(public_jwk).verify(bytes.fromhex(head["signature"]), signed)
    except (InvalidSignature, ValueError):
        raise ProofError("bad_signature", "the tree head's signature is not valid") from None
    return TreeHead(int(head["tree_size"]), bytes.fromhex(head["root_hash"]),
                    int(head["timestamp"]), str(head["kid"]))
