"""Write events into the outbox inside the caller's transaction; delivery is the worker's job."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

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


@dataclass(frozen=True)
class Pending:
    """An outbox event not yet handed on, as the webhooks dispatcher reads it."""

    id: uuid.UUID
    topic: str
    payload: dict[str, Any]
    partner_id: uuid.UUID | None
    subject_bidx: bytes | None
    created_at: datetime


def pending(session: Session, *, limit: int) -> list[Pending]:
    """The oldest events not yet published, in (created_at, id) order."""
    rows = session.execute(
        select(OutboxEvent.id, OutboxEvent.topic, OutboxEvent.payload, OutboxEvent.partner_id,
               OutboxEvent.subject_bidx, OutboxEvent.created_at)
        .where(OutboxEvent.published_at.is_(None))
        .order_by(OutboxEvent.created_at, OutboxEvent.id).limit(limit))
    return [Pending(r.id, r.topic, r.payload, r.partner_id,
                    None if r.subject_bidx is None else bytes(r.subject_bidx), r.created_at)
            for r in rows]


def mark_published(session: Session, ids: Sequence[uuid.UUID], now: datetime) -> None:
    if ids:
        session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(list(ids)),
                                                  OutboxEvent.published_at.is_(None))
                        .values(published_at=now).execution_options(synchronize_session=False))


def purge_published(session: Session, before: datetime, *,
                    keep: Callable[[Any], ColumnElement[bool]], batch: int) -> int:
    """Delete up to ``batch`` events published before ``before``, except those for which
    ``keep(outbox_id_column)`` holds (an EXISTS of a row that still refers to them)."""
    ids = list(session.scalars(
        select(OutboxEvent.id).where(OutboxEvent.published_at.is_not(None),
                                     OutboxEvent.published_at < before,
                                     ~keep(OutboxEvent.id))
        .order_by(OutboxEvent.published_at).limit(batch)))
    if ids:
        session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(ids))
                        .execution_options(synchronize_session=False))
    return len(ids)
