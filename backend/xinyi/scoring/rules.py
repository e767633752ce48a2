"""The credit rules (信用评分规则), kept pure so they can be read, tested and trusted alone.

Nothing here touches a database, a clock or a request: callers pass the records, the
volunteer hours and *today* (a date in Asia/Shanghai), and get back a value. That keeps the
score reproducible — the same inputs always explain the same number — which is what a citizen
who asks "why is my score what it is" is owed (R6, R10).

Two policy limits shape this module:

* The score only ever grants (Shandong 十四五 规划 二.(七): a personal credit score must not be
  used for joint punishment nor to limit basic public services). A :class:`BenefitRule`
  therefore has nothing but a minimum score for a waiver or an extension; missing it means
  "standard terms", never "refuse".
* Information past its display period (展示期限) is neither shown nor used (Panzhihua
  二.(二)3), so every rule first drops records that are no longer displayed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from xinyi.records.rules import (
    SEVERITY_DEFAULTS,
    ActiveRecord,
    CreditList,
    Polarity,
    Severity,
    SeverityRule,
    add_months,
    display_until,
    earliest_repair,
    is_displayed,
    list_for,
)

# The record rules are part of the vocabulary of the scoring rules.
__all__ = ["SEVERITY_DEFAULTS", "ActiveRecord", "CreditList", "Polarity", "Severity",
           "SeverityRule", "add_months", "display_until", "earliest_repair", "is_displayed",
           "list_for"]

SCORE_MIN: Final = 350
SCORE_MAX: Final = 950
SCORE_BASE: Final = 600

#: Lowest score of each tier, best first; a score below every threshold is :data:`TIER_LOWEST`.
TIER_THRESHOLDS: Final[tuple[tuple[str, int], ...]] = (
    ("AAA", 800),
    ("AA", 700),
    ("A", 600),
    ("B", 500),
)
TIER_LOWEST: Final = "C"

#: Volunteer hours (志愿服务时长) add one point per *full* hour, at most 50 points per
#: calendar year. Full hours only, so splitting service into many short posts gains nothing;
#: the cap keeps volunteering a way to show good faith, not a way to buy a tier.
HOURS_BONUS_POINTS_PER_HOUR: Final = 1
HOURS_BONUS_YEARLY_CAP: Final = 50


def clamp_score(raw: int) -> int:
    """Bound a raw sum to the published range so no record can push a score off the scale."""
    return max(SCORE_MIN, min(SCORE_MAX, raw))


def tier_for(score: int) -> str:
    """The letter tier shown on the honesty card (AAA ≥ 800, AA ≥ 700, A ≥ 600, B ≥ 500, C)."""
    for tier, lowest in TIER_THRESHOLDS:
        if score >= lowest:
            return tier
    return TIER_LOWEST


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one displayed record adds to (or takes from) the score, and until when."""

    record_id: str
    catalogue_code: str
    points: int
    display_until: date


class NextStepKind(StrEnum):
    REPAIR_BY_VOLUNTEERING = "repair_by_volunteering"
    REPAIR_BY_APPLICATION = "repair_by_application"
    LEAVES_DISPLAY = "leaves_display"
    VOLUNTEER_HOURS = "volunteer_hours"


@dataclass(frozen=True, slots=True)
class NextStep:
    """Something the citizen can do or expect; ``kind`` is a :class:`NextStepKind` value."""

    kind: str
    record_id: str | None
    text_zh: str
    text_en: str
    available_from: date | None


@dataclass(frozen=True, slots=True)
class ScoreExplanation:
    """The score together with every reason for it, so the citizen can check the sum."""

    score: int
    tier: str
    contributions: tuple[Contribution, ...]
    hours_bonus: int
    next_steps: tuple[NextStep, ...]


def hours_bonus(hours_this_year: Decimal) -> int:
    """Points for this calendar year's verified volunteer hours (full hours, capped)."""
    if not hours_this_year.is_finite():
        raise ValueError("volunteer hours must be a finite number")
    if hours_this_year <= 0:
        return 0
    full_hours = int(hours_this_year.to_integral_value(rounding=ROUND_FLOOR))
    return min(full_hours * HOURS_BONUS_POINTS_PER_HOUR, HOURS_BONUS_YEARLY_CAP)


def _zh_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _repair_step(record: ActiveRecord, today: date) -> NextStep | None:
    if record.repair_after_months is None:
        return None
    opens = earliest_repair(record.occurred_on, record.repair_after_months)
    if opens >= record.display_until:
        return None  # it leaves the display before a repair could be decided
    available = max(opens, today)
    now = available == today
    when_zh = "现在即可" if now else f"自{_zh_date(available)}起可"
    when_en = "now" if now else f"from {available.isoformat()}"
    if record.volunteering_allowed:
        return NextStep(
            kind=NextStepKind.REPAIR_BY_VOLUNTEERING,
            record_id=record.record_id,
            text_zh=f"{when_zh}通过志愿服务申请修复“{record.name_zh}”。",
            text_en=f"You can repair “{record.name_en}” through volunteer service {when_en}.",
            available_from=available,
        )
    return NextStep(
        kind=NextStepKind.REPAIR_BY_APPLICATION,
        record_id=record.record_id,
        text_zh=f"{when_zh}提交已纠正失信行为的证明材料，申请修复“{record.name_zh}”。",
        text_en=(
            f"You can apply for credit repair of “{record.name_en}” {when_en}, "
            "with proof that you have corrected it."
        ),
        available_from=available,
    )


def _leaves_display_step(record: ActiveRecord) -> NextStep:
    until = record.display_until
    return NextStep(
        kind=NextStepKind.LEAVES_DISPLAY,
        record_id=record.record_id,
        text_zh=f"“{record.name_zh}”将于{_zh_date(until)}起不再展示，也不再计入评分。",
        text_en=f"“{record.name_en}” stops being shown or counted on {until.isoformat()}.",
        available_from=until,
    )


def explain(
    records: Iterable[ActiveRecord], hours_this_year: Decimal, today: date
) -> ScoreExplanation:
    """Compute the score and say why: every contribution and what the citizen can do next.

    score = clamp(600 + Σ points of displayed records + volunteer-hours bonus, 350, 950).
    """
    shown = [r for r in records if is_displayed(r.occurred_on, r.display_months, today)]
    shown.sort(key=lambda r: (-abs(r.points), r.record_id))
    bonus = hours_bonus(hours_this_year)
    score = clamp_score(SCORE_BASE + sum(r.points for r in shown) + bonus)

    contributions = tuple(
        Contribution(r.record_id, r.catalogue_code, r.points, r.display_until) for r in shown
    )
    steps: list[NextStep] = []
    for record in shown:
        if record.polarity is not Polarity.NEGATIVE:
            continue
        repair = _repair_step(record, today)
        if repair is not None:
            steps.append(repair)
        steps.append(_leaves_display_step(record))
    remaining = HOURS_BONUS_YEARLY_CAP - bonus
    if remaining > 0 and score < SCORE_MAX:
        steps.append(
            NextStep(
                kind=NextStepKind.VOLUNTEER_HOURS,
                record_id=None,
                text_zh=f"今年的志愿服务时长最多还可为您增加{remaining}分。",
                text_en=f"Volunteer hours can add up to {remaining} more points this year.",
                available_from=None,
            )
        )
    return ScoreExplanation(score, tier_for(score), contributions, bonus, tuple(steps))


def years_without_negative(
    records: Iterable[ActiveRecord], history_start: date, today: date
) -> int:
    """Whole years with no displayed negative record, for "连续3年以上无不良信用记录" (R5).

    Counted from the later of ``history_start`` (when the person's record history begins)
    and the most recent displayed negative record; records past display, like repaired
    ones, may not be used against anyone (R9, R10), so they do not interrupt the count.
    """
    start = history_start
    for r in records:
        if r.polarity is Polarity.NEGATIVE and is_displayed(r.occurred_on, r.display_months, today):
            start = max(start, r.occurred_on)
    if start > today:
        return 0
    years = today.year - start.year
    while years > 0 and add_months(start, 12 * years) > today:
        years -= 1
    return years


#: Keys of :attr:`BenefitRule.limits` that are extra conditions, not amounts granted.
CONDITION_KEYS: Final = frozenset({"clean_years"})


@dataclass(frozen=True, slots=True)
class BenefitRule:
    """A benefit (信用惠民) a partner grants from a minimum score upwards.

    The score only ever grants a benefit (R6): a rule can waive a deposit or extend a credit
    line, and it has no way to express a refusal of service. A person below ``min_score``
    gets ``standard_terms`` — served exactly as anyone without the card would be.
    Restrictions come only from black-list records that carry a legal basis, never from here.

    ``limits`` holds integer amounts (money in fen) granted when eligible, plus the optional
    condition ``clean_years`` (whole years without a displayed negative record, as for the
    容缺受理 green channel).
    """

    code: str
    partner_kind: str
    name_zh: str
    name_en: str
    min_score: int
    limits: Mapping[str, int] = field(hash=False)

    def __post_init__(self) -> None:
        if not SCORE_MIN <= self.min_score <= SCORE_MAX:
            raise ValueError(f"benefit {self.code}: min_score outside {SCORE_MIN}..{SCORE_MAX}")
        for key, value in self.limits.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"benefit {self.code}: limit {key} must be an integer ≥ 0")
        # Freeze a private copy so a caller's dict cannot change a rule after validation.
        object.__setattr__(self, "limits", MappingProxyType(dict(self.limits)))

    @property
    def grants(self) -> Mapping[str, int]:
        """The amounts granted, without the conditions."""
        return {k: v for k, v in self.limits.items() if k not in CONDITION_KEYS}


def eligible(rule: BenefitRule, score: int, *, clean_years: int | None = None) -> bool:
    """Whether the benefit is granted; ``False`` means standard terms, never a refusal.

    A rule with a ``clean_years`` condition is granted only when the caller states the
    person's clean years (see :func:`years_without_negative`); not knowing them means the
    benefit is not granted, which leaves the person on standard terms.
    """
    if score < rule.min_score:
        return False
    required = rule.limits.get("clean_years")
    return required is None or (clean_years is not None and clean_years >= required)
