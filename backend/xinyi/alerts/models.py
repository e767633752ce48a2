"""One alert for the credit office; ``dedupe_key`` makes a sweep that runs twice alert once."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow


class StaffAlert(Base):
    """What needs a member of staff: the text names the case by its id, never a citizen."""

    __tablename__ = "staff_alerts"
    __table_args__ = (Index("ix_staff_alerts_open", "acknowledged_at", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(64))
    ref: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
