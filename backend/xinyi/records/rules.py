"""The rules of a record itself (信用信息): polarity, severity, the list it may enter, its
display period (展示期限) and earliest repair, kept pure like the scoring rules that read them.

Information past its display period is neither shown nor used (Panzhihua 二.(二)3).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class Severity(StrEnum):
    """How grave a negative record is (轻微 / 一般 / 严重); it fixes display and repair periods."""

    MINOR = "minor"
    GENERAL = "general"
    SERIOUS = "serious"


class Polarity(StrEnum):
    """Whether a record shows trustworthiness (守信) or dishonesty (失信)."""

    POSITIVE = "positive"
    NEGATIVE = "negative"


class CreditList(StrEnum):
    """The red list (红名单) and black list (黑名单) that partners are told about (R5)."""

    RED = "red"
    BLACK = "black"


@dataclass(frozen=True, slots=True)
class SeverityRule:
    """Default periods for a severity; a catalogue item may differ only on a legal basis."""

    display_months: int
    repair_after_months: int
    repairable_by_volunteering: bool


SEVERITY_DEFAULTS: Final[Mapping[Severity, SeverityRule]] = MappingProxyType(
    {
        Severity.MINOR: SeverityRule(3, 0, True),
        Severity.GENERAL: SeverityRule(12, 3, True),
        # Serious dishonesty is never washed away by volunteering alone (DESIGN §7).
        Severity.SERIOUS: SeverityRule(36, 12, False),
    }
)


#: Volunteer hours (志愿服务时长) a repair by volunteering needs, by severity, unless the
#: catalogue item says otherwise (``repair_hours_required``, edited by staff). Serious records
#: have none: volunteering alone never repairs them.
REPAIR_HOURS_DEFAULTS: Final[Mapping[Severity, int | None]] = MappingProxyType(
    {Severity.MINOR: 10, Severity.GENERAL: 40, Severity.SERIOUS: None})


def default_repair_hours(severity: str | None, repairable_by_volunteering: bool) -> int | None:
    """The hours a new catalogue item needs for a repair by volunteering, by its severity."""
    if severity is None or not repairable_by_volunteering:
        return None
    return REPAIR_HOURS_DEFAULTS[Severity(severity)]


def list_for(
    polarity: Polarity, severity: Severity | None, legal_basis: str | None
) -> CreditList | None:
    """Which list, if any, a catalogue item puts a person on.

    Joint reward and joint punishment need a legal basis (R5, 国发〔2016〕33号), so an item
    without one is on no list and restricts nothing; of the negative items only serious ones
    with a legal basis are black-list entries.
    """
    if not legal_basis or not legal_basis.strip():
        return None
    if polarity is Polarity.POSITIVE:
        return CreditList.RED
    if severity is Severity.SERIOUS:
        return CreditList.BLACK
    return None


def add_months(d: date, months: int) -> date:
    """Calendar-month arithmetic clamped to the month's end (Jan 31 + 1 month = Feb 28/29).

    Display periods in the policies are stated in months and years, so they must follow
    the calendar, not a fixed number of days.
    """
    index = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(index, 12)
    month = month0 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def display_until(occurred_on: date, display_months: int) -> date:
    """The first day on which a record is no longer shown or used (exclusive end)."""
    return add_months(occurred_on, display_months)


def is_displayed(occurred_on: date, display_months: int, today: date) -> bool:
    """Whether a record may be shown and used today (R10).

    Shown from its occurrence date and strictly before :func:`display_until`; a record dated
    in the future is not in effect yet.
    """
    return occurred_on <= today < display_until(occurred_on, display_months)


def earliest_repair(occurred_on: date, repair_after_months: int) -> date:
    """The first day a credit repair (信用修复) may be applied for."""
    return add_months(occurred_on, repair_after_months)


@dataclass(frozen=True, slots=True)
class ActiveRecord:
    """A citizen's record joined with its catalogue item, as the score needs it.

    Repaired records are archived and must not be passed here (R9); records past display
    may be passed and are ignored.
    """

    record_id: str
    catalogue_code: str
    name_zh: str
    name_en: str
    polarity: Polarity
    severity: Severity | None
    points: int
    occurred_on: date
    display_months: int
    repair_after_months: int | None
    repairable_by_volunteering: bool
    under_objection: bool = False

    def __post_init__(self) -> None:
        # A sign error would silently turn a penalty into a reward; refuse it at the door.
        if self.polarity is Polarity.POSITIVE and self.points < 0:
            raise ValueError(f"positive record {self.record_id} has negative points")
        if self.polarity is Polarity.NEGATIVE and self.points > 0:
            raise ValueError(f"negative record {self.record_id} has positive points")
        if self.display_months < 0:
            raise ValueError(f"record {self.record_id} has a negative display period")
        if self.repair_after_months is not None and self.repair_after_months < 0:
            raise ValueError(f"record {self.record_id} has a negative repair period")

    @property
    def display_until(self) -> date:
        return display_until(self.occurred_on, self.display_months)

    @property
    def volunteering_allowed(self) -> bool:
        """Volunteering may repair it: never for serious records, whatever the item says."""
        return (
            self.repairable_by_volunteering
            and self.repair_after_months is not None
            and self.severity is not Severity.SERIOUS
        )
