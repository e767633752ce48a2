from __future__ import annotations

from marshmallow import Schema, fields

from xinyi.schemas import PageArgs, PageMeta


class InboxArgs(PageArgs):
    unread = fields.Boolean(truthy={"true"}, falsy={"false"},
                            metadata={"description": "true: only unread; false: only read"})


class NotificationOut(Schema):
    id = fields.UUID(required=True)
    template = fields.String(required=True, metadata={"description": "What kind of notice"})
    text = fields.String(required=True, metadata={"description": "The notice, in Chinese"})
    params = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    ref = fields.String(allow_none=True, required=True,
                        metadata={"description": "What it is about, e.g. benefit_session:<id>"})
    created_at = fields.DateTime(required=True)
    read = fields.Boolean(required=True)
    read_at = fields.DateTime(allow_none=True, required=True)


class InboxOut(Schema):
    items = fields.List(fields.Nested(NotificationOut), required=True)
    meta = fields.Nested(PageMeta, required=True)
    unread = fields.Integer(required=True, metadata={"description": "Unread notices in all"})
