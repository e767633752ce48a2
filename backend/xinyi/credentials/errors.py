"""The credentials domain's errors, in one module.

Every refusal of a presented credential is a :class:`CredentialError`. They are domain errors,
so the same class :func:`xinyi.credentials.tokens.verify` raises (a pure function, no Flask)
reaches the client as its problem document, without a second set of classes and a table
translating one into the other. Each ``code`` is a contract: the partner SDK raises the same
codes when it verifies offline.

The verification request's own errors (benefit, Idempotency-Key) are not about the credential
and keep their plain bases.
"""

from __future__ import annotations

from xinyi.errors import Conflict, DomainError, ValidationFailed


class CredentialError(DomainError):
    """A presented credential was refused; ``code`` says why."""

    status = 422
    code = "credential_invalid"
    title = "The credential is not valid"


class CredentialInvalid(CredentialError):
    """Malformed, forged, too large, not ours or unknown: which one is never told."""


class CredentialUnknownKey(CredentialInvalid):
    """No key with the credential's ``kid``: refused, but a caller with a cached key set may
    look again (the key may be newer than its cache)."""


class CredentialExpired(CredentialError):
    code = "credential_expired"
    title = "The credential has expired"


class CredentialNotYetValid(CredentialError):
    code = "credential_not_yet_valid"
    title = "The credential is not valid yet"


class CredentialUsed(CredentialError):
    """Each credential is verified once (replay guard)."""

    status = Conflict.status
    code = "credential_used"
    title = "This credential was already verified"


class UnknownBenefit(ValidationFailed):
    code = "unknown_benefit"
    title = "No benefit rule has this code"


class BenefitNotForPartner(ValidationFailed):
    code = "benefit_not_for_partner"
    title = "This benefit is not offered by this kind of partner"


class VerificationInProgress(Conflict):
    code = "verification_in_progress"
    title = "A request with this Idempotency-Key is still being answered; retry it shortly"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used for a different request"
