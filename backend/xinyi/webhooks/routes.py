from __future__ import annotations

import uuid
from typing import Any

from flask import Response
from flask_smorest import Blueprint

from xinyi.schemas import PageArgs, page_of, page_schema
from xinyi.web import db, deps, principal, public, requires
from xinyi.webhooks import catalogue, endpoints, feed
from xinyi.webhooks.docs import data_schema
from xinyi.webhooks.schemas import (
    EndpointIn,
    EndpointOut,
    EndpointPatchIn,
    EndpointSecretOut,
    EventTypesOut,
    FeedArgs,
    FeedPageOut,
    TestQueuedOut,
)

partner_blp = Blueprint("partner_webhooks", __name__, url_prefix="/v1/partner",
                        description="Webhook endpoints and the event feed (Standard Webhooks)")
catalogue_blp = Blueprint("webhook_event_types", __name__, url_prefix="/v1",
                          description="The webhook event catalogue")


@partner_blp.route("/webhook-endpoints", methods=["POST"])
@requires("partner")
@partner_blp.arguments(EndpointIn)
@partner_blp.response(201, EndpointSecretOut)
def create_endpoint(body: dict[str, Any]) -> endpoints.EndpointView:
    """Register an endpoint. The answer carries its signing secret, shown this once."""
    return endpoints.create_endpoint(db(), deps(), principal(), **body)


@partner_blp.route("/webhook-endpoints", methods=["GET"])
@requires("partner")
@partner_blp.arguments(PageArgs, location="query")
@partner_blp.response(200, page_schema(EndpointOut, name="WebhookEndpointPage"))
def list_endpoints(args: dict[str, Any]) -> dict[str, Any]:
    """Your endpoints, oldest first (secrets are never shown again)."""
    items, total = endpoints.list_endpoints(db(), deps(), principal(), **args)
    return page_of(items, total, args)


@partner_blp.route("/webhook-endpoints/<uuid:endpoint_id>", methods=["GET"])
@requires("partner")
@partner_blp.response(200, EndpointOut)
def get_endpoint(endpoint_id: uuid.UUID) -> endpoints.EndpointView:
    """One of your endpoints."""
    return endpoints.get_endpoint(db(), deps(), principal(), endpoint_id)


@partner_blp.route("/webhook-endpoints/<uuid:endpoint_id>", methods=["PATCH"])
@requires("partner")
@partner_blp.arguments(EndpointPatchIn)
@partner_blp.response(200, EndpointOut)
def update_endpoint(body: dict[str, Any], endpoint_id: uuid.UUID) -> endpoints.EndpointView:
    """Change an endpoint. Disabling keeps every new event (paused); enabling again sends
    them in order."""
    return endpoints.update_endpoint(db(), deps(), principal(), endpoint_id, body)


@partner_blp.route("/webhook-endpoints/<uuid:endpoint_id>", methods=["DELETE"])
@requires("partner")
@partner_blp.response(204)
def delete_endpoint(endpoint_id: uuid.UUID) -> Response:
    """Delete an endpoint: nothing more is sent to it (your feed keeps every event)."""
    endpoints.delete_endpoint(db(), deps(), principal(), endpoint_id)
    return Response(status=204)


@partner_blp.route("/webhook-endpoints/<uuid:endpoint_id>/rotate-secret", methods=["POST"])
@requires("partner")
@partner_blp.response(200, EndpointSecretOut)
def rotate_secret(endpoint_id: uuid.UUID) -> endpoints.EndpointView:
    """A new signing secret, shown this once; the previous one also signs for 24 hours."""
    return endpoints.rotate_secret(db(), deps(), principal(), endpoint_id)


@partner_blp.route("/webhook-endpoints/<uuid:endpoint_id>/test", methods=["POST"])
@requires("partner")
@partner_blp.response(202, TestQueuedOut)
def send_test(endpoint_id: uuid.UUID) -> endpoints.TestQueued:
    """Queue a `webhook.test` event for this endpoint only."""
    return endpoints.send_test(db(), deps(), principal(), endpoint_id)


@partner_blp.route("/events", methods=["GET"])
@requires("partner")
@partner_blp.arguments(FeedArgs, location="query")
@partner_blp.response(200, FeedPageOut)
def events(args: dict[str, Any]) -> feed.FeedPage:
    """Your events in `seq` order, the same messages the webhooks carry: catch up after a
    gap or an outage with `after=<the last seq you have>`."""
    return feed.events_after(db(), principal().id, **args)


@catalogue_blp.route("/webhook-event-types", methods=["GET"])
@public
@catalogue_blp.response(200, EventTypesOut)
def event_types() -> dict[str, Any]:
    """Every webhook event type, its version and the JSON Schema of its `data`."""
    return {"items": [{"name": t.name, "version": t.version, "description": t.description,
                       "carries_data": t.carries_data, "schema": data_schema(t)}
                      for t in catalogue.EVENT_TYPES]}
