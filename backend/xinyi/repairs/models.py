"""Repair applications and their decisions."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column

from xinyi.db import Base, new_id, utcnow

BASES = ("volunteer_hours", "charity", "fulfilled_obligation")
STATUSES = ("pending", "approved", "rejected")


class RepairApplication(Base):
    """A citizen's application to repair one record. Accepted the day it arrives; a reviewer
    decides by ``due_on`` (working days by the official calendar), once."""

    __tablename__ = "repair_applications"
    __table_args__ = (
        CheckConstraint("basis IN ('volunteer_hours', 'charity', 'fulfilled_obligation')",
                        name="basis_known"),
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
        CheckConstraint("(status = 'pending' AND decided_at IS NULL) OR "
                        "(status <> 'pending' AND decided_at IS NOT NULL "
                        "AND decision_reason IS NOT NULL)", name="decision_complete"),
        # One application under review per record: the database settles a race.
        Index("uq_repair_applications_pending_record", "record_id", unique=True,
              postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
        Index("ix_repair_applications_subject", "subject_bidx", "created_at"),
        Index("ix_repair_applications_status_due", "status", "due_on"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credit_records.id"))
    provider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    catalogue_code: Mapped[str] = mapped_column(String(64))
    basis: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[str | None] = mapped_column(Text)
    commitment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("credit_commitments.id"))
    hours_required: Mapped[int | None] = mapped_column(Integer)
    minutes_claimed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    received_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decision_pdf: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
