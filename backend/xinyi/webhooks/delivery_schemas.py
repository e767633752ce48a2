"""Request and response schemas of the delivery log, replay, recover and dead letters."""

from __future__ import annotations

from datetime import UTC

from marshmallow import Schema, fields, validate

from xinyi.schemas import PageArgs, StrictSchema
from xinyi.webhooks.catalogue import BY_NAME

STATUSES = ("pending", "paused", "delivered", "dead", "cancelled")
_STATUS = {"description": "`pending` (an attempt is due at `next_attempt_at`), `paused` (the "
                          "endpoint is disabled: kept, sent in order once enabled), "
                          "`delivered`, `dead` (every retry failed: replay or recover it), "
                          "`cancelled` (the endpoint was deleted)"}


class DeliveriesArgs(PageArgs):
    endpoint_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(STATUSES), metadata=_STATUS)
    event_type = fields.String(validate=validate.OneOf(sorted(BY_NAME)))
    since = fields.AwareDateTime(default_timezone=UTC, metadata={
        "description": "Only deliveries created at or after this time"})


class AttemptOut(Schema):
    number = fields.Integer(required=True)
    started_at = fields.DateTime(required=True)
    duration_ms = fields.Integer(required=True)
    status_code = fields.Integer(allow_none=True, metadata={
        "description": "Your endpoint's HTTP status; null when it did not answer"})
    error = fields.String(allow_none=True, metadata={
        "description": "Why it failed without an answer or with a refused one: `connect`, "
                       "`connect_timeout`, `timeout`, `tls`, `dns`, `refused_address`, "
                       "`redirect`, `protocol`, `network`"})
    response_body = fields.String(required=True, metadata={
        "description": "The first 2 KiB of your endpoint's answer"})


class DeliveryOut(Schema):
    id = fields.UUID(required=True)
    endpoint_id = fields.UUID(required=True)
    message_id = fields.String(required=True, metadata={
        "description": "`msg_…`: the `webhook-id` header, the same on every attempt and replay"})
    event_type = fields.String(required=True)
    seq = fields.Integer(required=True)
    status = fields.String(required=True, metadata=_STATUS)
    attempt_count = fields.Integer(required=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    created_at = fields.DateTime(required=True)
    delivered_at = fields.DateTime(allow_none=True)
    attempts = fields.List(fields.Nested(AttemptOut), required=True)


class RecoverIn(StrictSchema):
    since = fields.AwareDateTime(required=True, default_timezone=UTC, metadata={
        "description": "Re-queue the dead and failed deliveries created since this time"})


class RecoveredOut(Schema):
    endpoint_id = fields.UUID(required=True)
    since = fields.DateTime(required=True)
    requeued = fields.Integer(required=True)


class DeadLettersArgs(PageArgs):
    partner_id = fields.UUID()


class DeadLetterOut(Schema):
    delivery_id = fields.UUID(required=True)
    partner_id = fields.UUID(required=True)
    endpoint_id = fields.UUID(required=True)
    message_id = fields.String(required=True)
    event_type = fields.String(required=True)
    attempts = fields.Integer(required=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    dead_since = fields.DateTime(allow_none=True, metadata={
        "description": "When the last attempt was made"})
