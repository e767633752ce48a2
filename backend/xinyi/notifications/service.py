"""Notify a citizen: an inbox entry in the caller's unit, and an SMS once that unit commits.

Callers (benefit sessions, repairs, objections, rights) name a template of
:mod:`xinyi.notify` and its parameters; nothing personal goes into either. The SMS is sent
after the commit, so a notice whose change rolled back never reaches a phone; a notice with a
``dedupe_key`` is written at most once per citizen, however often a sweep runs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, literal, select, update
from sqlalchemy.orm import Session

from xinyi.citizens.service import citizen_bidx, citizen_phone
from xinyi.dbutil import insert_for, time_ordered_uuid_sql
from xinyi.deps import Deps
from xinyi.errors import NotFound
from xinyi.jsonable import row
from xinyi.notifications.models import Notification
from xinyi.notify import TEMPLATES, Message
from xinyi.uow import after_commit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotificationView:
    id: uuid.UUID
    template: str
    text: str
    params: Mapping[str, str]
    ref: str | None
    created_at: datetime
    read: bool
    read_at: datetime | None


def _view(n: Notification) -> NotificationView:
    message = Message(n.template, n.params)
    return NotificationView(id=n.id, template=n.template, text=message.text(), params=n.params,
                            ref=n.ref, created_at=n.created_at, read=n.read_at is not None,
                            read_at=n.read_at)


def notify(session: Session, deps: Deps, subject_bidx: bytes, template: str,
           params: Mapping[str, str], *, now: datetime, ref: str | None = None,
           dedupe_key: str | None = None, sms: bool = False) -> bool:
    """Put a notice in the citizen's inbox (and text them once the unit commits, if ``sms``).

    Returns False, changing nothing, when a notice with this ``dedupe_key`` already exists.
    A subject without a citizen account still gets the inbox entry (it shows once they
    register); the SMS needs an account."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown notification template {template!r}")
    values = {k: str(v) for k, v in params.items()}
    Message(template, values).text()  # a notice that cannot render fails in its caller's unit
    if dedupe_key is not None and session.scalar(
            select(Notification.id).where(Notification.subject_bidx == subject_bidx,
                                          Notification.dedupe_key == dedupe_key)) is not None:
        return False
    session.add(Notification(subject_bidx=subject_bidx, template=template, params=values,
                             ref=ref, dedupe_key=dedupe_key, created_at=now))
    session.flush()
    if sms:
        phone = citizen_phone(session, deps, subject_bidx)
        if phone is not None:
            message = Message(template, values)
            after_commit(session, lambda: deps.sender.send_sms(phone, message))
    return True


def inbox(session: Session, account_id: uuid.UUID, *, unread: bool | None, page: int,
          page_size: int) -> tuple[list[NotificationView], int, int]:
    """The citizen's notices, newest first: ``(page, total matching, unread in all)``."""
    bidx = citizen_bidx(session, account_id)
    mine = [Notification.subject_bidx == bidx]
    if unread is True:
        mine.append(Notification.read_at.is_(None))
    elif unread is False:
        mine.append(Notification.read_at.is_not(None))
    total = int(session.scalar(select(func.count()).select_from(Notification).where(*mine)) or 0)
    unread_count = int(session.scalar(select(func.count()).select_from(Notification).where(
        Notification.subject_bidx == bidx, Notification.read_at.is_(None))) or 0)
    rows = session.scalars(select(Notification).where(*mine)
                           .order_by(Notification.created_at.desc(), Notification.id.desc())
                           .offset((page - 1) * page_size).limit(page_size))
    return [_view(n) for n in rows], total, unread_count


def mark_read(session: Session, deps: Deps, account_id: uuid.UUID,
              notification_id: uuid.UUID) -> NotificationView:
    """Mark one of the citizen's notices read (again: a no-op); another's is 404."""
    bidx = citizen_bidx(session, account_id)
    notice = session.scalar(select(Notification).where(Notification.id == notification_id,
                                                       Notification.subject_bidx == bidx))
    if notice is None:
        raise NotFound("No such notification")
    if notice.read_at is None:
        session.execute(update(Notification).where(Notification.id == notice.id,
                                                   Notification.read_at.is_(None))
                        .values(read_at=deps.clock()))
        session.refresh(notice)
    return _view(notice)


_CHUNK = 5000  # rows per statement: 8 columns each stay under PostgreSQL's 65,535 parameters


@dataclass(frozen=True)
class Notice:
    """One notice of a bulk write (:func:`notify_many`)."""

    subject_bidx: bytes
    template: str
    params: Mapping[str, str]
    ref: str | None
    dedupe_key: str


def notify_many(session: Session, notices: list[Notice], *, now: datetime) -> None:
    """Inbox entries for a sweep, in one statement; a notice whose ``dedupe_key`` the
    citizen already has is skipped (a sweep run twice, or by two workers, notifies once).
    Inbox only: a sweep texts nobody (bulk SMS would go out before the unit commits)."""
    if not notices:
        return
    rows = []
    for n in notices:
        if n.template not in TEMPLATES:
            raise ValueError(f"unknown notification template {n.template!r}")
        values = {k: str(v) for k, v in n.params.items()}
        Message(n.template, values).text()
        rows.append({"id": uuid.uuid4(), "subject_bidx": n.subject_bidx,
                     "template": n.template, "params": values, "ref": n.ref,
                     "dedupe_key": n.dedupe_key, "created_at": now, "read_at": None})
    stmt: Any = insert_for(session, Notification.__table__)  # type: ignore[arg-type]
    # One multi-row INSERT per chunk (not executemany: a round trip per row).
    for start in range(0, len(rows), _CHUNK):
        session.execute(stmt.values(rows[start:start + _CHUNK]).on_conflict_do_nothing(
            index_elements=["subject_bidx", "dedupe_key"]))


def notify_from_select(session: Session, template: str, rows: Select[Any], *,
                       now: datetime) -> None:
    """PostgreSQL: inbox entries straight from a query of ``(subject_bidx, params (JSON),
    ref, dedupe_key)``, in one ``INSERT … SELECT`` (a sweep over many rows never brings them
    into Python); a dedupe key the citizen already has is skipped. Inbox only, no SMS."""
    session.execute(notices_from_select(session, template, rows, now=now))


def notices_from_select(session: Session, template: str, rows: Select[Any], *,
                        now: datetime) -> Any:
    """The statement :func:`notify_from_select` runs, not executed: a PostgreSQL
    ``INSERT … SELECT … ON CONFLICT DO NOTHING`` a caller can also put in a data-modifying
    CTE (``.cte()``), so the inbox entries are written by the statement that changes the
    rows they are about."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown notification template {template!r}")
    source = rows.subquery("notices")
    cols = list(source.c)
    stmt: Any = insert_for(session, Notification.__table__)  # type: ignore[arg-type]
    return stmt.from_select(
        ["id", "subject_bidx", "template", "params", "ref", "dedupe_key", "created_at"],
        select(time_ordered_uuid_sql(), cols[0], literal(template), cols[1], cols[2], cols[3],
               literal(now, Notification.created_at.type))) \
        .on_conflict_do_nothing(index_elements=["subject_bidx", "dedupe_key"])


def export_notifications(session: Session, deps: Deps, account_id: uuid.UUID,
                         bidx: bytes) -> list[dict[str, Any]]:
    """Every notice in the citizen's inbox, read or not, with its text (export)."""
    return [row(view, "id", "template", "text", "params", "ref", "created_at", "read_at")
            for view in (_view(n) for n in session.scalars(
                select(Notification).where(Notification.subject_bidx == bidx)
                .order_by(Notification.created_at, Notification.id)))]
def forget(session: Session, subject_bidx: bytes, *, before: datetime | None = None) -> int:
    """Empty the citizen's inbox (a closed account); with ``before``, only notices made until
    then (a replay after a restore keeps a later registration's). Returns how many."""
    where = [Notification.subject_bidx == subject_bidx]
    if before is not None:
        where.append(Notification.created_at <= before)
    result = session.execute(delete(Notification).where(*where))
    return int(result.rowcount)  # type: ignore[attr-defined]
