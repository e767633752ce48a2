"""Stored scores (one row per subject), their history, and the benefit rules partners apply."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow
from xinyi.partner_kinds import kind_is_known


class CreditScore(Base):
    __tablename__ = "credit_scores"

    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"), primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(4))
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScoreChange(Base):
    """One computed score that differs from the stored one (or a subject's first score),
    with the rule's inputs as they were: the points of the counted records and the volunteer
    hours bonus. Written by every recompute in the same statement as the new score; append
    only. Scores computed before this table existed have no history."""

    __tablename__ = "score_history"
    __table_args__ = (Index("ix_score_history_subject_computed", "subject_bidx", "computed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    score_from: Mapped[int | None] = mapped_column(Integer)
    score_to: Mapped[int] = mapped_column(Integer)
    tier_from: Mapped[str | None] = mapped_column(String(4))
    tier_to: Mapped[str] = mapped_column(String(4))
    record_points: Mapped[int] = mapped_column(Integer)
    records_counted: Mapped[int] = mapped_column(Integer)
    hours_bonus: Mapped[int] = mapped_column(Integer)


class BenefitRuleRow(Base):
    """A benefit (信用惠民) granted from ``min_score`` up; it cannot express a refusal (R6)."""

    __tablename__ = "benefit_rules"
    # A rule for a kind no partner can have could never be verified.
    __table_args__ = (CheckConstraint(kind_is_known("partner_kind"), name="partner_kind_known"),)

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_kind: Mapped[str] = mapped_column(String(32))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    min_score: Mapped[int] = mapped_column(Integer)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON)
    qr_code: Mapped[str] = mapped_column(String(4), unique=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
