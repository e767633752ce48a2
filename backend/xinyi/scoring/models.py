"""Stored scores (one row per subject) and the benefit rules partners apply."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, utcnow
from xinyi.partner_kinds import kind_is_known


class CreditScore(Base):
    __tablename__ = "credit_scores"

    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"), primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(4))
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


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
