from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.partner_kinds import PARTNER_KINDS
from xinyi.schemas import FullMatch, JsonBoolean, StrictSchema

_CATALOGUE_CODES = {
    "description": 'Codes of the catalogue items this data provider may push records of; '
                   '["*"] grants every item, present and future. Each code must exist.'}


def _catalogue_codes() -> fields.List[str]:
    code = fields.String(validate=[validate.Length(min=1, max=64), FullMatch(
        r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)+)$", error='must be a catalogue code or "*"')])
    return fields.List(code, validate=validate.Length(min=1, max=1000),
                       metadata=_CATALOGUE_CODES, required=True)


class ClientCreate(StrictSchema):
    name = fields.String(required=True, validate=[
        validate.Length(min=1, max=200),
        validate.Regexp(r"\s*\S", error="must not be blank")])  # the service strips it
    kind = fields.String(validate=validate.OneOf(PARTNER_KINDS),
                         metadata={"description": "Required for partners"})


class ProviderCreate(ClientCreate):
    catalogue_codes = _catalogue_codes()


class CatalogueGrantIn(StrictSchema):
    catalogue_codes = _catalogue_codes()


class PartnerCreate(ClientCreate):
    """A partner's kind decides which benefits it may verify: it is required."""

    kind = fields.String(required=True, validate=validate.OneOf(PARTNER_KINDS))


class IssuedKeyOut(Schema):
    id = fields.String(required=True)
    api_key = fields.String(required=True, metadata={
        "description": "Shown once: only a hash is stored"})
    created_at = fields.DateTime(required=True)


class KeyOut(Schema):
    id = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    revoked_at = fields.DateTime(allow_none=True)


class ClientOut(Schema):
    id = fields.UUID(required=True)
    type = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    disabled_at = fields.DateTime(allow_none=True)
    keys = fields.List(fields.Nested(KeyOut), required=True)


class ClientCreatedOut(ClientOut):
    api_key = fields.Nested(IssuedKeyOut, required=True)


class ProviderOut(ClientOut):
    catalogue_codes = fields.List(fields.String(), required=True, metadata=_CATALOGUE_CODES)


class ProviderCreatedOut(ProviderOut, ClientCreatedOut):
    pass


class DisableIn(StrictSchema):
    disabled = JsonBoolean(required=True)
