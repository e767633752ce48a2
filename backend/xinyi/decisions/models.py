"""A citizen's request for a human review of one automated decision (人工复核)."""

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

OUTCOMES = ("confirmed", "changed")
STATUSES = ("open", *OUTCOMES)


class DecisionReview(Base):
    """The decision is kept as the citizen saw it when asking (``decision``: kind, outcome,
    rule and inputs), so the reviewer judges what was decided even if its source changes."""

    __tablename__ = "decision_reviews"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'confirmed', 'changed')", name="status_known"),
        CheckConstraint("(status = 'open' AND decided_at IS NULL AND decided_by IS NULL "
                        "AND outcome_reason IS NULL) OR "
                        "(status <> 'open' AND decided_at IS NOT NULL AND decided_by IS NOT NULL "
                        "AND outcome_reason IS NOT NULL)", name="decision_complete"),
        # One open review per decision: the database settles a race.
        Index("uq_decision_reviews_open", "decision_id", unique=True,
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
        Index("ix_decision_reviews_status_due", "status", "due_on"),
        Index("ix_decision_reviews_subject", "subject_bidx", "requested_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    decision_id: Mapped[str] = mapped_column(String(100))
    decision_kind: Mapped[str] = mapped_column(String(32))
    decision: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[uuid.UUID | None]
    outcome_reason: Mapped[str | None] = mapped_column(Text)
