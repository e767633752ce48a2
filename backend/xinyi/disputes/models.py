"""One objection (异议) to one record."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow

OUTCOMES = ("corrected", "deleted", "upheld")


class Dispute(Base):
    __tablename__ = "disputes"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'corrected', 'deleted', 'upheld')",
                        name="status_known"),
        CheckConstraint("(status = 'open' AND resolved_at IS NULL) OR "
                        "(status <> 'open' AND resolved_at IS NOT NULL "
                        "AND resolution_reason IS NOT NULL)", name="resolution_complete"),
        CheckConstraint("resolved_by_kind IS NULL OR resolved_by_kind IN ('provider', "
                        "'reviewer')", name="resolver_known"),
        # One open objection per record: the database settles a race.
        Index("uq_disputes_open_record", "record_id", unique=True,
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
        Index("ix_disputes_provider_status", "provider_id", "status", "due_on"),
        Index("ix_disputes_subject", "subject_bidx", "filed_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credit_records.id"))
    provider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    catalogue_code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    filed_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    resolved_at: Mapped[datetime | None]
    resolved_by_kind: Mapped[str | None] = mapped_column(String(16))
    resolved_by_id: Mapped[uuid.UUID | None]
    resolution_reason: Mapped[str | None] = mapped_column(Text)
    correction: Mapped[dict[str, Any] | None] = mapped_column(JSON)
