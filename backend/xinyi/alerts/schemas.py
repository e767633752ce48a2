from __future__ import annotations

from marshmallow import Schema, fields

from xinyi.schemas import PageArgs


class AlertArgs(PageArgs):
    open = fields.Boolean(load_default=True)


class AlertOut(Schema):
    id = fields.UUID(required=True)
    kind = fields.String(required=True)
    ref = fields.String(required=True)
    text = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    acknowledged_at = fields.DateTime(allow_none=True)
