"""Test support: an Ed25519 signing key, its JWKS, and a token factory built on PyJWT."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
ISSUER = "https://xinyi.example.cn"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def rfc7638_thumbprint(x: str) -> str:
    """RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace."""
    canonical = '{"crv":"Ed25519","kty":"OKP","x":"' + x + '"}'
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


@dataclass
class Signer:
    private_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def public_raw(self) -> bytes:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def x(self) -> str:
        return b64url(self.public_raw)

    @property
    def kid(self) -> str:
        return rfc7638_thumbprint(self.x)

    @property
    def jwk(self) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "use": "sig",
                "alg": "EdDSA"}  # fmt: skip

    def claims(self, **overrides: Any) -> dict[str, Any]:
        iat = int(NOW.timestamp()) - 10
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": secrets.token_urlsafe(16),
            "jti": secrets.token_urlsafe(16),
            "iat": iat,
            "exp": iat + 120,
            "tier": "AA",
            "ben": ["library.deposit_free", "bike.deposit_free"],
        }
        claims.update(overrides)
        return claims

    def token(
        self,
        *,
        drop: Iterable[str] = (),
        headers: dict[str, Any] | None = None,
        prefix: str = "XY1:",
        **overrides: Any,
    ) -> str:
        claims = self.claims(**overrides)
        for name in drop:
            del claims[name]
        header = {"kid": self.kid, "typ": "xy-cred+jwt"}
        header.update(headers or {})
        return prefix + jwt.encode(claims, self.private_key, algorithm="EdDSA", headers=header)


def sign_raw(signer: Signer, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A properly Ed25519-signed payload with any header and claims, bypassing PyJWT's checks."""
    unsigned = forge(header, claims, b"").removeprefix("XY1:").rstrip(".")
    signature = signer.private_key.sign(unsigned.encode("ascii"))
    return f"XY1:{unsigned}.{b64url(signature)}"


def jwks_of(*signers: Signer) -> dict[str, list[dict[str, str]]]:
    return {"keys": [s.jwk for s in signers]}


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    """A compact JWS with an arbitrary header and signature (for attack tests)."""
    enc = [
        b64url(json.dumps(header, separators=(",", ":")).encode()),
        b64url(json.dumps(claims, separators=(",", ":")).encode()),
    ]
    return "XY1:" + ".".join([*enc, b64url(signature)])
