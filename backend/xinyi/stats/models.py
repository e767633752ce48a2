"""The districts whose resident population staff set: the denominator of score coverage."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, utcnow


class District(Base):
    """An administrative division (行政区划) by its six-digit code (GB/T 2260), the code a
    resident ID number starts with. ``resident_population`` NULL: not known yet."""

    __tablename__ = "districts"
    __table_args__ = (
        CheckConstraint("length(code) = 6", name="code_six_digits"),
        CheckConstraint("resident_population IS NULL OR resident_population > 0",
                        name="population_positive"),
    )

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    resident_population: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
