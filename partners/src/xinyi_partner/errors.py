"""Exceptions raised by the SDK. Each carries a stable machine-readable ``code``."""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["CredentialError", "CredentialErrorCode", "WebhookError", "WebhookErrorCode"]

CredentialErrorCode = Literal[
    "credential_invalid",
    "credential_expired",
    "credential_not_yet_valid",
    "credential_used",
    "unknown_key",
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
}


class CredentialError(Exception):
    """A QR credential was refused.

    ``code`` is one of ``credential_invalid``, ``credential_expired``,
    ``credential_not_yet_valid``, ``credential_used`` or ``unknown_key`` (refresh the JWKS and
    retry once). ``detail`` says why, for logs; it never contains the credential itself.
    """

    code: CredentialErrorCode
    detail: str

    def __init__(self, code: CredentialErrorCode, detail: str | None = None) -> None:
        self.code = code
        self.detail = detail or _CREDENTIAL_TITLES[code]
        super().__init__(f"{code}: {self.detail}")


class WebhookError(Exception):
    """A webhook delivery failed verification; answer it with a 4xx and do not act on it."""

    code: WebhookErrorCode
    detail: str

    def __init__(self, code: WebhookErrorCode, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")
