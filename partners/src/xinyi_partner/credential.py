"""Offline verification of the xinyi+ QR credential (DESIGN.md §5).

The QR code holds ``XY1:`` followed by a compact JWS::

    header  {"alg": "EdDSA", "kid": <RFC 7638 thumbprint of the signing key>, "typ": "xy-cred+jwt"}
    claims  {"iss", "sub", "jti", "iat", "exp", "tier", "ben"}

``sub`` is a random pseudonym that changes with every credential; there is no personal data.
A credential lives at most 120 s (``exp - iat``). The signing keys are published at
``GET /.well-known/jwks.json``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

import jwt

from .errors import CredentialError
from .seen import SeenJtiCache

__all__ = [
    "ALGORITHM",
    "MAX_LIFETIME_SECONDS",
    "MAX_PAYLOAD_BYTES",
    "PREFIX",
    "TOKEN_TYPE",
    "VerifiedCredential",
    "verify_offline",
]

PREFIX: Final = "XY1:"
ALGORITHM: Final = "EdDSA"
TOKEN_TYPE: Final = "xy-cred+jwt"  # noqa: S105 (a JOSE media type, not a secret)
MAX_PAYLOAD_BYTES: Final = 2048
MAX_LIFETIME_SECONDS: Final = 120
REQUIRED_CLAIMS: Final = ("iss", "sub", "jti", "iat", "exp", "tier", "ben")
HEADER_PARAMS: Final = frozenset({"alg", "kid", "typ"})

_SIGNATURE_B64_LEN: Final = 86  # a 64-byte Ed25519 signature in unpadded base64url
_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class VerifiedCredential:
    """What a valid credential says. Times are timezone-aware UTC."""

    subject: str
    jti: str
    tier: str
    benefits: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    kid: str
    issuer: str


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode_canonical(segment: str) -> bytes:
    """Decode unpadded base64url; refuse every other spelling of the same bytes, so a token
    has exactly one valid text form (no malleable trailing bits)."""
    if len(segment) % 4 == 1:
        raise ValueError("bad base64url length")
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if _b64url(raw) != segment:
        raise ValueError("non-canonical base64url")
    return raw


def _thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an Ed25519 public JWK with public member ``x``."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True
    )
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


@lru_cache(maxsize=64)
def _load_key(kid: str, x: str) -> jwt.PyJWK | None:
    """The verification key for one JWKS entry, or ``None`` if the entry is unusable.
    Cached on the key material itself, so a changed JWKS can never hit a stale entry."""
    try:
        raw = _b64url_decode_canonical(x)
    except (ValueError, binascii.Error):
        return None
    if len(raw) != 32 or _thumbprint(x) != kid:
        return None
    try:
        return jwt.PyJWK({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid}, ALGORITHM)
    except jwt.PyJWTError:
        return None


def _find_key(jwks: Mapping[str, Any], kid: str) -> jwt.PyJWK:
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise CredentialError("unknown_key", "the JWKS document has no 'keys' list")
    for entry in keys:
        if not isinstance(entry, Mapping) or entry.get("kid") != kid:
            continue
        if (
            entry.get("kty") != "OKP"
            or entry.get("crv") != "Ed25519"
            or entry.get("use", "sig") != "sig"
            or entry.get("alg", ALGORITHM) not in (ALGORITHM, "Ed25519")
            or not isinstance(entry.get("x"), str)
        ):
            continue
        key = _load_key(kid, entry["x"])
        if key is not None:
            return key
    raise CredentialError("unknown_key", "no usable Ed25519 key with this kid in the JWKS")


def _numeric_date(claims: Mapping[str, Any], name: str) -> int:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise CredentialError("credential_invalid", f"claim {name!r} must be an integer")
    return value


def _text_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value:
        raise CredentialError("credential_invalid", f"claim {name!r} must be a non-empty string")
    return value


def _to_datetime(value: int) -> datetime:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise CredentialError("credential_invalid", "time claim out of range") from None


def _wrong_issuer(expected: str | None) -> CredentialError:
    # The expected issuer is this verifier's own setting, so it may be named; what the token
    # says is not repeated (nothing read from a refused credential reaches a log).
    return CredentialError(
        "credential_invalid",
        f"the credential's iss is not {expected!r}, the issuer this verifier expects; "
        "GET /.well-known/xinyi-configuration names the deployment's issuer",
        reason="issuer",
    )


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if not isinstance(now, datetime):
        raise TypeError("now must be a datetime")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _split(qr_payload: object) -> tuple[str, dict[str, Any]]:
    """Cheap structural checks before any cryptography; returns the compact JWS and its
    (still unverified) header."""
    # Size first: a str of more than 2048 characters is more than 2048 bytes, and an
    # ASCII str has as many bytes as characters, so nothing big is ever encoded or decoded.
    if not isinstance(qr_payload, str):
        raise CredentialError("credential_invalid", "the payload must be a string")
    if len(qr_payload) > MAX_PAYLOAD_BYTES:
        raise CredentialError("credential_invalid", f"payload over {MAX_PAYLOAD_BYTES} bytes")
    if not qr_payload.isascii():
        raise CredentialError("credential_invalid", "payload is not ASCII")
    if not qr_payload.startswith(PREFIX):
        raise CredentialError("credential_invalid", f"payload does not start with {PREFIX!r}")
    token = qr_payload[len(PREFIX) :]
    if _COMPACT_JWS.fullmatch(token) is None:
        raise CredentialError("credential_invalid", "not a compact JWS")
    header_segment, payload_segment, signature_segment = token.split(".")
    if len(signature_segment) != _SIGNATURE_B64_LEN:
        raise CredentialError("credential_invalid", "not an Ed25519 signature")
    try:
        header_json = _b64url_decode_canonical(header_segment)
        _b64url_decode_canonical(payload_segment)
        _b64url_decode_canonical(signature_segment)
        header = json.loads(header_json)
    except (ValueError, binascii.Error, RecursionError):
        raise CredentialError("credential_invalid", "malformed base64url or header") from None
    if not isinstance(header, dict):
        raise CredentialError("credential_invalid", "the header is not a JSON object")
    return token, header


def verify_offline(
    qr_payload: str,
    jwks: Mapping[str, Any],
    *,
    seen: SeenJtiCache | None = None,
    now: datetime | None = None,
    leeway_seconds: int = 60,
    issuer: str | None = None,
) -> VerifiedCredential:
    """Verify a scanned QR payload without calling the xinyi+ API.

    Checks, in order: size (≤ 2048 bytes, before any decoding), the ``XY1:`` prefix and JWS
    shape, the header (``alg`` EdDSA, ``typ`` xy-cred+jwt, a ``kid`` found in ``jwks``), the
    Ed25519 signature, the claims (``iss`` equal to ``issuer`` if given, lifetime ≤ 120 s), the
    time window ``[iat - leeway, exp + leeway)`` at ``now``, and — if ``seen`` is given — that
    the ``jti`` was not accepted before (it is then remembered until ``exp + leeway``).

    ``jwks`` is the parsed ``/.well-known/jwks.json`` document. Raises :class:`CredentialError`
    whose ``reason`` names the check that failed (``format``, ``unknown_key``, ``signature``,
    ``issuer``, ``expired``, ``not_yet_valid``, ``replay``); on ``code == "unknown_key"``
    refresh the JWKS (keys rotate) and retry once. :class:`OfflineVerifier` does all of that.
    """
    if isinstance(leeway_seconds, bool) or not isinstance(leeway_seconds, int):
        raise TypeError("leeway_seconds must be an int")
    if leeway_seconds < 0:
        raise ValueError("leeway_seconds must not be negative")
    now_utc = _aware(now)

    # The unverified header is only used to choose the key; the algorithm is pinned below.
    token, header = _split(qr_payload)
    if set(header) != HEADER_PARAMS:
        raise CredentialError("credential_invalid", "unexpected header parameters")
    if header["alg"] != ALGORITHM:
        raise CredentialError("credential_invalid", "algorithm is not EdDSA")
    if header["typ"] != TOKEN_TYPE:
        raise CredentialError("credential_invalid", f"typ is not {TOKEN_TYPE!r}")
    kid = header["kid"]
    if not isinstance(kid, str) or not kid:
        raise CredentialError("credential_invalid", "kid must be a non-empty string")
    key = _find_key(jwks, kid)

    # Signature, required claims and issuer. Time is checked below against `now`.
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_signature": True,
                "verify_iss": issuer is not None,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise CredentialError(
            "credential_invalid", "the signature does not match the key named by kid",
            reason="signature") from None
    except jwt.MissingRequiredClaimError as exc:
        raise CredentialError("credential_invalid", f"missing claim {exc.claim!r}") from None
    except jwt.InvalidIssuerError:
        raise _wrong_issuer(issuer) from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise CredentialError("credential_invalid", "malformed token") from None

    iss = _text_claim(claims, "iss")
    if issuer is not None and iss != issuer:  # exact, whatever the PyJWT version does
        raise _wrong_issuer(issuer)
    subject = _text_claim(claims, "sub")
    jti = _text_claim(claims, "jti")
    tier = _text_claim(claims, "tier")
    ben = claims["ben"]
    if not isinstance(ben, list) or not all(isinstance(b, str) and b for b in ben):
        raise CredentialError("credential_invalid", "claim 'ben' must be a list of codes")
    iat = _numeric_date(claims, "iat")
    exp = _numeric_date(claims, "exp")
    if not 0 < exp - iat <= MAX_LIFETIME_SECONDS:
        raise CredentialError("credential_invalid", f"lifetime must be 1..{MAX_LIFETIME_SECONDS} s")
    issued_at = _to_datetime(iat)
    expires_at = _to_datetime(exp)
    not_before = _to_datetime(_numeric_date(claims, "nbf")) if "nbf" in claims else issued_at

    leeway = timedelta(seconds=leeway_seconds)
    try:
        valid_until = expires_at + leeway
        valid_from = max(issued_at, not_before) - leeway
    except OverflowError:
        raise CredentialError("credential_invalid", "time claim out of range") from None
    if now_utc >= valid_until:
        raise CredentialError("credential_expired")
    if now_utc < valid_from:
        raise CredentialError("credential_not_yet_valid")

    if seen is not None and not seen.check_and_add(jti, valid_until, now=now_utc):
        raise CredentialError("credential_used")

    return VerifiedCredential(
        subject=subject,
        jti=jti,
        tier=tier,
        benefits=tuple(ben),
        issued_at=issued_at,
        expires_at=expires_at,
        kid=kid,
        issuer=iss,
    )
