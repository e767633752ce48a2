from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import Schema, fields

from xinyi.schemas import StrictSchema


class UploadIn(StrictSchema):
    file = Upload(required=True, metadata={
        "description": "PNG, JPEG or PDF (judged by content), at most 2 MiB"})


class AttachmentOut(Schema):
    id = fields.UUID(required=True)
    media_type = fields.String(required=True)
    size = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    created_at = fields.DateTime(required=True)
