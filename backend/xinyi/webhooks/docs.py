"""The catalogue as documents: JSON Schemas of each type's message, and the OpenAPI 3.1
``webhooks`` section (one entry per type, with the Standard Webhooks headers)."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from xinyi.webhooks.catalogue import EVENT_TYPES, EventType

_HEADERS = (
    ("webhook-id", "`msg_…`: the message id, the same on every retry and replay (dedupe on "
                   "it); also the event's `id` in the body and the feed", r"^msg_[0-9a-f]{32}$"),
    ("webhook-timestamp", "Unix seconds when this attempt was signed; refuse one far from "
                          "your clock (replay protection)", r"^[0-9]+$"),
    ("webhook-signature", "Space-separated `v1,<base64 HMAC-SHA256>` of "
                          "`{webhook-id}.{webhook-timestamp}.{body}` keyed with your endpoint "
                          "secret; two during the 24 hours after a rotation (either matches)",
     None),
)


@cache
def _converter() -> Any:
    plugin = MarshmallowPlugin()
    APISpec("catalogue", "1", "3.1.0", plugins=[plugin])
    return plugin.converter


def data_schema(entry: EventType) -> dict[str, Any]:
    """The JSON Schema of the type's ``data`` (self-contained: no references)."""
    converted: dict[str, Any] = _converter().schema2jsonschema(entry.schema)
    converted["additionalProperties"] = False
    return copy.deepcopy(converted)


def message_schema(entry: EventType) -> dict[str, Any]:
    """The whole body of a message of this type (as :func:`feed.message_body` builds it)."""
    return {
        "type": "object", "additionalProperties": False,
        "required": ["type", "timestamp", "data", "seq", "id", "version"],
        "properties": {
            "type": {"type": "string", "const": entry.name},
            "timestamp": {"type": "string", "format": "date-time",
                          "description": "When it happened"},
            "data": data_schema(entry),
            "seq": {"type": "integer", "minimum": 1,
                    "description": "Your feed's sequence number: a gap means a missed event; "
                                   "read `GET /v1/partner/events?after=<last seq>`"},
            "id": {"type": "string", "pattern": "^msg_[0-9a-f]{32}$"},
            "version": {"type": "integer", "const": entry.version},
        },
    }


def webhooks_section() -> dict[str, Any]:
    """OpenAPI 3.1 ``webhooks``: what we POST to a partner's endpoint, type by type."""
    headers = [{"name": name, "in": "header", "required": True, "description": text,
                "schema": {"type": "string", **({"pattern": p} if p else {})}}
               for name, text, p in _HEADERS]
    return {entry.name: {"post": {
        "summary": entry.name,
        "description": entry.description + (
            " Registered in the citizen's access log." if entry.carries_data else ""),
        "operationId": "webhook_" + entry.name.replace(".", "_"),
        "tags": ["Webhooks"],
        "parameters": headers,
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": message_schema(entry)}}},
        "responses": {
            "2XX": {"description": "Received: answer fast, work later"},
            "410": {"description": "Gone: the endpoint is disabled and receives nothing more"},
            "default": {"description": "Anything else is retried (immediately, 5 s, 5 min, "
                                       "30 min, 2 h, 5 h, 10 h, 10 h)"}},
    }} for entry in EVENT_TYPES}
