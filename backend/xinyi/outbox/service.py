"""Write events into the outbox inside the caller's transaction; delivery is the worker's job."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from xinyi.outbox.models import OutboxEvent


def emit(session: Session, topic: str, payload: dict[str, Any], *, now: datetime,
         partner_id: uuid.UUID | None = None, subject_bidx: bytes | None = None) -> OutboxEvent:
    """Add an event; it commits or rolls back together with the business change.

    ``partner_id``: the one partner the event concerns. ``subject_bidx``: the citizen it is
    about (partners with a live consent hear of it, under their pseudonym). The payload must
    hold no personal data and no subject: the delivery side adds each partner's pseudonym.
    """
    event = OutboxEvent(topic=topic, payload=payload, created_at=now, partner_id=partner_id,
                        subject_bidx=subject_bidx)
    session.add(event)
    return event


def events_table() -> Table:
    """The outbox table, for bulk writers (``COPY``, ``INSERT … SELECT``) that bypass emit."""
    table = OutboxEvent.__table__
    assert isinstance(table, Table)
    return table
