from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.decisions.explain import KINDS
from xinyi.decisions.models import OUTCOMES, STATUSES
from xinyi.schemas import PageArgs, StrictSchema

REASON = validate.Length(min=1, max=2000)


class DecisionArgs(PageArgs):
    kind = fields.String(validate=validate.OneOf(KINDS), metadata={
        "description": "Only decisions of this kind"})


class DecisionRuleOut(Schema):
    code = fields.String(required=True, metadata={"description": "The rule's stable code"})
    text_zh = fields.String(required=True, metadata={"description": "The rule in words"})


class ReviewBriefOut(Schema):
    id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    due_on = fields.Date(required=True)
    decided_at = fields.DateTime(allow_none=True)
    outcome_reason = fields.String(allow_none=True, metadata={
        "description": "The reviewer's reason, once decided"})


class DecisionOut(Schema):
    id = fields.String(required=True, metadata={
        "description": "Stable id: <kind>:<uuid>, or session_outcome:<uuid>:<step>"})
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    decided_at = fields.DateTime(required=True)
    outcome = fields.String(required=True, metadata={
        "description": "score/tier: set, raised or lowered; eligibility: eligible or "
                       "standard_terms; session_outcome: overdue, defaulted or recorded; "
                       "list_entry: red or black"})
    summary_zh = fields.String(required=True, metadata={
        "description": "What was decided and why, in Chinese"})
    rule = fields.Nested(DecisionRuleOut, required=True)
    inputs = fields.Dict(required=True, metadata={
        "description": "The values the rule was applied to (machine-readable)"})
    review = fields.Nested(ReviewBriefOut, allow_none=True, metadata={
        "description": "The latest human review of this decision, if one was asked for"})


class ReviewIn(StrictSchema):
    reason = fields.String(required=True, validate=REASON, metadata={
        "description": "Why the decision seems wrong, at most 2,000 characters"})


class ReviewOut(Schema):
    id = fields.UUID(required=True)
    decision_id = fields.String(required=True)
    decision_kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    decision = fields.Dict(required=True, metadata={
        "description": "The decision as it stood when the review was asked for"})
    reason = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    requested_at = fields.DateTime(required=True)
    received_on = fields.Date(required=True)
    due_on = fields.Date(required=True, metadata={
        "description": "Decided by this day (15 working days, official calendar)"})
    due_provisional = fields.Boolean(required=True)
    overdue = fields.Boolean(required=True)
    decided_at = fields.DateTime(allow_none=True)
    outcome_reason = fields.String(allow_none=True)


class QueueReviewOut(ReviewOut):
    subject = fields.String(required=True, metadata={
        "description": "The citizen's ID number, masked"})


class ReviewQueueArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))
    overdue = fields.Boolean()


class ReviewDecideIn(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES), metadata={
        "description": "confirmed: the decision stands; changed: it was wrong (say what in "
                       "the reason; a record's correction follows the objection path)"})
    reason = fields.String(required=True, validate=REASON)
