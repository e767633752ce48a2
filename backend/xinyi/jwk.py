"""Ed25519 keys as JOSE sees them: public JWKs, JWKS documents and RFC 7638 thumbprints.

Shared core, not a domain: the QR-credential and audit-checkpoint keys (signing/service.py,
credentials/tokens.py) and the access-token key (auth/tokens.py) are all named by the same
thumbprint, so this lives outside any one of those domains. Pure functions: no Flask, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

__all__ = [
    "ALGORITHM",
    "SigningKey",
    "b64url_decode_canonical",
    "jwk_thumbprint",
    "jwks",
    "keys_from_jwks",
    "public_key_from_jwk",
]

ALGORITHM: Final = "EdDSA"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode_canonical(segment: str) -> bytes:
    """Decode unpadded base64url, refusing any other spelling of the same bytes."""
    if len(segment) % 4 == 1:
        raise ValueError("bad base64url length")
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if _b64url(raw) != segment:
        raise ValueError("non-canonical base64url")
    return raw


def _public_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def jwk_thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint: base64url(SHA-256) of the canonical ``{"crv","kty","x"}`` JSON."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_public_raw(public_key))},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


@dataclass(frozen=True, eq=False)
class SigningKey:
    """An Ed25519 signing key (credentials, audit checkpoints); ``kid`` is its RFC 7638
    thumbprint."""

    private_key: Ed25519PrivateKey = field(repr=False)
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, Ed25519PrivateKey):
            raise TypeError("private_key must be an Ed25519PrivateKey")
        object.__setattr__(self, "kid", jwk_thumbprint(self.private_key.public_key()))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes_raw(cls, raw: bytes) -> SigningKey:
        """Load the 32-byte raw private key written by :meth:`private_bytes_raw`."""
        if len(raw) != 32:
            raise ValueError("an Ed25519 private key is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes_raw(self) -> bytes:
        """The 32-byte raw private key. Secret: the caller must encrypt it at rest."""
        return self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(_public_raw(self.public_key)),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }


def jwks(public_jwks: Iterable[Mapping[str, str]]) -> dict[str, list[dict[str, str]]]:
    """The ``/.well-known/jwks.json`` document for the given public JWKs."""
    return {"keys": [dict(k) for k in public_jwks]}


def public_key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    """Load an Ed25519 public JWK, checking its ``kid`` (if any) is its thumbprint."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("not an Ed25519 OKP key")
    if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
        raise ValueError("not an EdDSA signing key")
    if "d" in jwk:
        raise ValueError("a private key is not a public JWK")
    x = jwk.get("x")
    if not isinstance(x, str):
        raise ValueError("missing x")
    raw = b64url_decode_canonical(x)
    if len(raw) != 32:
        raise ValueError("x is not 32 bytes")
    key = Ed25519PublicKey.from_public_bytes(raw)
    kid = jwk.get("kid")
    if kid is not None and kid != jwk_thumbprint(key):
        raise ValueError("kid is not the RFC 7638 thumbprint of the key")
    return key


def keys_from_jwks(document: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """``{kid: key}`` from a JWKS document, keyed by the thumbprint; other key types skipped."""
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in document.get("keys", []):
        if isinstance(entry, Mapping) and entry.get("kty") == "OKP":
            key = public_key_from_jwk(entry)
            keys[jwk_thumbprint(key)] = key
    return keys
