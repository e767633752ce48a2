"""Working days by the official PRC calendar: the package's years, staff-entered years, and
Monday to Friday (provisional) for a year neither knows."""

from __future__ import annotations

from datetime import date

import pytest

from xinyi.workdays.rules import EnteredYear, Source, add_working_days, is_working_day, source_of


@pytest.mark.parametrize("day", [date(2026, 1, 4), date(2026, 10, 10)])
def test_2026_make_up_days_are_working_days(day: date) -> None:
    assert day.weekday() >= 5  # a weekend day…
    assert is_working_day(day, {}) == (True, False)  # …worked to make up a holiday


@pytest.mark.parametrize("day", [date(2026, 10, 1), date(2026, 10, 7), date(2026, 1, 1)])
def test_2026_public_holidays_are_not(day: date) -> None:
    assert is_working_day(day, {}) == (False, False)


def test_a_deadline_across_the_national_day_holiday() -> None:
    # Arrives Wed 30 Sep 2026; 1–7 Oct are off, Sat 10 Oct is worked.
    assert add_working_days(date(2026, 9, 30), 3, {}).due_on == date(2026, 10, 10)


def test_a_deadline_into_an_unknown_year_is_provisional_then_firm_once_entered() -> None:
    assert source_of(2027, {}) is Source.PROVISIONAL
    guess = add_working_days(date(2026, 12, 30), 3, {})
    # 31 Dec (Thu), then 1 Jan 2027 (Fri) and 4 Jan (Mon), counted Monday to Friday.
    assert guess.due_on == date(2027, 1, 4) and guess.provisional
    entered = {2027: EnteredYear(holidays=frozenset({date(2027, 1, 1)}),
                                 workdays=frozenset())}
    firm = add_working_days(date(2026, 12, 30), 3, entered)
    assert firm.due_on == date(2027, 1, 5) and not firm.provisional
    assert source_of(2027, entered) is Source.STAFF


def test_staff_entered_make_up_days_count() -> None:
    entered = {2027: EnteredYear(holidays=frozenset(), workdays=frozenset({date(2027, 2, 6)}))}
    assert is_working_day(date(2027, 2, 6), entered) == (True, False)
    assert is_working_day(date(2027, 2, 7), entered) == (False, False)


def test_a_deadline_within_a_known_year_is_not_provisional() -> None:
    assert not add_working_days(date(2026, 3, 2), 15, {}).provisional
