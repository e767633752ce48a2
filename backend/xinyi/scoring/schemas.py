from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.partner_kinds import PARTNER_KINDS


class BenefitRuleOut(Schema):
    code = fields.String(required=True)
    qr_code = fields.String(required=True, metadata={
        "description": "Stands for this benefit in the QR credential's `ben` claim"})
    partner_kind = fields.String(required=True, validate=validate.OneOf(PARTNER_KINDS), metadata={
        "description": "The kind of partner that offers it (as in `POST /v1/admin/partners`)"})
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    min_score = fields.Integer(required=True, metadata={
        "description": "From this score up the benefit is granted; below it, standard terms "
                       "apply. A score never refuses a service."})
    limits = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                         metadata={"description": "Amounts in fen; clean_years is a condition"})


class BenefitsOut(Schema):
    items = fields.List(fields.Nested(BenefitRuleOut), required=True)


class ContributionOut(Schema):
    record_id = fields.String(required=True)
    catalogue_code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    points = fields.Integer(required=True)
    display_until = fields.Date(required=True)


class EligibilityOut(BenefitRuleOut):
    eligible = fields.Boolean(required=True)
    reason = fields.String(allow_none=True, metadata={
        "description": "null when eligible; `below_threshold` (the rule's conditions are not "
                       "met) or `black_list_entry` (met, but an open black-list entry with a "
                       "legal basis withholds it; the score alone never does)"})
    under_objection = fields.Boolean(load_default=False, dump_default=False, metadata={
        "description": "The black-list entry that withholds it rests on a record under an "
                       "objection being handled (异议处理中)"})


class NextStepOut(Schema):
    kind = fields.String(required=True)
    record_id = fields.String(allow_none=True)
    text_zh = fields.String(required=True)
    text_en = fields.String(required=True)
    available_from = fields.Date(allow_none=True)


class CreditOut(Schema):
    score = fields.Integer(required=True, metadata={
        "description": "clamp(base + Σ contributions.points + hours_bonus, 350, 950)"})
    tier = fields.String(required=True)
    base = fields.Integer(required=True)
    hours_bonus = fields.Integer(required=True)
    computed_at = fields.DateTime(required=True)
    contributions = fields.List(fields.Nested(ContributionOut), required=True)
    benefits = fields.List(fields.Nested(EligibilityOut), required=True)
    next_steps = fields.List(fields.Nested(NextStepOut), required=True)
