from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from xinyi.schemas import FullMatch, StrictSchema, WholeNumber


class IssueIn(StrictSchema):
    count = WholeNumber(load_default=1, validate=validate.Range(1, 15),
                        metadata={"description": "1-15 consecutive windows for offline use"})


class CredentialOut(Schema):
    id = fields.String(required=True, attribute="jti")
    qr_payload = fields.String(required=True)
    short_code = fields.String(required=True, metadata={"description": "18 digits, online only"})
    not_before = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)


class CredentialsOut(Schema):
    items = fields.List(fields.Nested(CredentialOut), required=True)


class JwksOut(Schema):
    keys = fields.List(fields.Dict(keys=fields.String(), values=fields.String()),
                       required=True)


class ConfigurationOut(Schema):
    """What an offline verifier needs, so that no partner has to guess the issuer."""

    issuer = fields.String(required=True, metadata={
        "description": "The `iss` claim every credential of this deployment carries"})
    jwks_uri = fields.String(required=True, metadata={
        "description": "Absolute URL of the credential keys (RFC 7517 JWKS)"})
    credential_algorithms = fields.List(fields.String(), required=True, metadata={
        "description": "JWS algorithms of the credentials (only `EdDSA`, Ed25519)"})
    credential_prefix = fields.String(required=True, metadata={
        "description": "What every QR payload starts with, before the compact JWS"})


class VerifyIn(StrictSchema):
    credential = fields.String(required=True, validate=validate.Length(min=1, max=8192),
                               metadata={"description": (
                                   "The QR payload (XY1:…) or the 18-digit short code; one "
                                   "space or hyphen between groups of digits is allowed "
                                   "(`123 456 789 012 345 678`)")})
    benefit = fields.String(required=True, validate=validate.Length(min=1, max=64))


class IdempotencyHeaders(Schema):
    class Meta:
        unknown = EXCLUDE

    idempotency_key = fields.String(data_key="Idempotency-Key", validate=FullMatch(
        r"^[\x21-\x7e]{1,100}$", error="1-100 visible ASCII characters"))


class VerifiedBenefitOut(Schema):
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    limits = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class VerificationOut(Schema):
    id = fields.String(required=True)
    decision = fields.String(required=True, validate=validate.OneOf(
        ["eligible", "standard_terms"]), metadata={
        "description": "standard_terms: serve as anyone without the card; never a refusal"})
    reason = fields.String(allow_none=True)
    benefit = fields.Nested(VerifiedBenefitOut, required=True)
    tier = fields.String(required=True)
    subject = fields.String(required=True, metadata={
        "description": "This partner's stable pseudonym for the citizen"})
    expires_at = fields.String(required=True)


class _UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time with its offset (a naive one is refused), handed on in UTC."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise self.make_error("invalid", input=value, obj_type="datetime") from None


class OfflineItemIn(StrictSchema):
    """One credential the partner's device verified offline (what the SDK queued)."""

    jti = fields.String(required=True, validate=FullMatch(
        r"^[A-Za-z0-9_-]{1,40}$", error="a credential id: 1-40 base64url characters"),
        metadata={"description": "The credential's `jti` claim"})
    benefit = fields.String(required=True, validate=validate.Length(min=1, max=64), metadata={
        "description": "The benefit checked: its code (`library.deposit_free`) or its short "
                       "`qr_code` (`lb`), as the credential's `ben` claim lists it"})
    decision = fields.String(required=True, validate=validate.OneOf(
        ["eligible", "standard_terms"]), metadata={"description": "What the device decided"})
    verified_at = _UtcDateTime(required=True, format="iso", metadata={
        "description": "When the device verified it (ISO 8601 with offset): not more than "
                       "5 minutes ahead of the server, within the credential's window ± 60 s"})


class OfflineUploadIn(StrictSchema):
    items = fields.List(fields.Nested(OfflineItemIn), required=True, validate=validate.Length(
        min=1, max=500, error="1 to 500 items a call"), metadata={
        "description": "1-500 items; a malformed one refuses the whole call (422, naming it)"})


class OfflineAnswerOut(Schema):
    jti = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(
        ["recorded", "duplicate", "double_presentation", "unattributable", "invalid"]),
        metadata={"description": (
            "recorded: a new verification; duplicate: already recorded from you; "
            "double_presentation: already verified online or by another partner (staff are "
            "alerted); unattributable: too old, the credential no longer names a holder "
            "(staff are alerted); invalid: see `reason`. Every status is final: drop the item")})
    verification_id = fields.String(required=True, allow_none=True, metadata={
        "description": "The verification recorded for this item (recorded, duplicate)"})
    reason = fields.String(required=True, allow_none=True, validate=validate.OneOf(
        ["unknown_benefit", "benefit_not_for_partner", "unknown_credential",
         "verified_in_future", "outside_credential_window"]), metadata={
        "description": "Why an item is invalid"})


class OfflineUploadOut(Schema):
    items = fields.List(fields.Nested(OfflineAnswerOut), required=True, metadata={
        "description": "One answer per item, in the order sent"})
