from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.attachments.schemas import AttachmentOut
from xinyi.repairs.models import BASES, STATUSES
from xinyi.schemas import JsonBoolean, PageArgs, StrictSchema
from xinyi.volunteering.schemas import MembershipOut, ServiceRecordOut

EVIDENCE = validate.Length(max=2000)


class RepairIn(StrictSchema):
    record_id = fields.UUID(required=True)
    basis = fields.String(required=True, validate=validate.OneOf(BASES))
    evidence = fields.String(load_default=None, allow_none=True, validate=EVIDENCE, metadata={
        "description": "What was done, at most 2,000 characters"})
    attachment_ids = fields.List(fields.UUID(), load_default=list,
                                 validate=validate.Length(max=5), metadata={
                                     "description": "At most 5 of your attachments"})
    commitment_accepted = JsonBoolean(required=True, metadata={
        "description": "true records your signed credit commitment (信用承诺) for this "
                       "repair; a repair needs it"})


class RepairOut(Schema):
    id = fields.UUID(required=True)
    record_id = fields.UUID(required=True)
    catalogue_code = fields.String(required=True)
    basis = fields.String(required=True)
    evidence = fields.String(allow_none=True)
    attachments = fields.List(fields.Nested(AttachmentOut), required=True)
    commitment_id = fields.UUID(allow_none=True)
    hours_required = fields.Integer(allow_none=True)
    hours_claimed = fields.Float(required=True, metadata={
        "description": "Volunteer hours set against this application"})
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    received_on = fields.Date(required=True, metadata={"description": "Accepted that day"})
    due_on = fields.Date(required=True, metadata={
        "description": "Decided by this day (3 working days, official calendar)"})
    due_provisional = fields.Boolean(required=True, metadata={
        "description": "The deadline crosses a year whose official calendar is not known "
                       "yet (counted Monday to Friday; recomputed when it is)"})
    overdue = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    decided_at = fields.DateTime(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    reapply = fields.String(allow_none=True, metadata={
        "description": "After a rejection: how to apply again"})
    decision_document = fields.String(allow_none=True, metadata={
        "description": "Path of the decision PDF, once decided"})


class RepairQueueArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))
    overdue = fields.Boolean()


class DecideIn(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(["approved", "rejected"]))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class RequirementOut(Schema):
    record_id = fields.UUID(required=True)
    catalogue_code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    severity = fields.String(allow_none=True)
    by_volunteering = fields.Boolean(required=True)
    hours_required = fields.Integer(allow_none=True)
    hours_available = fields.Float(required=True)
    hours_missing = fields.Integer(allow_none=True)
    repair_from = fields.Date(allow_none=True)
    can_apply_now = fields.Boolean(required=True)
    text_zh = fields.String(required=True)
    text_en = fields.String(required=True)


class ServiceHoursOut(Schema):
    total_hours = fields.Float(required=True)
    hours_this_year = fields.Float(required=True)
    score_points_this_year = fields.Integer(required=True, metadata={
        "description": "One point per full hour this calendar year, up to the cap"})
    yearly_cap_points = fields.Integer(required=True)
    points_remaining_this_year = fields.Integer(required=True)
    records = fields.List(fields.Nested(ServiceRecordOut), required=True)
    organisations = fields.List(fields.Nested(MembershipOut), required=True)
    repair_requirements = fields.List(fields.Nested(RequirementOut), required=True)
    next_steps = fields.List(fields.String(), required=True)
