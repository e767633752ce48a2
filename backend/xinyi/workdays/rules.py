"""The pure rules of working days: which days count, and a deadline n working days on.

Three sources, in order: the ``chinesecalendar`` package (the official calendar for the years
it knows), a year entered by staff, and otherwise Monday to Friday, which makes every
deadline that touches such a year *provisional* (recomputed when the year becomes known).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

import chinese_calendar


class Source(StrEnum):
    PACKAGE = "package"
    STAFF = "staff"
    PROVISIONAL = "provisional"


@dataclass(frozen=True, slots=True)
class EnteredYear:
    """A year entered by staff: its holidays and its make-up working days."""

    holidays: frozenset[date]
    workdays: frozenset[date]


@dataclass(frozen=True, slots=True)
class Deadline:
    due_on: date
    provisional: bool


def package_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def source_of(year: int, entered: Mapping[int, EnteredYear]) -> Source:
    if package_knows(year):
        return Source.PACKAGE
    return Source.STAFF if year in entered else Source.PROVISIONAL


def is_working_day(day: date, entered: Mapping[int, EnteredYear]) -> tuple[bool, bool]:
    """``(working, provisional)`` for one day."""
    source = source_of(day.year, entered)
    if source is Source.PACKAGE:
        return bool(chinese_calendar.is_workday(day)), False
    if source is Source.STAFF:
        year = entered[day.year]
        if day in year.workdays:
            return True, False
        if day in year.holidays:
            return False, False
        return day.weekday() < 5, False
    return day.weekday() < 5, True


def add_working_days(start: date, days: int, entered: Mapping[int, EnteredYear]) -> Deadline:
    """The ``days``-th working day after ``start`` (the day a case arrives is not counted:
    it is accepted that day, and the count of working days begins the next)."""
    if days < 1:
        raise ValueError("a deadline is at least one working day")
    day, counted, provisional = start, 0, False
    while counted < days:
        day += timedelta(days=1)
        working, unsure = is_working_day(day, entered)
        provisional = provisional or unsure
        counted += working
    return Deadline(day, provisional)
