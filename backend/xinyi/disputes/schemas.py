from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.attachments.schemas import AttachmentOut
from xinyi.disputes.models import OUTCOMES
from xinyi.records.schemas import RecordPatchIn
from xinyi.schemas import NON_EMPTY, PageArgs, StrictSchema


class DisputeIn(StrictSchema):
    record_id = fields.UUID(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    evidence = fields.String(load_default=None, allow_none=True,
                             validate=validate.Length(max=2000))
    attachment_ids = fields.List(fields.UUID(), load_default=list,
                                 validate=validate.Length(max=5))


class CorrectionIn(RecordPatchIn):
    JSON_SCHEMA_EXTRA = NON_EMPTY


class ResolveIn(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    correction = fields.Nested(CorrectionIn, load_default=None, allow_none=True, metadata={
        "description": "The corrected fields; only (and required) with `corrected`"})


class DisputeOut(Schema):
    id = fields.UUID(required=True)
    record_id = fields.UUID(required=True)
    catalogue_code = fields.String(required=True)
    reason = fields.String(required=True)
    evidence = fields.String(allow_none=True)
    attachments = fields.List(fields.Nested(AttachmentOut), required=True)
    status = fields.String(required=True, metadata={
        "description": "open, corrected, deleted or upheld"})
    filed_at = fields.DateTime(required=True)
    received_on = fields.Date(required=True)
    due_on = fields.Date(required=True)
    due_provisional = fields.Boolean(required=True)
    overdue = fields.Boolean(required=True)
    resolved_at = fields.DateTime(allow_none=True)
    resolved_by = fields.String(allow_none=True, metadata={
        "description": "provider or reviewer"})
    resolution_reason = fields.String(allow_none=True)
    correction = fields.Dict(allow_none=True)


class DisputeQueueArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(("open", *OUTCOMES)))
