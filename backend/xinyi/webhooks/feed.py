"""The per-partner event feed (``GET /v1/partner/events``) and the message body.

A message is the same envelope whether a partner reads it from the feed or receives it as a
webhook (Standard Webhooks style)::

    {"type": "list.black_added", "timestamp": "2026-12-01T08:00:00+00:00",
     "data": {...}, "seq": 42, "id": "msg_…", "version": 1}

``id`` is also the ``webhook-id`` header, the same on every retry and replay; ``seq``
increases by one per event of that partner, so a receiver that sees a gap reads the feed
from its last ``seq``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xinyi.webhooks.models import PartnerEvent

MESSAGE_PREFIX = "msg_"


def message_id(event_id: uuid.UUID) -> str:
    """The ``webhook-id`` of an event (and its ``id`` in the feed)."""
    return MESSAGE_PREFIX + event_id.hex


def _envelope(event_id: uuid.UUID, type_: str, created_at: datetime, payload: dict[str, Any],
              seq: int, version: int) -> dict[str, Any]:
    return {"type": type_, "timestamp": created_at.isoformat(), "data": payload, "seq": seq,
            "id": message_id(event_id), "version": version}


def envelope(event: PartnerEvent) -> dict[str, Any]:
    return _envelope(event.id, event.type, event.created_at, event.payload, event.seq,
                     event.version)


def body_of(event_id: uuid.UUID, type_: str, created_at: datetime, payload: dict[str, Any],
            seq: int, version: int) -> bytes:
    """:func:`message_body` from an event's columns (the delivery worker reads rows, not ORM
    objects)."""
    return json.dumps(_envelope(event_id, type_, created_at, payload, seq, version),
                      ensure_ascii=False, separators=(",", ":")).encode()


def message_body(event: PartnerEvent) -> bytes:
    """The exact bytes sent as a webhook body (and signed): one function for both sides."""
    return body_of(event.id, event.type, event.created_at, event.payload, event.seq,
                   event.version)


@dataclass(frozen=True)
class FeedPage:
    items: list[dict[str, Any]]
    next_after: int


def events_after(session: Session, partner_id: uuid.UUID, *, after: int,
                 limit: int) -> FeedPage:
    """The partner's events with ``seq > after``, in order; ``next_after`` is the last
    ``seq`` returned (``after`` itself when there is nothing new), the cursor to pass next."""
    rows = list(session.scalars(
        select(PartnerEvent).where(PartnerEvent.partner_id == partner_id,
                                   PartnerEvent.seq > after)
        .order_by(PartnerEvent.seq).limit(limit)))
    items = [{**envelope(e), "created_at": e.created_at} for e in rows]
    return FeedPage(items, rows[-1].seq if rows else after)
