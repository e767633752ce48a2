"""What a partner sees of its deliveries (every attempt), replay and recover; and the dead
letters staff look after. Reads and small state changes in the caller's unit of work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xinyi.deps import Deps
from xinyi.errors import Conflict, NotFound, ValidationFailed
from xinyi.webhooks import delivery as state
from xinyi.webhooks.feed import message_id
from xinyi.webhooks.models import PartnerEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint


class EndpointDeleted(Conflict):
    code = "webhook_endpoint_deleted"
    title = "The endpoint of this delivery was deleted: nothing more is sent to it"


@dataclass(frozen=True)
class AttemptView:
    number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_body: str


@dataclass(frozen=True)
class DeliveryView:
    id: uuid.UUID
    endpoint_id: uuid.UUID
    message_id: str
    event_type: str
    seq: int
    status: str
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None
    attempts: list[AttemptView]


@dataclass(frozen=True)
class Recovered:
    endpoint_id: uuid.UUID
    since: datetime
    requeued: int


@dataclass(frozen=True)
class DeadLetterView:
    delivery_id: uuid.UUID
    partner_id: uuid.UUID
    endpoint_id: uuid.UUID
    message_id: str
    event_type: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    dead_since: datetime | None


def _views(session: Session, rows: list[Any]) -> list[DeliveryView]:
    attempts = state.attempts_of(session, [d.id for d, _e in rows])
    return [DeliveryView(
        id=d.id, endpoint_id=d.endpoint_id, message_id=message_id(e.id), event_type=e.type,
        seq=e.seq, status=d.status, attempt_count=d.attempts, next_attempt_at=d.next_attempt_at,
        last_status_code=d.last_status_code, created_at=d.created_at,
        delivered_at=d.delivered_at,
        attempts=[AttemptView(a.number, a.started_at, a.duration_ms, a.status_code, a.error,
                              a.response_body) for a in attempts[d.id]])
        for d, e in rows]


def list_deliveries(session: Session, partner_id: uuid.UUID, *, page: int, page_size: int,
                    endpoint_id: uuid.UUID | None = None, status: str | None = None,
                    event_type: str | None = None, since: datetime | None = None,
                    ) -> tuple[list[DeliveryView], int]:
    """The partner's deliveries, newest first, each with every attempt."""
    where = [WebhookEndpoint.partner_id == partner_id]
    if endpoint_id is not None:
        where.append(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        where.append(WebhookDelivery.status == status)
    if event_type is not None:
        where.append(PartnerEvent.type == event_type)
    if since is not None:
        where.append(WebhookDelivery.created_at >= since)
    base = (select(WebhookDelivery, PartnerEvent)
            .join(PartnerEvent, PartnerEvent.id == WebhookDelivery.event_id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(*where))
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(base.order_by(WebhookDelivery.created_at.desc(),
                                         PartnerEvent.seq.desc(), WebhookDelivery.id)
                           .limit(page_size).offset((page - 1) * page_size)).all()
    return _views(session, [tuple(r) for r in rows]), total


def _own_delivery(session: Session, partner_id: uuid.UUID, delivery_id: uuid.UUID,
                  ) -> tuple[WebhookDelivery, PartnerEvent, WebhookEndpoint]:
    row = session.execute(
        select(WebhookDelivery, PartnerEvent, WebhookEndpoint)
        .join(PartnerEvent, PartnerEvent.id == WebhookDelivery.event_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id, WebhookEndpoint.partner_id == partner_id)
        .with_for_update(of=WebhookDelivery)).first()
    if row is None:
        raise NotFound("No webhook delivery of yours has this id")
    delivery, event, endpoint = row
    return delivery, event, endpoint


def replay_delivery(session: Session, deps: Deps, partner_id: uuid.UUID,
                    delivery_id: uuid.UUID) -> DeliveryView:
    """Send once more, with the same webhook-id, whatever the delivery's status."""
    delivery, event, endpoint = _own_delivery(session, partner_id, delivery_id)
    if endpoint.deleted_at is not None:
        raise EndpointDeleted()
    state.replay(session, delivery, endpoint, now=deps.clock())
    session.flush()
    return _views(session, [(delivery, event)])[0]


def recover_endpoint(session: Session, deps: Deps, partner_id: uuid.UUID,
                     endpoint_id: uuid.UUID, *, since: datetime) -> Recovered:
    """Re-queue the endpoint's dead (and failed, still waiting) deliveries since ``since``."""
    now = deps.clock()
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.partner_id != partner_id or endpoint.deleted_at is not None:
        raise NotFound("No webhook endpoint of yours has this id")
    if since > now:
        raise ValidationFailed.at("since", "must not be in the future")
    return Recovered(endpoint.id, since, state.recover(session, endpoint, since=since, now=now))


def dead_letters(session: Session, *, page: int, page_size: int,
                 partner_id: uuid.UUID | None = None) -> tuple[list[DeadLetterView], int]:
    """Dead deliveries, the most recent first: who, where, what type, how it ended. No
    payload and no answer body (they are the partner's business)."""
    where = [WebhookDelivery.status == "dead"]
    if partner_id is not None:
        where.append(WebhookEndpoint.partner_id == partner_id)
    last = (select(WebhookAttempt.delivery_id, func.max(WebhookAttempt.number).label("n"),
                   func.max(WebhookAttempt.started_at).label("at"))
            .group_by(WebhookAttempt.delivery_id).subquery())
    base = (select(WebhookDelivery, PartnerEvent.type, PartnerEvent.id.label("event_id"),
                   WebhookEndpoint.partner_id, last.c.at, WebhookAttempt.error)
            .join(PartnerEvent, PartnerEvent.id == WebhookDelivery.event_id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .outerjoin(last, last.c.delivery_id == WebhookDelivery.id)
            .outerjoin(WebhookAttempt, (WebhookAttempt.delivery_id == WebhookDelivery.id)
                       & (WebhookAttempt.number == last.c.n))
            .where(*where))
    total = session.scalar(select(func.count()).select_from(
        select(WebhookDelivery.id).join(WebhookEndpoint,
                                        WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(*where).subquery())) or 0
    rows = session.execute(base.order_by(last.c.at.desc(), WebhookDelivery.id)
                           .limit(page_size).offset((page - 1) * page_size)).all()
    seen: set[uuid.UUID] = set()
    items = []
    for d, event_type, event_id, partner, at, error in rows:
        if d.id in seen:  # two attempts with the same number (a stale worker's): one row
            continue
        seen.add(d.id)
        items.append(DeadLetterView(d.id, partner, d.endpoint_id, message_id(event_id),
                                    event_type, d.attempts, d.last_status_code, error,
                                    d.created_at, at))
    return items, total
