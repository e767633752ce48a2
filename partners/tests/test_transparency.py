"""The SDK's RFC 9162 checks against the certificate-transparency project's published test
vectors (the 8-leaf tree of RFC 6962's tests), and signed tree heads."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from xinyi_partner.transparency import (
    ProofError,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
    verify_tree_head,
)

LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
          bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
# The roots of the trees of the first 1…8 leaves, as the CT project publishes them.
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
# (leaf index, tree size, audit path) and (old size, new size, proof), published with them.
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


def _flip(hex_hash: str) -> str:
    return ("0" if hex_hash[0] != "0" else "1") + hex_hash[1:]


@pytest.mark.parametrize("n", range(1, 9))
def test_roots_match_the_published_ones(n: int) -> None:
    assert root_hash(LEAVES[:n]).hex() == ROOTS[n - 1]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_published_inclusion_proofs_verify_and_altered_ones_do_not(
        index: int, size: int, path: list[str]) -> None:
    leaf = leaf_hash(LEAVES[index])
    verify_inclusion(leaf, index, size, path, ROOTS[size - 1])
    for bad in ([_flip(path[0]), *path[1:]], path[:-1], [*path, path[0]]):
        with pytest.raises(ProofError) as err:
            verify_inclusion(leaf, index, size, bad, ROOTS[size - 1])
        assert err.value.code == "inclusion_failed"
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(b"\xff"), index, size, path, ROOTS[size - 1])
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index + 1 if index + 1 < size else index - 1, size, path,
                         ROOTS[size - 1])
    with pytest.raises(ProofError):
        verify_inclusion(leaf, size, size, path, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_published_consistency_proofs_verify_and_forks_do_not(
        old: int, new: int, proof: list[str]) -> None:
    verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)
    # A fork: the same new tree claimed to extend an old root it does not contain.
    with pytest.raises(ProofError) as err:
        verify_consistency(old, new, _flip(ROOTS[old - 1]), ROOTS[new - 1], proof)
    assert err.value.code == "consistency_failed"
    if proof:
        with pytest.raises(ProofError):
            verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1],
                               [*proof[:-1], _flip(proof[-1])])
        with pytest.raises(ProofError):
            verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof[:-1])


def test_every_consistency_of_the_vector_tree_holds_both_ways_it_should() -> None:
    """Not published pairwise, but each must fail against every other tree's root."""
    for old in range(1, 9):
        for new in range(old, 9):
            with pytest.raises(ProofError):
                verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], ["00" * 32])
    with pytest.raises(ProofError):
        verify_consistency(3, 2, ROOTS[2], ROOTS[1], [])


def _signed(key: Ed25519PrivateKey, size: int, root: str, ts: int) -> dict[str, object]:
    body = json.dumps({"tree_size": size, "root_hash": root, "timestamp": ts},
                      sort_keys=True, separators=(",", ":")).encode()
    return {"tree_size": size, "root_hash": root, "timestamp": ts, "kid": "k1",
            "signature": key.sign(body).hex()}


def _jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    raw = key.public_key().public_bytes_raw()
    return {"kty": "OKP", "crv": "Ed25519", "kid": "k1",
            "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}


def test_a_tree_head_signature_is_checked() -> None:
    key = Ed25519PrivateKey.generate()
    head = _signed(key, 8, ROOTS[7], 1_764_577_200_123)
    checked = verify_tree_head(head, _jwk(key))
    assert (checked.tree_size, checked.root_hash.hex()) == (8, ROOTS[7])
    for change in ({"tree_size": 7}, {"root_hash": ROOTS[6]}, {"timestamp": 1}):
        with pytest.raises(ProofError) as err:
            verify_tree_head({**head, **change}, _jwk(key))
        assert err.value.code == "bad_signature"
    with pytest.raises(ProofError):
        verify_tree_head(head, _jwk(Ed25519PrivateKey.generate()))
    with pytest.raises(ProofError):
        verify_tree_head(head, {**_jwk(key), "kid": "other"})
