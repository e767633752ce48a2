"""Years of the official calendar entered by staff, for years the calendar package does not
know yet (the State Council publishes next year's holidays around November)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Integer
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, utcnow


class CalendarYear(Base):
    """One year's public holidays and make-up working days (调休上班), as the credit office
    entered them from the State Council's notice. Every other day is a working day from
    Monday to Friday."""

    __tablename__ = "calendar_years"
    __table_args__ = (CheckConstraint("year BETWEEN 2000 AND 2200", name="year_plausible"),)

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holidays: Mapped[list[Any]] = mapped_column(JSON)
    workdays: Mapped[list[Any]] = mapped_column(JSON)
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)

    def holiday_dates(self) -> frozenset[date]:
        return frozenset(date.fromisoformat(d) for d in self.holidays)

    def workday_dates(self) -> frozenset[date]:
        return frozenset(date.fromisoformat(d) for d in self.workdays)
