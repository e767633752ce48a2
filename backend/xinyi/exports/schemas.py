from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.exports.models import FORMATS, STATUSES
from xinyi.schemas import StrictSchema

_FORMAT = {"description": "`json`: the document (schema at /v1/export-schema); `zip`: the "
                          "same document plus one CSV per section (UTF-8 with BOM)"}


class ExportArgs(StrictSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS),
                           metadata=_FORMAT)


class ExportIn(StrictSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS),
                           metadata=_FORMAT)


class ExportOut(Schema):
    """A background export (个人信息导出) and where it stands."""

    id = fields.UUID(required=True)
    format = fields.String(required=True, validate=validate.OneOf(FORMATS))
    status = fields.String(required=True, validate=validate.OneOf(STATUSES), metadata={
        "description": "queued → building → ready (downloadable once, for one hour) → "
                       "downloaded or expired; failed if it could not be built"})
    created_at = fields.DateTime(required=True)
    ready_at = fields.DateTime(required=True, allow_none=True)
    expires_at = fields.DateTime(required=True, allow_none=True, metadata={
        "description": "Until when the file may be downloaded (one hour after ready)"})
    downloaded_at = fields.DateTime(required=True, allow_none=True)
    size = fields.Integer(required=True, allow_none=True, metadata={
        "description": "The file's size in bytes, once built"})
