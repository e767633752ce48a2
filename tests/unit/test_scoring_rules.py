"""The pure credit rules: score range, tiers, display periods, repair steps, benefits."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xinyi.scoring.rules import (
    HOURS_BONUS_YEARLY_CAP,
    SCORE_BASE,
    SCORE_MAX,
    SCORE_MIN,
    SEVERITY_DEFAULTS,
    ActiveRecord,
    BenefitRule,
    CreditList,
    NextStepKind,
    Polarity,
    Severity,
    add_months,
    display_until,
    earliest_repair,
    eligible,
    explain,
    hours_bonus,
    is_displayed,
    list_for,
    tier_for,
    years_without_negative,
)

TODAY = date(2025, 7, 1)
NO_HOURS = Decimal(0)


def negative(
    record_id: str = "r-neg",
    *,
    severity: Severity = Severity.MINOR,
    points: int = -10,
    occurred_on: date = date(2025, 6, 1),
    display_months: int | None = None,
    repair_after_months: int | None = -1,
    repairable_by_volunteering: bool | None = None,
) -> ActiveRecord:
    """A negative record with its severity's default periods unless told otherwise."""
    rule = SEVERITY_DEFAULTS[severity]
    return ActiveRecord(
        record_id=record_id,
        catalogue_code=f"test.{severity}",
        name_zh="测试失信记录",
        name_en="Test negative record",
        polarity=Polarity.NEGATIVE,
        severity=severity,
        points=points,
        occurred_on=occurred_on,
        display_months=rule.display_months if display_months is None else display_months,
        repair_after_months=(
            rule.repair_after_months if repair_after_months == -1 else repair_after_months
        ),
        repairable_by_volunteering=(
            rule.repairable_by_volunteering
            if repairable_by_volunteering is None
            else repairable_by_volunteering
        ),
    )


def positive(
    record_id: str = "r-pos",
    *,
    points: int = 20,
    occurred_on: date = date(2025, 1, 1),
    display_months: int = 36,
) -> ActiveRecord:
    return ActiveRecord(
        record_id=record_id,
        catalogue_code="test.positive",
        name_zh="测试守信记录",
        name_en="Test positive record",
        polarity=Polarity.POSITIVE,
        severity=None,
        points=points,
        occurred_on=occurred_on,
        display_months=display_months,
        repair_after_months=None,
        repairable_by_volunteering=False,
    )


def benefit(min_score: int = 600, **limits: int) -> BenefitRule:
    return BenefitRule(
        code="test.deposit_free",
        partner_kind="library",
        name_zh="免押借书",
        name_en="Deposit-free lending",
        min_score=min_score,
        limits=limits or {"deposit_waived_fen": 10000},
    )


# --- range and tiers ---------------------------------------------------------------------


def test_a_person_with_no_records_starts_at_the_base_score() -> None:
    result = explain([], NO_HOURS, TODAY)
    assert result.score == SCORE_BASE == 600
    assert result.tier == "A"
    assert result.contributions == ()


def test_score_is_clamped_at_the_bottom_of_the_range() -> None:
    records = [negative(f"r{i}", severity=Severity.SERIOUS, points=-200) for i in range(3)]
    assert explain(records, NO_HOURS, TODAY).score == SCORE_MIN == 350


def test_score_is_clamped_at_the_top_of_the_range() -> None:
    records = [positive(f"r{i}", points=60) for i in range(10)]
    result = explain(records, Decimal(50), TODAY)
    assert result.score == SCORE_MAX == 950
    assert result.tier == "AAA"


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        (350, "C"),
        (499, "C"),
        (500, "B"),
        (599, "B"),
        (600, "A"),
        (699, "A"),
        (700, "AA"),
        (799, "AA"),
        (800, "AAA"),
        (950, "AAA"),
    ],
)
def test_tier_boundaries(score: int, tier: str) -> None:
    assert tier_for(score) == tier


# --- calendar arithmetic -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2025, 1, 31), 1, date(2025, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2025, 3, 31), 1, date(2025, 4, 30)),
        (date(2025, 11, 15), 3, date(2026, 2, 15)),
        (date(2025, 12, 31), 36, date(2028, 12, 31)),
        (date(2025, 5, 20), 0, date(2025, 5, 20)),
        (date(2025, 3, 31), -1, date(2025, 2, 28)),
    ],
)
def test_add_months_follows_the_calendar_and_clamps_to_month_end(
    start: date, months: int, expected: date
) -> None:
    assert add_months(start, months) == expected


def test_a_record_is_shown_strictly_before_its_display_until_date() -> None:
    occurred = date(2025, 1, 31)
    until = display_until(occurred, 1)
    assert until == date(2025, 2, 28)
    assert is_displayed(occurred, 1, occurred)
    assert is_displayed(occurred, 1, until - timedelta(days=1))
    assert not is_displayed(occurred, 1, until)


def test_a_record_dated_in_the_future_is_not_yet_in_effect() -> None:
    assert not is_displayed(TODAY + timedelta(days=1), 3, TODAY)


def test_earliest_repair_counts_calendar_months_from_the_occurrence() -> None:
    assert earliest_repair(date(2025, 8, 31), 3) == date(2025, 11, 30)
    assert earliest_repair(date(2025, 8, 31), 0) == date(2025, 8, 31)


def test_severity_defaults_match_the_published_rules() -> None:
    minor, general, serious = (SEVERITY_DEFAULTS[s] for s in Severity)
    assert (minor.display_months, minor.repair_after_months) == (3, 0)
    assert (general.display_months, general.repair_after_months) == (12, 3)
    assert (serious.display_months, serious.repair_after_months) == (36, 12)
    assert minor.repairable_by_volunteering and general.repairable_by_volunteering
    assert not serious.repairable_by_volunteering


# --- display period in the score ---------------------------------------------------------


def test_a_record_past_its_display_period_is_neither_shown_nor_scored() -> None:
    expired = negative("old", occurred_on=date(2025, 1, 1))  # minor: shown until 2025-04-01
    current = negative("new", occurred_on=date(2025, 6, 1), points=-5)
    result = explain([expired, current], NO_HOURS, TODAY)
    assert [c.record_id for c in result.contributions] == ["new"]
    assert result.score == 595
    assert all(step.record_id != "old" for step in result.next_steps)


def test_a_record_counts_on_its_last_display_day_and_not_the_next() -> None:
    record = negative(occurred_on=date(2025, 4, 1))  # shown until 2025-07-01 (exclusive)
    assert explain([record], NO_HOURS, date(2025, 6, 30)).score == 590
    assert explain([record], NO_HOURS, date(2025, 7, 1)).score == 600


# --- volunteer hours ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "bonus"),
    [
        (Decimal(0), 0),
        (Decimal("0.99"), 0),
        (Decimal("1.0"), 1),
        (Decimal("12.5"), 12),
        (Decimal(49), 49),
        (Decimal(50), 50),
        (Decimal("50.5"), 50),
        (Decimal(400), 50),
        (Decimal(-3), 0),
    ],
)
def test_volunteer_hours_add_a_point_per_full_hour_up_to_the_yearly_cap(
    hours: Decimal, bonus: int
) -> None:
    assert hours_bonus(hours) == bonus


def test_volunteer_hours_must_be_a_number() -> None:
    with pytest.raises(ValueError):
        hours_bonus(Decimal("NaN"))


def test_hours_bonus_is_reported_and_added_to_the_score() -> None:
    result = explain([], Decimal(500), TODAY)
    assert result.hours_bonus == HOURS_BONUS_YEARLY_CAP == 50
    assert result.score == 650


# --- contributions -----------------------------------------------------------------------


def test_contributions_are_sorted_by_weight_then_id_and_sum_to_the_score() -> None:
    records = [
        negative("b", points=-10),
        positive("a", points=10),
        negative("c", severity=Severity.GENERAL, points=-40),
        positive("d", points=60),
    ]
    result = explain(records, Decimal(7), TODAY)
    assert [c.record_id for c in result.contributions] == ["d", "c", "a", "b"]
    total = sum(c.points for c in result.contributions)
    assert result.score == SCORE_BASE + total + result.hours_bonus == 627
    assert result.contributions[1].display_until == date(2026, 6, 1)


# --- next steps --------------------------------------------------------------------------


def kinds_for(record_id: str, records: list[ActiveRecord], today: date = TODAY) -> list[str]:
    steps = explain(records, NO_HOURS, today).next_steps
    return [s.kind for s in steps if s.record_id == record_id]


def test_a_minor_record_can_be_repaired_by_volunteering_at_once() -> None:
    record = negative("m", occurred_on=date(2025, 6, 1))
    steps = [s for s in explain([record], NO_HOURS, TODAY).next_steps if s.record_id == "m"]
    assert [s.kind for s in steps] == [
        NextStepKind.REPAIR_BY_VOLUNTEERING,
        NextStepKind.LEAVES_DISPLAY,
    ]
    assert steps[0].available_from == TODAY
    assert "现在" in steps[0].text_zh and "now" in steps[0].text_en
    assert steps[1].available_from == date(2025, 9, 1)


def test_a_general_record_can_be_repaired_from_three_months_after_it_occurred() -> None:
    record = negative("g", severity=Severity.GENERAL, points=-30, occurred_on=date(2025, 5, 31))
    repair = explain([record], NO_HOURS, TODAY).next_steps[0]
    assert repair.kind == NextStepKind.REPAIR_BY_VOLUNTEERING
    assert repair.available_from == date(2025, 8, 31)
    assert "2025-08-31" in repair.text_en


def test_next_steps_for_a_serious_record_never_suggest_volunteering() -> None:
    # Even a catalogue item wrongly marked as volunteer-repairable must not be offered it.
    records = [
        negative("s1", severity=Severity.SERIOUS, points=-150, occurred_on=date(2024, 1, 1)),
        negative(
            "s2",
            severity=Severity.SERIOUS,
            points=-100,
            occurred_on=date(2025, 6, 1),
            repairable_by_volunteering=True,
        ),
    ]
    steps = explain(records, NO_HOURS, TODAY).next_steps
    record_steps = [s for s in steps if s.record_id is not None]
    assert NextStepKind.REPAIR_BY_VOLUNTEERING not in {s.kind for s in record_steps}
    assert all("志愿" not in s.text_zh for s in record_steps)
    assert all("volunteer" not in s.text_en.lower() for s in record_steps)
    by_record = {s.record_id: s for s in steps if s.kind == NextStepKind.REPAIR_BY_APPLICATION}
    assert by_record["s1"].available_from == TODAY
    assert by_record["s2"].available_from == date(2026, 6, 1)


def test_an_unrepairable_record_only_says_when_it_leaves_the_display() -> None:
    record = negative("u", severity=Severity.SERIOUS, points=-80, repair_after_months=None)
    assert kinds_for("u", [record]) == [NextStepKind.LEAVES_DISPLAY]


def test_no_repair_is_offered_when_the_record_leaves_display_first() -> None:
    record = negative("x", severity=Severity.SERIOUS, points=-80, display_months=6)
    assert kinds_for("x", [record]) == [NextStepKind.LEAVES_DISPLAY]


def test_positive_records_have_no_next_steps() -> None:
    assert kinds_for("r-pos", [positive()]) == []


def test_remaining_volunteer_points_are_suggested_until_the_cap_is_reached() -> None:
    steps = explain([], Decimal(20), TODAY).next_steps
    assert [s.kind for s in steps] == [NextStepKind.VOLUNTEER_HOURS]
    assert "30" in steps[0].text_en and "30" in steps[0].text_zh
    capped = explain([], Decimal(50), TODAY).next_steps
    assert NextStepKind.VOLUNTEER_HOURS not in {s.kind for s in capped}


def test_records_with_a_sign_error_are_refused() -> None:
    with pytest.raises(ValueError):
        negative(points=10)
    with pytest.raises(ValueError):
        positive(points=-10)


# --- red and black lists -----------------------------------------------------------------


def test_only_items_with_a_legal_basis_put_anyone_on_a_list() -> None:
    basis = "《某法》第一条"
    assert list_for(Polarity.POSITIVE, None, basis) is CreditList.RED
    assert list_for(Polarity.NEGATIVE, Severity.SERIOUS, basis) is CreditList.BLACK
    assert list_for(Polarity.NEGATIVE, Severity.SERIOUS, None) is None
    assert list_for(Polarity.NEGATIVE, Severity.SERIOUS, "  ") is None
    assert list_for(Polarity.NEGATIVE, Severity.GENERAL, basis) is None
    assert list_for(Polarity.POSITIVE, None, None) is None


# --- benefits ----------------------------------------------------------------------------


def test_a_benefit_is_granted_from_its_minimum_score() -> None:
    rule = benefit(min_score=650)
    assert not eligible(rule, 649)
    assert eligible(rule, 650)
    assert eligible(rule, 950)


def test_a_benefit_rule_has_no_way_to_express_a_refusal() -> None:
    # Only grants: a minimum score and non-negative amounts; nothing names a restriction.
    fields = set(BenefitRule.__dataclass_fields__)
    assert fields == {"code", "partner_kind", "name_zh", "name_en", "min_score", "limits"}
    with pytest.raises(ValueError):
        benefit(deposit_waived_fen=-100)
    with pytest.raises(ValueError):
        benefit(min_score=SCORE_MAX + 1)


def test_benefit_limits_cannot_be_changed_after_validation() -> None:
    limits = {"deposit_waived_fen": 10000}
    rule = benefit(**limits)
    limits["deposit_waived_fen"] = -1
    assert rule.limits["deposit_waived_fen"] == 10000
    with pytest.raises(TypeError):
        rule.limits["deposit_waived_fen"] = 1  # type: ignore[index]


def test_the_green_channel_also_needs_the_clean_years() -> None:
    rule = benefit(min_score=700, clean_years=3)
    assert not eligible(rule, 800)
    assert not eligible(rule, 800, clean_years=2)
    assert eligible(rule, 800, clean_years=3)
    assert not eligible(rule, 699, clean_years=10)
    assert rule.grants == {}


def test_clean_years_count_from_the_last_displayed_negative_record() -> None:
    start = date(2019, 3, 1)
    assert years_without_negative([], start, TODAY) == 6
    recent = negative(severity=Severity.SERIOUS, points=-100, occurred_on=date(2023, 7, 2))
    assert years_without_negative([recent], start, TODAY) == 1
    expired = negative(occurred_on=date(2024, 1, 1))  # minor, gone from display in April 2024
    assert years_without_negative([expired], start, TODAY) == 6
    assert years_without_negative([], date(2024, 2, 29), date(2025, 2, 28)) == 1


# --- properties --------------------------------------------------------------------------

record_strategy = st.builds(
    lambda i, pol, pts, days, months: (
        positive(
            f"p{i}", points=pts, occurred_on=TODAY - timedelta(days=days), display_months=months
        )
        if pol
        else negative(
            f"n{i}",
            severity=Severity.GENERAL,
            points=-pts,
            occurred_on=TODAY - timedelta(days=days),
            display_months=months,
        )
    ),
    st.integers(0, 10_000),
    st.booleans(),
    st.integers(0, 250),
    st.integers(0, 2_000),
    st.integers(4, 60),
)


@settings(database=None, max_examples=300, deadline=None)
@given(
    records=st.lists(record_strategy, max_size=25, unique_by=lambda r: r.record_id),
    hours=st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False),
)
def test_score_is_always_in_range_and_equals_the_clamped_sum(
    records: list[ActiveRecord], hours: Decimal
) -> None:
    result = explain(records, hours, TODAY)
    raw = SCORE_BASE + sum(c.points for c in result.contributions) + result.hours_bonus
    assert SCORE_MIN <= result.score <= SCORE_MAX
    assert result.score == max(SCORE_MIN, min(SCORE_MAX, raw))
    assert result.tier == tier_for(result.score)
    shown = {r.record_id for r in records if is_displayed(r.occurred_on, r.display_months, TODAY)}
    assert {c.record_id for c in result.contributions} == shown
    assert 0 <= result.hours_bonus <= HOURS_BONUS_YEARLY_CAP
