"""RFC 9162 proof checks for the tests, by the partner SDK's verifier (the one partners run):
the server's proofs are checked by that separate implementation, not by its own code."""

from __future__ import annotations

from collections.abc import Sequence

from xinyi_partner.transparency import ProofError, verify_consistency, verify_inclusion


def inclusion_ok(leaf: bytes, index: int, size: int, path: Sequence[bytes | str],
                 root: bytes | str) -> bool:
    try:
        verify_inclusion(leaf, index, size, path, root)
    except ProofError:
        return False
    return True


def consistency_ok(old: int, new: int, old_root: bytes | str, new_root: bytes | str,
                   proof: Sequence[bytes | str]) -> bool:
    try:
        verify_consistency(old, new, old_root, new_root, proof)
    except ProofError:
        return False
    return True
