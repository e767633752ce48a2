from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.schemas import FullMatch, PageArgs, StrictSchema

ACTIVITY_REF = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"


class VolunteerIn(StrictSchema):
    id_number = fields.String(required=True, validate=validate.Length(min=15, max=18))
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))


class VolunteerOut(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True, metadata={"description": "Masked"})
    id_number = fields.String(required=True, metadata={"description": "Masked"})
    registered_at = fields.DateTime(required=True)
    active = fields.Boolean(required=True)
    left_at = fields.DateTime(allow_none=True, metadata={
        "description": "When the citizen left this organisation"})


class VolunteerArgs(PageArgs):
    active = fields.Boolean(load_default=True)


class ServiceRecordIn(StrictSchema):
    id_number = fields.String(required=True, validate=validate.Length(min=15, max=18))
    activity_ref = fields.String(required=True, validate=[
        validate.Length(min=1, max=128),
        FullMatch(ACTIVITY_REF, error="letters, digits and . _ : - only")])
    activity_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    started_at = fields.AwareDateTime(required=True)
    ended_at = fields.AwareDateTime(required=True)


class ServiceRecordOut(Schema):
    id = fields.UUID(required=True)
    org_id = fields.UUID(required=True)
    org_name = fields.String(required=True)
    volunteer_id = fields.UUID(required=True)
    activity_ref = fields.String(required=True)
    activity_name = fields.String(required=True)
    started_at = fields.DateTime(required=True)
    ended_at = fields.DateTime(required=True)
    minutes = fields.Integer(required=True)
    hours = fields.Float(required=True)
    status = fields.String(required=True, metadata={"description": "accepted or retracted"})
    retracted_at = fields.DateTime(allow_none=True)
    retraction_reason = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)


class RetractIn(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class MembershipOut(Schema):
    org_id = fields.UUID(required=True)
    org_name = fields.String(required=True)
    registered_at = fields.DateTime(required=True)


class MembershipsOut(Schema):
    items = fields.List(fields.Nested(MembershipOut), required=True)
