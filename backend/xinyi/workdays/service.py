"""Working-day deadlines for the cases that have them (repairs, objections), and the years
staff enter for the calendar (``/v1/admin/calendar``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from xinyi.dbutil import china_date
from xinyi.errors import Conflict, ValidationFailed
from xinyi.workdays import rules
from xinyi.workdays.models import CalendarYear
from xinyi.workdays.rules import Deadline, EnteredYear, Source


class CalendarYearPublished(Conflict):
    code = "calendar_year_published"
    title = "The official calendar package already knows this year"


@dataclass(frozen=True)
class YearView:
    year: int
    source: str
    holidays: list[date]
    workdays: list[date]
    entered_at: datetime | None


def entered_years(session: Session) -> dict[int, EnteredYear]:
    return {row.year: EnteredYear(row.holiday_dates(), row.workday_dates())
            for row in session.scalars(select(CalendarYear))}


def deadline(session: Session, start: date, working_days: int) -> Deadline:
    """``working_days`` working days after ``start``, and whether a year it crosses is not
    known yet (the deadline is then provisional)."""
    return rules.add_working_days(start, working_days, entered_years(session))


@dataclass(frozen=True)
class DeadlineCounts:
    """How a kind of case with a working-day deadline keeps it (the credit office's figures)."""

    decided: int
    decided_on_time: int  # decided on or before its due date (China date of the decision)
    open: int
    open_past_due: int  # still open after its due date


def _how_many(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def deadline_counts(session: Session, *, due_on: Any, decided_at: Any, is_open: Any,
                    today: date) -> DeadlineCounts:
    """One aggregate over a case table, given its columns: ``due_on`` (a date),
    ``decided_at`` (a UTC timestamp, NULL while open) and ``is_open`` (a condition)."""
    decided_on = china_date(session, decided_at)
    decided, on_time, still_open, late = session.execute(select(
        _how_many(~is_open), _how_many(and_(~is_open, decided_on <= due_on)),
        _how_many(is_open), _how_many(and_(is_open, due_on < today)))).one()
    return DeadlineCounts(int(decided), int(on_time), int(still_open), int(late))


def _view(year: int, row: CalendarYear | None, source: Source) -> YearView:
    return YearView(year=year, source=source.value,
                    holidays=sorted(row.holiday_dates()) if row else [],
                    workdays=sorted(row.workday_dates()) if row else [],
                    entered_at=row.entered_at if row else None)


def year_view(session: Session, year: int) -> YearView:
    row = session.get(CalendarYear, year)
    return _view(year, row, rules.source_of(year, entered_years(session)))


def known_years(session: Session, around: int) -> list[YearView]:
    """The years from two before ``around`` to two after, and every year staff entered."""
    rows = {row.year: row for row in session.scalars(select(CalendarYear))}
    entered = {y: EnteredYear(r.holiday_dates(), r.workday_dates()) for y, r in rows.items()}
    years = sorted(set(range(around - 2, around + 3)) | set(rows))
    return [_view(y, rows.get(y), rules.source_of(y, entered)) for y in years]


def _check_days(year: int, holidays: Iterable[date], workdays: Iterable[date]) -> None:
    hol, work = set(holidays), set(workdays)
    problems: list[tuple[str, str]] = []
    if any(d.year != year for d in hol):
        problems.append(("holidays", f"every date must be in {year}"))
    if any(d.year != year for d in work):
        problems.append(("workdays", f"every date must be in {year}"))
    if hol & work:
        problems.append(("workdays", "a day cannot be both a holiday and a working day"))
    if any(d.weekday() < 5 for d in work):
        problems.append(("workdays", "a make-up working day is a Saturday or a Sunday"))
    if problems:
        raise ValidationFailed.at(*problems[0], *problems[1:],
                                  detail="; ".join(f"{f}: {m}" for f, m in problems))


def enter_year(session: Session, year: int, *, holidays: list[date], workdays: list[date],
               now: datetime) -> YearView:
    """Enter (or replace) a year the package does not know. Deadlines computed for it so far
    stay provisional until the worker's recompute runs (``recompute_deadlines``)."""
    if rules.package_knows(year):
        raise CalendarYearPublished(f"The official calendar for {year} is already known; "
                                    "it cannot be overridden")
    _check_days(year, holidays, workdays)
    row = session.get(CalendarYear, year)
    values = {"holidays": sorted(d.isoformat() for d in set(holidays)),
              "workdays": sorted(d.isoformat() for d in set(workdays))}
    if row is None:
        row = CalendarYear(year=year, entered_at=now, **values)
        session.add(row)
    else:
        row.holidays, row.workdays, row.entered_at = values["holidays"], values["workdays"], now
    session.flush()
    return _view(year, row, Source.STAFF)
