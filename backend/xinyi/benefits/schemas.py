"""Benefit session requests and answers; money in integer fen."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.schemas import NON_EMPTY, PageArgs, StrictSchema, WholeNumber

MAX_FEN = 100_000_000
_AMOUNT = validate.Range(min=1, max=MAX_FEN, error="must be 1 to 100000000 fen "
                                                   "(at most ¥1,000,000)")
_OWED = validate.Range(min=0, max=MAX_FEN, error="must be 0 to 100000000 fen "
                                                 "(at most ¥1,000,000)")


class OpenIn(StrictSchema):
    verification_id = fields.UUID(required=True, metadata={
        "description": "Your own `eligible` verification, at most 10 minutes old and not "
                       "used for a session yet"})
    amount_fen = WholeNumber(required=True, validate=_AMOUNT, metadata={
        "description": "The whole amount (deposit, credit line); it is split into "
                       "`waived_fen` and `charge_normally_fen`"})
    due_at = fields.AwareDateTime(required=True, metadata={
        "description": "When it is to be returned or paid: in the future, at most 90 days"})
    reference = fields.String(required=True, validate=validate.Length(min=1, max=100),
                              metadata={"description": "Your own reference (order number)"})


class CloseIn(StrictSchema):
    outcome = fields.String(required=True,
                            validate=validate.OneOf(["fulfilled", "defaulted"]))
    amount_owed_fen = WholeNumber(required=True, validate=_OWED, metadata={
        "description": "0 when fulfilled; what the citizen owes (≥ 1) when defaulted"})


class ExtendIn(StrictSchema):
    due_at = fields.AwareDateTime(required=True, metadata={
        "description": "The new due date: later than the current one, at most 30 days "
                       "after the original due date (once per session)"})


class SessionOut(Schema):
    id = fields.UUID(required=True)
    session_id = fields.UUID(required=True,
                             metadata={"description": "The same as `id` (the adapters' shape)"})
    verification_id = fields.UUID(required=True)
    benefit_code = fields.String(required=True)
    kind = fields.String(required=True)
    state = fields.String(required=True, metadata={"enum": [
        "open", "fulfilled", "cancelled", "overdue", "defaulted", "settled", "recorded"]})
    amount_fen = fields.Integer(required=True)
    waived_fen = fields.Integer(required=True)
    charge_normally_fen = fields.Integer(required=True)
    amount_owed_fen = fields.Integer(required=True, allow_none=True)
    due_at = fields.DateTime(required=True)
    reference = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    closed_at = fields.DateTime(required=True, allow_none=True)
    grace_until = fields.DateTime(required=True, allow_none=True)
    extended = fields.Boolean(required=True)
    record_id = fields.UUID(required=True, allow_none=True)
    next_step = fields.String(required=True)
    next_step_at = fields.DateTime(required=True, allow_none=True)


class CitizenSessionOut(Schema):
    id = fields.UUID(required=True)
    partner_name = fields.String(required=True)
    benefit_code = fields.String(required=True)
    kind = fields.String(required=True)
    state = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    waived_fen = fields.Integer(required=True)
    charge_normally_fen = fields.Integer(required=True)
    amount_owed_fen = fields.Integer(required=True, allow_none=True)
    due_at = fields.DateTime(required=True)
    created_at = fields.DateTime(required=True)
    closed_at = fields.DateTime(required=True, allow_none=True)
    grace_until = fields.DateTime(required=True, allow_none=True)
    record_id = fields.UUID(required=True, allow_none=True)
    next_step = fields.String(required=True)
    next_step_at = fields.DateTime(required=True, allow_none=True)


class CitizenSessionArgs(PageArgs):
    pass


class _Caps(StrictSchema):
    AAA = WholeNumber(validate=validate.Range(min=0, max=MAX_FEN))
    AA = WholeNumber(validate=validate.Range(min=0, max=MAX_FEN))
    A = WholeNumber(validate=validate.Range(min=0, max=MAX_FEN))
    B = WholeNumber(validate=validate.Range(min=0, max=MAX_FEN))
    C = WholeNumber(validate=validate.Range(min=0, max=MAX_FEN))


class RulePatchIn(StrictSchema):
    JSON_SCHEMA_EXTRA = NON_EMPTY

    min_score = WholeNumber(validate=validate.Range(min=350, max=950))
    limits = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=64)),
                         values=WholeNumber(validate=validate.Range(min=0, max=MAX_FEN)),
                         metadata={"description": "Replaces the rule's limits whole; each "
                                                  "limit's name has 1–64 characters"})
    exposure_caps = fields.Nested(_Caps, metadata={
        "description": "Fen per tier, merged into the current caps"})
    grace_days = WholeNumber(validate=validate.Range(min=0, max=90))


class RuleOut(Schema):
    code = fields.String(required=True)
    partner_kind = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    min_score = fields.Integer(required=True)
    limits = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    grace_days = fields.Integer(required=True)
    exposure_caps = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class RulesOut(Schema):
    items = fields.List(fields.Nested(RuleOut), required=True)
