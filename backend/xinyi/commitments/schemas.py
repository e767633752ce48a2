from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.commitments.models import STATUSES
from xinyi.schemas import FullMatch, JsonBoolean, StrictSchema, WholeNumber

PURPOSE = FullMatch(r"[a-z][a-z0-9_]{1,31}",
                    error="lower-case letters, digits and _ (2 to 32 characters)")


class CommitmentTextOut(Schema):
    purpose = fields.String(required=True, metadata={
        "description": "`repair`, `rongque` (容缺受理), `benefit` (信用免押), or one staff added"})
    version = fields.Integer(required=True)
    title_zh = fields.String(required=True)
    text = fields.String(required=True)
    revocable = fields.Boolean(required=True, metadata={
        "description": "Whether a commitment to this text may be revoked by the citizen"})
    breach_catalogue_code = fields.String(required=True, metadata={
        "description": "The catalogue item a breach of it is recorded as"})
    published_at = fields.DateTime(required=True)


class CommitmentTextsOut(Schema):
    items = fields.List(fields.Nested(CommitmentTextOut), required=True)


class CommitmentTextIn(StrictSchema):
    purpose = fields.String(required=True, validate=PURPOSE)
    title_zh = fields.String(required=True, validate=validate.Length(min=1, max=100))
    text = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    revocable = JsonBoolean(required=True)
    breach_catalogue_code = fields.String(required=True, validate=validate.Length(min=1, max=64))


class CommitmentIn(StrictSchema):
    purpose = fields.String(required=True, validate=PURPOSE)
    text_version = WholeNumber(required=True, validate=validate.Range(min=1, max=1_000_000))
    ref = fields.String(load_default=None, allow_none=True,
                        validate=validate.Length(min=1, max=100), metadata={
                            "description": "The case it is given for (e.g. the application "
                                           "number at the office); defaults to the text"})


class CommitmentOut(Schema):
    id = fields.UUID(required=True)
    purpose = fields.String(required=True)
    text_version = fields.Integer(required=True)
    title_zh = fields.String(required=True)
    text = fields.String(required=True)
    ref = fields.String(required=True)
    revocable = fields.Boolean(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    signed_at = fields.DateTime(required=True)
    kid = fields.String(required=True, metadata={
        "description": "The signing key (in /.well-known/jwks.json)"})
    signature = fields.String(required=True, metadata={
        "description": "Compact JWS (EdDSA, typ xy-commitment+jwt) over id, purpose, ref, "
                       "the text's SHA-256 and the signing time"})
    revoked_at = fields.DateTime(allow_none=True)
    breached_at = fields.DateTime(allow_none=True)
    breach_facts = fields.String(allow_none=True)
    breach_occurred_on = fields.Date(allow_none=True)
    record_due_at = fields.DateTime(allow_none=True, metadata={
        "description": "After a breach: when the grace ends and the record is written"})
    record_id = fields.UUID(allow_none=True, metadata={
        "description": "The record the breach became (after the grace)"})


class ProviderCommitmentsArgs(StrictSchema):
    id_number = fields.String(required=True, validate=validate.Length(min=1, max=32))


class ProviderCommitmentsOut(Schema):
    items = fields.List(fields.Nested(CommitmentOut), required=True)


class CommitmentBreachIn(StrictSchema):
    facts = fields.String(required=True, validate=validate.Length(min=1, max=400), metadata={
        "description": "What was not kept, without personal data beyond the case"})
    occurred_on = fields.Date(required=True)
