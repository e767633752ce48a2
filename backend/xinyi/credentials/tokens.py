"""Issue and verify the QR credential (DESIGN.md §5). Pure functions: no Flask, no I/O.

Wire format (a contract partners build against)::

    XY1:<compact JWS>
    header  {"alg":"EdDSA","kid":<RFC 7638 thumbprint>,"typ":"xy-cred+jwt"}   (exactly these)
    claims  {"iss","sub","jti","iat","exp","tier","ben"}                      (exactly these)

``sub`` is random per credential and never personal data; ``exp - iat`` is at most 120 s. The
whole payload must fit a version-15 QR code at error correction M (412 bytes in byte mode), so
:func:`issue` refuses issuers or benefit lists that would make it larger.

:func:`verify` is strict: it refuses anything that is not exactly what :func:`issue` produces
(non-canonical base64url, extra header parameters, extra or mistyped claims), checks the
signature with the key named by ``kid`` with the algorithm pinned to EdDSA, and only then the
time window against the caller's ``now``. Replay (``jti`` seen before) is the caller's job.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from xinyi.credentials.errors import (
    CredentialError,
    CredentialExpired,
    CredentialInvalid,
    CredentialNotYetValid,
    CredentialUnknownKey,
)
from xinyi.jwk import ALGORITHM, SigningKey, b64url_decode_canonical

__all__ = [
    "CLAIMS",
    "MAX_BATCH",
    "MAX_QR_PAYLOAD_BYTES",
    "MAX_TTL_SECONDS",
    "MAX_VERIFY_INPUT_BYTES",
    "PREFIX",
    "SHORT_CODE_DIGITS",
    "TOKEN_TYPE",
    "CredentialError",
    "CredentialExpired",
    "CredentialInvalid",
    "CredentialNotYetValid",
    "CredentialUnknownKey",
    "IssuedCredential",
    "VerifiedClaims",
    "VerifierConfiguration",
    "is_short_code",
    "issue",
    "issue_batch",
    "new_short_code",
    "normalize_short_code",
    "verify",
]

PREFIX: Final = "XY1:"
TOKEN_TYPE: Final = "xy-cred+jwt"  # noqa: S105 - a media type, not a secret
MAX_TTL_SECONDS: Final = 120
MAX_BATCH: Final = 15
SHORT_CODE_DIGITS: Final = 18
MAX_VERIFY_INPUT_BYTES: Final = 2048
# Byte-mode capacity of a version-15 QR code at error correction M.
MAX_QR_PAYLOAD_BYTES: Final = 412

HEADER_PARAMS: Final = frozenset({"alg", "kid", "typ"})
CLAIMS: Final = frozenset({"iss", "sub", "jti", "iat", "exp", "tier", "ben"})
_REQUIRED: Final = ["iss", "sub", "jti", "iat", "exp"]

# Sizes chosen so the payload fits a version-15 QR at level M with a few benefit codes:
# jti 96 bits (unique for replay guards over a 2-minute window with a wide margin), sub
# 64 bits (random per credential; the server maps it back via a unique column).
_JTI_BYTES: Final = 12
_SUB_BYTES: Final = 8
_SIGNATURE_B64_LEN: Final = 86  # 64-byte Ed25519 signature, base64url without padding
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_SHORT_CODE = re.compile(r"[0-9]{18}")
# As people type a code they read in groups: digits, one space or hyphen between groups.
_GROUPED_SHORT_CODE = re.compile(r"[0-9]+(?:[ -][0-9]+)*")
# 18 digits with a separator between every two of them: nothing longer can be a short code.
MAX_TYPED_SHORT_CODE: Final = 2 * SHORT_CODE_DIGITS - 1




@dataclass(frozen=True)
class VerifierConfiguration:
    """``ConfigurationOut``: what an offline verifier must know to check a credential
    (``GET /.well-known/xinyi-configuration``): the ``iss`` it carries and where the keys are."""

    issuer: str
    jwks_uri: str
    credential_algorithms: tuple[str, ...] = (ALGORITHM,)
    credential_prefix: str = PREFIX


# --------------------------------------------------------------------------- issuing


@dataclass(frozen=True)
class IssuedCredential:
    """One credential. ``qr_payload`` and ``short_code`` are bearer secrets: kept out of repr."""

    jti: str
    subject: str
    kid: str
    tier: str
    benefits: tuple[str, ...]
    not_before: datetime
    expires_at: datetime
    qr_payload: str = field(repr=False)
    short_code: str = field(repr=False)


@dataclass(frozen=True)
class VerifiedClaims:
    kid: str
    issuer: str
    subject: str
    jti: str
    issued_at: datetime
    expires_at: datetime
    tier: str
    benefits: tuple[str, ...]


def _aware_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _check_ttl(ttl_seconds: int) -> None:
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int):
        raise TypeError("ttl_seconds must be an int")
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}")


def _check_text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _check_benefits(benefits: Sequence[str]) -> tuple[str, ...]:
    if isinstance(benefits, str | bytes):
        raise TypeError("benefits must be a sequence of codes, not a string")
    return tuple(_check_text(b, "benefit code") for b in benefits)


def new_short_code() -> str:
    """18 uniformly random decimal digits (leading zeros allowed)."""
    return f"{secrets.randbelow(10**SHORT_CODE_DIGITS):0{SHORT_CODE_DIGITS}d}"


def is_short_code(value: str) -> bool:
    """Exactly 18 ASCII digits."""
    return isinstance(value, str) and _SHORT_CODE.fullmatch(value) is not None


def normalize_short_code(value: str) -> str | None:
    """The 18 digits of a short code as a person types it, or ``None`` if it is not one.

    People read 18 digits in groups (``123 456 789 012 345 678``, ``123456-789012-345678``),
    so a single space or hyphen between groups is dropped; nothing else is allowed (no
    leading or trailing space, no other character, no two separators in a row), and the
    length is checked before the pattern so that no large input is ever scanned.
    """
    if not isinstance(value, str) or len(value) > MAX_TYPED_SHORT_CODE:
        return None
    if _GROUPED_SHORT_CODE.fullmatch(value) is None:
        return None
    digits = value.replace(" ", "").replace("-", "")
    return digits if is_short_code(digits) else None


def _issue_one(
    key: SigningKey,
    issuer: str,
    tier: str,
    benefits: tuple[str, ...],
    not_before: datetime,
    ttl_seconds: int,
) -> IssuedCredential:
    iat = int(not_before.timestamp())
    exp = iat + ttl_seconds
    jti = secrets.token_urlsafe(_JTI_BYTES)
    subject = secrets.token_urlsafe(_SUB_BYTES)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "jti": jti,
        "iat": iat,
        "exp": exp,
        "tier": tier,
        "ben": list(benefits),
    }
    token = jwt.encode(
        claims,
        key.private_key,
        algorithm=ALGORITHM,
        headers={"kid": key.kid, "typ": TOKEN_TYPE},
    )
    payload = PREFIX + token
    if len(payload) > MAX_QR_PAYLOAD_BYTES:
        raise ValueError(
            f"credential payload is {len(payload)} bytes; a version-15 QR code at level M holds "
            f"{MAX_QR_PAYLOAD_BYTES}: shorten the issuer, tier or benefit codes"
        )
    return IssuedCredential(
        jti=jti,
        subject=subject,
        kid=key.kid,
        tier=tier,
        benefits=benefits,
        not_before=not_before,
        expires_at=not_before + timedelta(seconds=ttl_seconds),
        qr_payload=payload,
        short_code=new_short_code(),
    )


def issue(
    key: SigningKey,
    *,
    issuer: str,
    tier: str,
    benefits: Sequence[str],
    not_before: datetime,
    ttl_seconds: int = MAX_TTL_SECONDS,
) -> IssuedCredential:
    """Sign one credential valid ``[not_before, not_before + ttl)``.

    ``not_before`` is truncated to the whole second (``iat`` is an integer NumericDate).
    """
    _check_ttl(ttl_seconds)
    start = _aware_utc(not_before, "not_before").replace(microsecond=0)
    return _issue_one(
        key,
        _check_text(issuer, "issuer"),
        _check_text(tier, "tier"),
        _check_benefits(benefits),
        start,
        ttl_seconds,
    )


def issue_batch(
    key: SigningKey,
    *,
    issuer: str,
    tier: str,
    benefits: Sequence[str],
    start: datetime,
    count: int,
    ttl_seconds: int = MAX_TTL_SECONDS,
) -> list[IssuedCredential]:
    """``count`` (1–15) credentials with consecutive windows ``[start + i·ttl, start + (i+1)·ttl)``
    for a phone that will be offline. Each has its own ``jti``, ``sub`` and short code."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError("count must be an int")
    if not 1 <= count <= MAX_BATCH:
        raise ValueError(f"count must be between 1 and {MAX_BATCH}")
    _check_ttl(ttl_seconds)
    first = _aware_utc(start, "start").replace(microsecond=0)
    iss = _check_text(issuer, "issuer")
    tier_ = _check_text(tier, "tier")
    ben = _check_benefits(benefits)
    step = timedelta(seconds=ttl_seconds)
    return [_issue_one(key, iss, tier_, ben, first + i * step, ttl_seconds) for i in range(count)]


# --------------------------------------------------------------------------- verifying


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def verify(
    qr_payload: str,
    keys_by_kid: Mapping[str, Ed25519PublicKey],
    *,
    issuer: str,
    now: datetime,
    leeway_seconds: int = 0,
) -> VerifiedClaims:
    """Check a scanned ``XY1:`` payload; return its claims or raise a :class:`CredentialError`.

    The time window is ``[iat - leeway, exp + leeway)`` measured at ``now``. Offline partners
    pass ``leeway_seconds=60`` (DESIGN.md §5). Whether the ``jti`` was already used is not
    checked here.
    """
    now_utc = _aware_utc(now, "now")
    if isinstance(leeway_seconds, bool) or not isinstance(leeway_seconds, int):
        raise TypeError("leeway_seconds must be an int")
    if leeway_seconds < 0:
        raise ValueError("leeway_seconds must not be negative")

    # Cheap, structural checks before any decoding.
    if not isinstance(qr_payload, str) or len(qr_payload) > MAX_VERIFY_INPUT_BYTES:
        raise CredentialInvalid()
    if not qr_payload.isascii() or len(qr_payload.encode("ascii")) > MAX_VERIFY_INPUT_BYTES:
        raise CredentialInvalid()
    if not qr_payload.startswith(PREFIX):
        raise CredentialInvalid()
    token = qr_payload[len(PREFIX) :]
    if _COMPACT_JWS.fullmatch(token) is None:
        raise CredentialInvalid()
    segments = token.split(".")
    if len(segments[2]) != _SIGNATURE_B64_LEN:
        raise CredentialInvalid()
    try:
        raw_header = b64url_decode_canonical(segments[0])
        for segment in segments[1:]:
            b64url_decode_canonical(segment)
    except ValueError:
        raise CredentialInvalid() from None

    # The unverified header is read only to pick the key: parsed from the segment decoded
    # above, not decoded again (PyJWT checks it once more with the signature).
    try:
        header = json.loads(raw_header)
    except (ValueError, RecursionError):
        raise CredentialInvalid() from None
    if (
        not isinstance(header, dict)
        or set(header) != HEADER_PARAMS
        or header.get("alg") != ALGORITHM
        or header.get("typ") != TOKEN_TYPE
    ):
        raise CredentialInvalid()
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise CredentialInvalid()
    if kid not in keys_by_kid:
        raise CredentialUnknownKey()
    public_key = keys_by_kid[kid]
    if not isinstance(public_key, Ed25519PublicKey):
        raise TypeError("keys_by_kid must map to Ed25519PublicKey")

    # Signature (algorithm pinned), issuer and presence of claims. Time is checked below
    # against the caller's clock, not PyJWT's.
    try:
        claims = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={
                "require": _REQUIRED,
                "verify_signature": True,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "verify_iss": True,
                "verify_sub": True,
                "verify_jti": True,
            },
        )
    except jwt.PyJWTError:
        raise CredentialInvalid() from None

    if set(claims) != CLAIMS:
        raise CredentialInvalid()
    iss, sub, jti = claims["iss"], claims["sub"], claims["jti"]
    iat, exp = claims["iat"], claims["exp"]
    tier, ben = claims["tier"], claims["ben"]
    if not (
        isinstance(iss, str)
        and iss == issuer
        and isinstance(sub, str)
        and sub
        and isinstance(jti, str)
        and jti
        and _is_int(iat)
        and _is_int(exp)
        and 0 < exp - iat <= MAX_TTL_SECONDS
        and isinstance(tier, str)
        and tier
        and isinstance(ben, list)
        and all(isinstance(b, str) and b for b in ben)
    ):
        raise CredentialInvalid()
    try:
        issued_at = datetime.fromtimestamp(iat, UTC)
        expires_at = datetime.fromtimestamp(exp, UTC)
    except (OverflowError, OSError, ValueError):
        raise CredentialInvalid() from None

    leeway = timedelta(seconds=leeway_seconds)
    if now_utc < issued_at - leeway:
        raise CredentialNotYetValid()
    if now_utc >= expires_at + leeway:
        raise CredentialExpired()

    return VerifiedClaims(
        kid=kid,
        issuer=iss,
        subject=sub,
        jti=jti,
        issued_at=issued_at,
        expires_at=expires_at,
        tier=tier,
        benefits=tuple(ben),
    )
