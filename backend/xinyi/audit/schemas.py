from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.audit.service import ACTOR_TYPES
from xinyi.schemas import PageMeta

_HEX_HASH = "SHA-256, 64 lowercase hex digits"


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
    actor_id = fields.String(required=True, metadata={
        "description": "The reader's id as this entry recorded it (an API client's or a staff "
                       "account's id); the entry's hash covers it"})
    prev_hash = fields.String(required=True, metadata={
        "description": f"The hash of the entry before this one ({_HEX_HASH}; 64 zeros for "
                       "the first entry)"})
    hash = fields.String(required=True, metadata={
        "description": f"This entry's hash ({_HEX_HASH}); docs/access-log.md says how to "
                       "recompute it"})


class ChainHeadOut(Schema):
    """The last entry of the citizen's chain, to check a copy of the log against."""

    subject = fields.String(required=True, metadata={
        "description": "The chain's subject as the hash formula uses it (hex): an opaque "
                       "keyed index, not the ID number"})
    seq = fields.Integer(required=True, metadata={
        "description": "The last entry's seq (0 while the log is empty)"})
    hash = fields.String(required=True, metadata={
        "description": f"The last entry's hash ({_HEX_HASH}; 64 zeros while the log is "
                       "empty)"})


class QueryPage(Schema):
    """A page of the citizen's access log, with the head of the chain it belongs to."""

    items = fields.List(fields.Nested(QueryOut), required=True)
    meta = fields.Nested(PageMeta, required=True)
    chain = fields.Nested(ChainHeadOut, required=True)

