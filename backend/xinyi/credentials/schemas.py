from __future__ import annotations

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
