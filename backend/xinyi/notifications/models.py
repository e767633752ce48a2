"""One notice to one citizen; the inbox is keyed by the citizen's subject."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow


class Notification(Base):
    """A notice rendered from a template of :mod:`xinyi.notify` with ``params`` (never
    personal data: amounts, dates, a partner's name). ``dedupe_key`` makes a sweep that runs
    twice, or on two workers, notify once."""

    __tablename__ = "notifications"
    __table_args__ = (
        # Also the index of every read: each is of one citizen's notices (the inbox counts
        # them all, then sorts that handful by time), found by the leading subject_bidx. A
        # second index on (subject_bidx, created_at) would only make each insert dearer.
        UniqueConstraint("subject_bidx", "dedupe_key", name="uq_notifications_subject_dedupe"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    template: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    ref: Mapped[str | None] = mapped_column(String(100))
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
