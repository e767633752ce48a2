"""Write events into the outbox inside the caller's transaction; delivery is the worker's job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from xinyi.outbox.models import OutboxEvent


def emit(session: Session, topic: str, payload: dict[str, Any], *, now: datetime) -> OutboxEvent:
    """Add an event; it commits or rolls back together with the business change."""
    event = OutboxEvent(topic=topic, payload=payload, created_at=now)
    session.add(event)
    return event


def events_table() -> Table:
    """The outbox table, for bulk writers (``COPY``, ``INSERT … SELECT``) that bypass emit."""
    table = OutboxEvent.__table__
    assert isinstance(table, Table)
    return table
