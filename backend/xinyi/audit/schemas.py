from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.audit.service import ACTOR_TYPES


class ActorOut(Schema):
    type = fields.String(required=True, validate=validate.OneOf(ACTOR_TYPES))
    name = fields.String(required=True)


class QueryOut(Schema):
    """One read of the citizen's data by someone else (查询记录)."""

    id = fields.UUID(required=True)
    seq = fields.Integer(required=True, metadata={
        "description": "Position in the citizen's tamper-evident chain"})
    at = fields.DateTime(required=True)
    who = fields.Nested(ActorOut, required=True)
    action = fields.String(required=True)
    scope = fields.String(required=True)
    consent_id = fields.UUID(allow_none=True)
    purpose = fields.String(required=True)

