from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.attachments.schemas import AttachmentOut
from xinyi.reports.models import OUTCOMES, PARTY_KINDS, STATUSES
from xinyi.reports.service import MAX_REWARD_FEN
from xinyi.schemas import PageArgs, StrictSchema, WholeNumber


class ReportedPartyIn(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(PARTY_KINDS))
    id_number = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(min=1, max=32), metadata={
                                  "description": "A person's resident ID number (person only)"})
    name = fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(min=1, max=200), metadata={
                             "description": "The organisation's name (organisation only)"})
    unified_social_credit_code = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=32),
        metadata={"description": "统一社会信用代码 (organisation only, optional)"})


class DishonestyReportIn(StrictSchema):
    reported_party = fields.Nested(ReportedPartyIn, required=True)
    facts = fields.String(required=True, validate=validate.Length(min=1, max=5000), metadata={
        "description": "What happened, when and where (at most 5,000 characters). It is "
                       "forwarded as written: do not name yourself in it"})
    evidence = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=5),
                           metadata={"description": "At most 5 of your attachments"})


class ReportedPartyOut(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(PARTY_KINDS))
    id_number = fields.String(allow_none=True, metadata={"description": "Masked"})
    name = fields.String(allow_none=True)
    unified_social_credit_code = fields.String(allow_none=True)


class DishonestyReportOut(Schema):
    id = fields.UUID(required=True)
    reference = fields.String(required=True)
    reported_party = fields.Nested(ReportedPartyOut, required=True)
    facts = fields.String(required=True)
    evidence = fields.List(fields.Nested(AttachmentOut), required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    outcome = fields.String(allow_none=True, validate=validate.OneOf(OUTCOMES))
    decision_reason = fields.String(allow_none=True)
    reward_fen = fields.Integer(allow_none=True)
    created_at = fields.DateTime(required=True)
    decided_at = fields.DateTime(allow_none=True)


class ReporterOut(Schema):
    ref = fields.String(required=True, metadata={
        "description": "The same for every report of one reporter"})
    name = fields.String(allow_none=True, metadata={"description": "Masked"})
    phone = fields.String(allow_none=True, metadata={"description": "Masked"})
    id_number = fields.String(allow_none=True, metadata={"description": "Masked"})
    account_closed = fields.Boolean(required=True)


class ReportTriageOut(DishonestyReportOut):
    reporter = fields.Nested(ReporterOut, required=True)
    forwarded_to = fields.UUID(allow_none=True)
    forwarded_to_name = fields.String(allow_none=True)


class ReportQueueArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))


class ReportDecisionIn(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    reward_fen = WholeNumber(load_default=None, allow_none=True,
                             validate=validate.Range(min=1, max=MAX_REWARD_FEN), metadata={
                                 "description": "Required with (and only with) `rewarded`"})
    provider_id = fields.UUID(load_default=None, allow_none=True, metadata={
        "description": "The data provider it goes to: required with (and only with) "
                       "`forwarded`"})


class ForwardedReportOut(Schema):
    id = fields.UUID(required=True)
    reported_party = fields.Nested(ReportedPartyOut, required=True)
    facts = fields.String(required=True)
    forwarded_at = fields.DateTime(required=True)
