"""Exceptions raised by the SDK. Each carries a stable machine-readable ``code``."""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "CredentialError",
    "CredentialErrorCode",
    "DiscoveryError",
    "RefusalReason",
    "WebhookError",
    "WebhookErrorCode",
]

CredentialErrorCode = Literal[
    "credential_invalid",
    "credential_expired",
    "credential_not_yet_valid",
    "credential_used",
    "unknown_key",
    "stale_keys",
]

# Which check refused the credential, finer than ``code`` (``credential_invalid`` is any of
# format, issuer or signature): what an integrator needs to see to fix their setup.
RefusalReason = Literal[
    "format",
    "issuer",
    "signature",
    "unknown_key",
    "expired",
    "not_yet_valid",
    "replay",
    "stale_keys",
]

WebhookErrorCode = Literal[
    "secret_invalid",
    "headers_missing",
    "timestamp_invalid",
    "timestamp_too_old",
    "timestamp_too_new",
    "signature_invalid",
    "body_invalid",
]

_CREDENTIAL_TITLES: Final[dict[str, str]] = {
    "credential_invalid": "The credential is not valid",
    "credential_expired": "The credential has expired",
    "credential_not_yet_valid": "The credential is not valid yet",
    "credential_used": "The credential was already used",
    "unknown_key": "The credential was signed with a key that is not in the JWKS",
    "stale_keys": "The verifier's copy of the keys is too old to trust; refresh it",
}

_DEFAULT_REASONS: Final[dict[str, RefusalReason]] = {
    "credential_invalid": "format",
    "credential_expired": "expired",
    "credential_not_yet_valid": "not_yet_valid",
    "credential_used": "replay",
    "unknown_key": "unknown_key",
    "stale_keys": "stale_keys",
}


class CredentialError(Exception):
    """A QR credential was refused: serve the citizen on your standard terms.

    ``code`` is one of ``credential_invalid``, ``credential_expired``,
    ``credential_not_yet_valid``, ``credential_used``, ``unknown_key`` (refresh the JWKS and
    retry once) or ``stale_keys`` (the keys could not be refreshed for too long).

    ``reason`` names the check that failed: ``format``, ``issuer``, ``signature``,
    ``unknown_key``, ``expired``, ``not_yet_valid``, ``replay`` or ``stale_keys``.
    ``detail`` says why, for logs. Neither ever contains the credential or anything read from
    it, so both may be logged.
    """

    code: CredentialErrorCode
    reason: RefusalReason
    detail: str

    def __init__(
        self,
        code: CredentialErrorCode,
        detail: str | None = None,
        *,
        reason: RefusalReason | None = None,
    ) -> None:
        self.code = code
        self.reason = reason or _DEFAULT_REASONS[code]
        self.detail = detail or _CREDENTIAL_TITLES[code]
        super().__init__(f"{code} ({self.reason}): {self.detail}")


class DiscoveryError(Exception):
    """The configuration or the keys of a xinyi+ deployment could not be fetched or used.

    The message names the URL and what was wrong with the answer; it holds no credential.
    """


class WebhookError(Exception):
    """A webhook delivery failed verification; answer it with a 4xx and do not act on it."""

    code: WebhookErrorCode
    detail: str

    def __init__(self, code: WebhookErrorCode, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")
