from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.schemas import StrictSchema


class LoginIn(StrictSchema):
    phone = fields.String(required=True, validate=validate.Length(max=20))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=128))


class RefreshIn(StrictSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class TokenPairOut(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)
