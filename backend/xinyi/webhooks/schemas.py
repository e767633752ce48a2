from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, fields, validate

from xinyi.schemas import NON_EMPTY, FullMatch, JsonBoolean, StrictSchema, WholeNumber
from xinyi.webhooks.catalogue import BY_NAME

_URL = {"description": "Where events are POSTed: `https://…` (plain `http` only outside "
                       "production); refused if it points to a private or loopback address"}
_TYPES = {"description": "The event types to receive (`GET /v1/webhook-event-types`); "
                         "empty: every type"}
_RATE = {"description": "At most this many requests per second to this endpoint (1–1000)"}
_EVENT_TYPE = fields.String(validate=validate.OneOf(sorted(BY_NAME)))
_NO_CONTROL = FullMatch(r"[^\x00-\x1f\x7f]*", error="must not contain control characters")


class EndpointIn(StrictSchema):
    url = fields.String(required=True, validate=[validate.Length(min=1, max=2048), _NO_CONTROL],
                        metadata=_URL)
    event_types = fields.List(_EVENT_TYPE, load_default=list,
                              validate=validate.Length(max=len(BY_NAME)), metadata=_TYPES)
    description = fields.String(load_default="", validate=validate.Length(max=500))
    enabled = JsonBoolean(load_default=True)
    rate_limit_per_s = WholeNumber(load_default=20, validate=validate.Range(min=1, max=1000),
                                   metadata=_RATE)


class EndpointPatchIn(StrictSchema):
    JSON_SCHEMA_EXTRA: ClassVar[Any] = NON_EMPTY

    url = fields.String(validate=[validate.Length(min=1, max=2048), _NO_CONTROL], metadata=_URL)
    event_types = fields.List(_EVENT_TYPE, validate=validate.Length(max=len(BY_NAME)),
                              metadata=_TYPES)
    description = fields.String(validate=validate.Length(max=500))
    enabled = JsonBoolean(metadata={
        "description": "false: nothing is sent, new events wait (paused); true again: "
                       "everything that waited is sent, in order"})
    rate_limit_per_s = WholeNumber(validate=validate.Range(min=1, max=1000), metadata=_RATE)


class EndpointOut(Schema):
    id = fields.UUID(required=True)
    url = fields.String(required=True)
    event_types = fields.List(fields.String(), required=True, metadata=_TYPES)
    description = fields.String(required=True)
    enabled = fields.Boolean(required=True)
    disabled_reason = fields.String(allow_none=True, metadata={
        "description": "`partner` (you disabled it), `gone` (it answered 410), `failing` "
                       "(every attempt failed for 5 days)"})
    disabled_at = fields.DateTime(allow_none=True)
    rate_limit_per_s = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    previous_secret_until = fields.DateTime(allow_none=True, metadata={
        "description": "After a rotation: until when the previous secret still signs"})


class EndpointSecretOut(EndpointOut):
    secret = fields.String(required=True, metadata={
        "description": "`whsec_…`: the signing secret. Shown this once; keep it safe"})


class TestQueuedOut(Schema):
    endpoint_id = fields.UUID(required=True)
    type = fields.String(required=True)
    queued_at = fields.DateTime(required=True)


class FeedArgs(StrictSchema):
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**62), metadata={
        "description": "The last `seq` you have; the feed answers the events after it"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class FeedEventOut(Schema):
    id = fields.String(required=True, metadata={
        "description": "`msg_…`: also the `webhook-id` header of its deliveries"})
    seq = fields.Integer(required=True, metadata={
        "description": "Increases by one per event of yours: a gap means a missed event"})
    type = fields.String(required=True)
    version = fields.Integer(required=True)
    timestamp = fields.String(required=True, metadata={"format": "date-time"})
    created_at = fields.DateTime(required=True)
    data = fields.Dict(required=True, metadata={
        "description": "As the type's schema in `GET /v1/webhook-event-types`"})


class FeedPageOut(Schema):
    items = fields.List(fields.Nested(FeedEventOut), required=True)
    next_after = fields.Integer(required=True, metadata={
        "description": "Pass as `after` to read on (equal to `after` when nothing is new)"})


class EventTypeOut(Schema):
    name = fields.String(required=True)
    version = fields.Integer(required=True)
    description = fields.String(required=True)
    carries_data = fields.Boolean(required=True, metadata={
        "description": "It tells you about a citizen: registered in their access log"})
    schema = fields.Dict(required=True, metadata={"description": "JSON Schema of `data`"})


class EventTypesOut(Schema):
    items = fields.List(fields.Nested(EventTypeOut), required=True)
