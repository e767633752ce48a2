"""Retention: after ``webhook_retention_days`` the worker purges, in batches, the feed events
whose every delivery is done (delivered, or cancelled with its endpoint's deletion) — with
those deliveries and their attempt logs — and then the outbox rows already dispatched that no
feed event refers to any more. An event with a pending, paused or dead delivery is never
purged, whatever its age: it has not reached its receiver yet."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from xinyi.deps import Deps
from xinyi.outbox.service import purge_published
from xinyi.webhooks.models import PartnerEvent, WebhookAttempt, WebhookDelivery

BATCH = 5000
UNFINISHED = ("pending", "paused", "dead")


def _referenced(outbox_id: Any) -> ColumnElement[bool]:
    return select(PartnerEvent.id).where(PartnerEvent.outbox_event_id == outbox_id).exists()


def purge_batch(session: Session, deps: Deps, *, batch: int = BATCH) -> int:
    """One batch in the caller's unit: returns how many rows it deleted (0: nothing is due)."""
    cutoff = deps.clock() - timedelta(days=deps.settings.webhook_retention_days)
    unfinished = (select(WebhookDelivery.id)
                  .where(WebhookDelivery.event_id == PartnerEvent.id,
                         WebhookDelivery.status.in_(UNFINISHED)).exists())
    events = list(session.scalars(
        select(PartnerEvent.id).where(PartnerEvent.created_at < cutoff, ~unfinished)
        .order_by(PartnerEvent.created_at).limit(batch)))
    deleted = 0
    if events:
        deliveries = select(WebhookDelivery.id).where(WebhookDelivery.event_id.in_(events))
        for stmt in (delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)),
                     delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(events)),
                     delete(PartnerEvent).where(PartnerEvent.id.in_(events))):
            session.execute(stmt.execution_options(synchronize_session=False))
        deleted += len(events)
    deleted += purge_published(session, cutoff, keep=_referenced, batch=batch)
    return deleted
