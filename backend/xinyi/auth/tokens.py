"""Access tokens: EdDSA JWTs with pinned algorithm, required claims and our own ``kid``.

The signing key is separate from the QR-credential keys, so a leak of one cannot forge the other.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from xinyi.jwk import jwk_thumbprint

ACCESS_TYP = "at+jwt"
REQUIRED = ["exp", "iat", "iss", "aud", "sub", "jti", "sid", "role"]


class TokenRejected(Exception):
    """Any reason at all; callers answer the same 401 whatever it was."""


@dataclass(frozen=True)
class AccessClaims:
    account_id: uuid.UUID
    session_id: uuid.UUID
    role: str
    issued_at: datetime


class AccessTokens:
    def __init__(self, private_pem: bytes, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        key = serialization.load_pem_private_key(private_pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("XINYI_JWT_PRIVATE_KEY must be an Ed25519 private key (PKCS#8 PEM)")
        self._private = key
        self._public = key.public_key()
        self.kid = jwk_thumbprint(self._public)
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds

    def issue(self, *, account_id: uuid.UUID, session_id: uuid.UUID, role: str,
              now: datetime) -> str:
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(account_id),
            "sid": str(session_id),
            "role": role,
            "jti": secrets.token_urlsafe(12),
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self.ttl_seconds)).timestamp()),
        }
        return jwt.encode(claims, self._private, algorithm="EdDSA",
                          headers={"kid": self.kid, "typ": ACCESS_TYP})

    def verify(self, token: str, *, now: datetime) -> AccessClaims:
        if len(token) > 4096:
            raise TokenRejected("too long")
        try:
            # One parse of the token (its header comes with the verified claims): the token
            # rides on every citizen request, and each parse re-checks its base64 per byte.
            decoded = jwt.decode_complete(
                token,
                self._public,
                algorithms=["EdDSA"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": REQUIRED},
                leeway=0,
            )
            header, claims = decoded["header"], decoded["payload"]
            if header.get("kid") != self.kid or header.get("typ") != ACCESS_TYP:
                raise TokenRejected("unknown key or type")
            return AccessClaims(
                account_id=uuid.UUID(str(claims["sub"])),
                session_id=uuid.UUID(str(claims["sid"])),
                role=str(claims["role"]),
                issued_at=datetime.fromtimestamp(int(claims["iat"]), tz=now.tzinfo),
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise TokenRejected(type(exc).__name__) from None
