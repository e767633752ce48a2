from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_dump, validate

from xinyi.consents.models import (
    MAX_DURATION_SECONDS,
    MIN_DURATION_SECONDS,
    REQUEST_STATUSES,
    SCOPES,
)
from xinyi.partner_kinds import PARTNER_KINDS
from xinyi.records.schemas import POLARITIES, SEVERITIES
from xinyi.schemas import PageArgs, StrictSchema, WholeNumber

CONSENT_STATUSES = ("live", "expired", "revoked")

_SCOPE = {"description": "`report.summary`: tier, score and counts of active records; "
                         "`report.full`: the summary and every active record"}
_PURPOSE = [validate.Length(min=1, max=500),
            validate.Regexp(r"\s*\S", error="must not be blank")]
_EXPIRES_IN = validate.Range(min=MIN_DURATION_SECONDS, max=MAX_DURATION_SECONDS)
_EXPIRES_IN_DOC = {"description": "How long the consent lasts once granted, in seconds "
                                  "(1 hour to 365 days)"}


class ConsentRequestIn(StrictSchema):
    subject = fields.String(required=True, validate=validate.Length(min=1, max=64), metadata={
        "description": "Your pseudonym for the citizen, from a verification"})
    scope = fields.String(required=True, validate=validate.OneOf(SCOPES), metadata=_SCOPE)
    purpose = fields.String(required=True, validate=_PURPOSE, metadata={
        "description": "Why you need the report; shown to the citizen and in their query log"})
    expires_in = WholeNumber(required=True, validate=_EXPIRES_IN, metadata=_EXPIRES_IN_DOC)


class PartnerConsentRequestOut(Schema):
    id = fields.UUID(required=True)
    subject = fields.String(required=True)
    scope = fields.String(required=True)
    purpose = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(REQUEST_STATUSES),
                           metadata={"description": "A pending request lapses after 7 days"})
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True, metadata={
        "description": "When the request lapses if the citizen has not decided"})
    decided_at = fields.DateTime(allow_none=True)
    consent_id = fields.UUID(allow_none=True, metadata={"description": "Once approved"})


class PartnerOut(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    kind = fields.String(allow_none=True)


class CitizenConsentRequestOut(Schema):
    id = fields.UUID(required=True)
    partner = fields.Nested(PartnerOut, required=True)
    scope = fields.String(required=True, metadata=_SCOPE)
    purpose = fields.String(required=True)
    requested_duration_seconds = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(REQUEST_STATUSES))
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    decided_at = fields.DateTime(allow_none=True)


class ConsentGrantIn(StrictSchema):
    partner_id = fields.UUID(required=True, metadata={
        "description": "The partner's `id` in the partner directory, `GET /v1/partners`"})
    scope = fields.String(required=True, validate=validate.OneOf(SCOPES), metadata=_SCOPE)
    purpose = fields.String(required=True, validate=_PURPOSE)
    expires_in = WholeNumber(required=True, validate=_EXPIRES_IN, metadata=_EXPIRES_IN_DOC)


class ConsentOut(Schema):
    id = fields.UUID(required=True)
    partner = fields.Nested(PartnerOut, required=True)
    scope = fields.String(required=True, metadata=_SCOPE)
    purpose = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CONSENT_STATUSES))
    granted_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    revoked_at = fields.DateTime(allow_none=True)
    request_id = fields.UUID(allow_none=True, metadata={
        "description": "The partner's request this consent approved; null for a direct grant"})


class WithdrawalOut(Schema):
    """What ``POST /v1/me/consents:revoke-all`` did."""

    revoked = fields.Integer(required=True, metadata={
        "description": "How many consents were live and are now revoked (0 if none was)."})


class ConsentsArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(CONSENT_STATUSES))


class ReportArgs(StrictSchema):
    scope = fields.String(validate=validate.OneOf(SCOPES), metadata={
        "description": "Read exactly this scope (refused unless a live consent covers it); "
                       "by default the widest scope your live consents allow"})


class ReportRecordOut(Schema):
    catalogue_code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    polarity = fields.String(required=True, validate=validate.OneOf(POLARITIES))
    severity = fields.String(allow_none=True, validate=validate.OneOf(SEVERITIES))
    occurred_at = fields.Date(required=True)
    points = fields.Integer(required=True)
    display_until = fields.Date(required=True)
    under_objection = fields.Boolean(required=True, metadata={
        "description": "The citizen has objected to this record (异议) and the objection "
                       "is being handled"})


class ReportOut(Schema):
    """What the consent's scope allows, and nothing that identifies the citizen."""

    subject = fields.String(required=True)
    scope = fields.String(required=True, metadata=_SCOPE)
    consent_id = fields.UUID(required=True)
    consent_expires_at = fields.DateTime(required=True)
    generated_at = fields.DateTime(required=True)
    tier = fields.String(required=True)
    score = fields.Integer(required=True)
    positive_records = fields.Integer(required=True, metadata={
        "description": "Active positive records inside their display period"})
    negative_records = fields.Integer(required=True, metadata={
        "description": "Active negative records inside their display period"})
    records_under_objection = fields.Integer(required=True, metadata={
        "description": "Of those, records under an objection being handled"})
    records = fields.List(fields.Nested(ReportRecordOut), metadata={
        "description": "Only with `report.full`"})

    @post_dump
    def _only_with_the_full_scope(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data.get("records") is None:
            data.pop("records", None)
        return data


class DirectoryBenefitOut(Schema):
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)


class DirectoryPartnerOut(Schema):
    """A partner as the public directory shows it: nothing about its keys or its contacts."""

    id = fields.UUID(required=True, metadata={
        "description": "The `partner_id` to grant a consent to (`POST /v1/me/consents`)"})
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(PARTNER_KINDS))
    benefits = fields.List(fields.Nested(DirectoryBenefitOut), required=True, metadata={
        "description": "The benefits its kind offers; thresholds are in `GET /v1/benefits`"})
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)), required=True,
                         metadata={"description": "The consent scopes it may ask you for"})
