"""Raise and list staff alerts. Callers name the case (``repair:<id>``), never a person."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xinyi.alerts.models import StaffAlert
from xinyi.dbutil import upsert
from xinyi.errors import NotFound


def raise_alert(session: Session, *, kind: str, ref: str, text: str, dedupe_key: str,
                now: datetime) -> None:
    """Add the alert in the caller's unit, unless one with this ``dedupe_key`` exists."""
    upsert(session, StaffAlert.__table__,  # type: ignore[arg-type]
           {"id": uuid.uuid4(), "kind": kind, "ref": ref, "text": text,
            "dedupe_key": dedupe_key, "created_at": now}, key=["dedupe_key"], update=[])


def alerts(session: Session, *, open_only: bool, page: int,
           page_size: int) -> tuple[list[StaffAlert], int]:
    where = [StaffAlert.acknowledged_at.is_(None)] if open_only else []
    total = session.scalar(select(func.count()).select_from(StaffAlert).where(*where)) or 0
    rows = list(session.scalars(select(StaffAlert).where(*where)
                                .order_by(StaffAlert.created_at.desc(), StaffAlert.id)
                                .limit(page_size).offset((page - 1) * page_size)))
    return rows, total


def acknowledge(session: Session, alert_id: uuid.UUID, now: datetime) -> StaffAlert:
    alert = session.get(StaffAlert, alert_id)
    if alert is None:
        raise NotFound("No alert has this id")
    if alert.acknowledged_at is None:
        alert.acknowledged_at = now
    return alert
