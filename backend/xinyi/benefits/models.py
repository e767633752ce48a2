"""Benefit sessions, each citizen's open exposure, and the session terms of each benefit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow

STATES = ("open", "fulfilled", "cancelled", "overdue", "defaulted", "settled", "recorded")
# The states whose waived amount counts against the citizen's exposure cap.
HELD_STATES = ("open", "overdue")


class BenefitSession(Base):
    """One session opened on an ``eligible`` verification (at most one per verification).

    ``waived_fen`` is the part covered on credit, held against the citizen's exposure while
    the session is open or overdue; ``charge_normally_fen`` the rest of ``amount_fen``."""

    __tablename__ = "benefit_sessions"
    __table_args__ = (
        CheckConstraint(f"state IN ({', '.join(repr(s) for s in STATES)})",
                        name="benefit_session_state_known"),
        CheckConstraint("amount_fen > 0 AND waived_fen >= 0 AND charge_normally_fen >= 0 "
                        "AND waived_fen + charge_normally_fen = amount_fen",
                        name="benefit_session_amounts_split"),
        CheckConstraint("amount_owed_fen IS NULL OR amount_owed_fen >= 0",
                        name="benefit_session_owed_not_negative"),
        CheckConstraint("defaulted_by IS NULL OR defaulted_by IN ('system', 'partner')",
                        name="benefit_session_defaulted_by_known"),
        Index("ix_benefit_sessions_state_due", "state", "due_at"),
        Index("ix_benefit_sessions_state_grace", "state", "grace_until"),
        Index("ix_benefit_sessions_subject_created", "subject_bidx", "created_at"),
        Index("ix_benefit_sessions_partner_created", "partner_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    verification_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("verifications.id"),
                                                       unique=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    benefit_code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="open")
    amount_fen: Mapped[int] = mapped_column(Integer)
    waived_fen: Mapped[int] = mapped_column(Integer)
    charge_normally_fen: Mapped[int] = mapped_column(Integer)
    amount_owed_fen: Mapped[int | None] = mapped_column(Integer)
    due_at: Mapped[datetime]
    original_due_at: Mapped[datetime]
    reference: Mapped[str] = mapped_column(String(100))
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    overdue_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    defaulted_at: Mapped[datetime | None]
    # Who declared the default: the sweep (30 days after the due date, by itself) or the
    # partner's close. Sessions defaulted before this column existed have NULL.
    defaulted_by: Mapped[str | None] = mapped_column(String(8))
    grace_until: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]
    recorded_at: Mapped[datetime | None]
    record_id: Mapped[uuid.UUID | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Exposure(Base):
    """The sum of one citizen's held waived amounts, across all partners.

    Raised only by a guarded ``UPDATE … WHERE open_fen + w <= cap`` that also stores the cap
    it was checked against; the CHECK keeps ``open_fen`` within it and never negative."""

    __tablename__ = "benefit_exposure"
    __table_args__ = (
        CheckConstraint("open_fen >= 0", name="benefit_exposure_not_negative"),
        CheckConstraint("open_fen <= cap_fen", name="benefit_exposure_within_cap"),
    )

    subject_bidx: Mapped[bytes] = mapped_column(LargeBinary(32), ForeignKey("subjects.bidx"),
                                                primary_key=True)
    open_fen: Mapped[int] = mapped_column(Integer, default=0)
    cap_fen: Mapped[int] = mapped_column(Integer, default=0)
    #: What the last open added (0 to its wish): the hold's upsert returns it, since its
    #: RETURNING sees only the row after the change.
    last_hold_fen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SessionTerms(Base):
    """A benefit's session terms, editable by staff: the grace days after a default and the
    exposure cap per tier. A benefit without a row has the defaults."""

    __tablename__ = "benefit_session_terms"
    __table_args__ = (CheckConstraint("grace_days >= 0 AND grace_days <= 90",
                                      name="benefit_terms_grace_days_range"),)

    benefit_code: Mapped[str] = mapped_column(ForeignKey("benefit_rules.code"),
                                              primary_key=True)
    grace_days: Mapped[int] = mapped_column(Integer, default=7)
    exposure_caps: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
