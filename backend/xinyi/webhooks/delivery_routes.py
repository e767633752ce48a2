"""Deliveries for the receiver (log with every attempt, replay, recover) and the dead
letters for staff."""

from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from xinyi.schemas import page_of, page_schema
from xinyi.web import db, deps, principal, requires
from xinyi.webhooks import deliveries
from xinyi.webhooks.delivery_schemas import (
    DeadLetterOut,
    DeadLettersArgs,
    DeliveriesArgs,
    DeliveryOut,
    RecoveredOut,
    RecoverIn,
)

partner_blp = Blueprint("partner_webhook_deliveries", __name__, url_prefix="/v1/partner",
                        description="Webhook deliveries: every attempt, replay and recover")
admin_blp = Blueprint("admin_webhooks", __name__, url_prefix="/v1/admin",
                      description="Webhook dead letters (operators)")


@partner_blp.route("/webhook-deliveries", methods=["GET"])
@requires("partner")
@partner_blp.arguments(DeliveriesArgs, location="query")
@partner_blp.response(200, page_schema(DeliveryOut, name="WebhookDeliveryPage"))
def list_deliveries(args: dict[str, Any]) -> dict[str, Any]:
    """Your deliveries, newest first, each with every attempt (status, duration, the first
    2 KiB of your endpoint's answer)."""
    items, total = deliveries.list_deliveries(db(), principal().id, **args)
    return page_of(items, total, args)


@partner_blp.route("/webhook-deliveries/<uuid:delivery_id>/replay", methods=["POST"])
@requires("partner")
@partner_blp.response(202, DeliveryOut)
def replay(delivery_id: uuid.UUID) -> deliveries.DeliveryView:
    """Send this delivery again now, with the same `webhook-id` (also when delivered or
    dead; while the endpoint is disabled it waits, paused)."""
    return deliveries.replay_delivery(db(), deps(), principal().id, delivery_id)


@partner_blp.route("/webhook-endpoints/<uuid:endpoint_id>/recover", methods=["POST"])
@requires("partner")
@partner_blp.arguments(RecoverIn)
@partner_blp.response(202, RecoveredOut)
def recover(body: dict[str, Any], endpoint_id: uuid.UUID) -> deliveries.Recovered:
    """Re-queue every dead delivery of this endpoint created since `since`, and every one
    still waiting for a retry, due now."""
    return deliveries.recover_endpoint(db(), deps(), principal().id, endpoint_id,
                                       since=body["since"])


@admin_blp.route("/webhook-dead-letters", methods=["GET"])
@requires("operator")
@admin_blp.arguments(DeadLettersArgs, location="query")
@admin_blp.response(200, page_schema(DeadLetterOut, name="WebhookDeadLetterPage"))
def dead_letters(args: dict[str, Any]) -> dict[str, Any]:
    """Deliveries whose every retry failed, the most recent first (no payloads)."""
    items, total = deliveries.dead_letters(db(), **args)
    return page_of(items, total, args)
