"""What closing the account takes."""

from __future__ import annotations

from marshmallow import fields, validate

from xinyi.schemas import StrictSchema


class CloseAccountIn(StrictSchema):
    password = fields.String(required=True, load_only=True,
                             validate=validate.Length(min=1, max=128),
                             metadata={"description": "The account's password, checked again."})
