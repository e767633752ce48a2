"""Registration and the masked profile, the citizen's own data on the wire."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.schemas import StrictSchema


class RegisterIn(StrictSchema):
    phone = fields.String(required=True, validate=validate.Length(max=20))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=128))
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    id_number = fields.String(required=True, validate=validate.Length(max=32))


class ProfileOut(Schema):
    """Masked profile: the app never receives the full ID or phone number back."""

    id = fields.UUID(required=True)
    phone = fields.String(required=True, metadata={"example": "138****5678"})
    name = fields.String(required=True, metadata={"example": "张**"})
    id_number = fields.String(required=True, metadata={"example": "110***********1234"})
    created_at = fields.DateTime(required=True)
    realname_verified_at = fields.DateTime(required=True)
