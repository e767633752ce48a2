"""The default catalogue (信用信息目录) and benefit rules shipped with the package."""

from __future__ import annotations

from typing import Any

import pytest

from xinyi.partner_kinds import PARTNER_KINDS
from xinyi.scoring.defaults import (
    CATALOGUE_FIELDS,
    catalogue_item_problems,
    load_default_benefits,
    load_default_catalogue,
)
from xinyi.scoring.rules import (
    SCORE_MAX,
    SCORE_MIN,
    SEVERITY_DEFAULTS,
    CreditList,
    Polarity,
    Severity,
    list_for,
)

CATALOGUE: list[dict[str, Any]] = load_default_catalogue()
BENEFITS = load_default_benefits()
POINT_RANGES = {"minor": (-15, -5), "general": (-60, -20), "serious": (-200, -80)}


def by_code() -> dict[str, dict[str, Any]]:
    return {str(item["code"]): item for item in CATALOGUE}


def severity_of(item: dict[str, Any]) -> Severity | None:
    return None if item["severity"] is None else Severity(item["severity"])


def test_the_catalogue_has_at_least_36_items_with_unique_codes() -> None:
    codes = [item["code"] for item in CATALOGUE]
    assert len(codes) >= 36
    assert len(codes) == len(set(codes))


def test_every_item_has_exactly_the_published_fields() -> None:
    for item in CATALOGUE:
        assert set(item) == CATALOGUE_FIELDS, item["code"]
        assert catalogue_item_problems(item) == [], item["code"]


def test_the_key_items_named_in_the_brief_are_present() -> None:
    expected = {
        "volunteer.model",
        "blood.donation",
        "bravery.act",
        "tax.grade_a",
        "redlist.model_worker",
        "traffic.violation_minor",
        "utility.unpaid_bill",
        "court.dishonest_debtor",
        "telecom.fraud",
        "exam.cheating",
        "social_insurance.fraud",
        "library.overdue_default",
        "bike.default",
        "market.default",
        "commitment.broken",
    }
    assert expected <= set(by_code())


def test_points_have_the_sign_of_the_polarity() -> None:
    for item in CATALOGUE:
        points = item["points"]
        assert isinstance(points, int) and not isinstance(points, bool)
        if item["polarity"] == Polarity.POSITIVE:
            assert 5 <= points <= 60, item["code"]
        else:
            assert item["polarity"] == Polarity.NEGATIVE
            low, high = POINT_RANGES[str(item["severity"])]
            assert low <= points <= high, item["code"]


def test_positive_items_have_no_severity_and_nothing_to_repair() -> None:
    for item in CATALOGUE:
        if item["polarity"] == Polarity.POSITIVE:
            assert item["severity"] is None, item["code"]
            assert item["repair_after_months"] is None, item["code"]
            assert item["repairable_by_volunteering"] is False, item["code"]


def test_serious_items_are_never_repairable_by_volunteering() -> None:
    serious = [item for item in CATALOGUE if item["severity"] == Severity.SERIOUS]
    assert serious
    for item in serious:
        assert item["repairable_by_volunteering"] is False, item["code"]


def test_every_serious_black_list_item_carries_a_legal_basis() -> None:
    for item in CATALOGUE:
        if item["severity"] == Severity.SERIOUS:
            basis = item["legal_basis"]
            assert isinstance(basis, str) and "《" in basis, item["code"]
            assert list_for(Polarity.NEGATIVE, Severity.SERIOUS, basis) is CreditList.BLACK


def test_items_without_a_legal_basis_are_on_no_list() -> None:
    # Minor and general items only lower the score; they never restrict anything.
    for item in CATALOGUE:
        kind = list_for(Polarity(str(item["polarity"])), severity_of(item), item["legal_basis"])
        if item["legal_basis"] is None:
            assert kind is None, item["code"]
        if item["severity"] in (Severity.MINOR, Severity.GENERAL):
            assert item["legal_basis"] is None, item["code"]


def test_the_red_list_items_named_in_the_brief_carry_a_legal_basis() -> None:
    items = by_code()
    for code in ("redlist.model_worker", "tax.grade_a", "volunteer.model", "bravery.act"):
        assert items[code]["legal_basis"], code


def test_the_dishonest_debtor_item_cites_the_supreme_court_rules() -> None:
    item = by_code()["court.dishonest_debtor"]
    assert item["severity"] == Severity.SERIOUS
    assert "最高人民法院关于公布失信被执行人名单信息的若干规定" in str(item["legal_basis"])


def test_periods_follow_the_severity_defaults_unless_a_legal_basis_says_otherwise() -> None:
    for item in CATALOGUE:
        severity = severity_of(item)
        if severity is None:
            continue
        default = SEVERITY_DEFAULTS[severity]
        periods = (item["display_months"], item["repair_after_months"])
        if item["legal_basis"] is None:
            assert periods == (default.display_months, default.repair_after_months), item["code"]
            assert item["repairable_by_volunteering"] is default.repairable_by_volunteering


def test_a_market_default_reported_by_partners_is_minor() -> None:
    items = by_code()
    for code in ("market.default", "library.overdue_default", "bike.default"):
        assert items[code]["severity"] == Severity.MINOR, code
        assert items[code]["repairable_by_volunteering"] is True, code


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"points": 10}, "take points away"),
        ({"severity": "serious", "repairable_by_volunteering": True}, "never repairable"),
        ({"severity": "serious", "repairable_by_volunteering": False}, "legal basis"),
        ({"polarity": "positive"}, "no severity"),
        ({"points": True}, "non-zero integer"),
        ({"repair_after_months": 12}, "before the display period ends"),
    ],
)
def test_a_broken_catalogue_item_is_reported(change: dict[str, object], problem: str) -> None:
    item: dict[str, object] = {**by_code()["library.overdue_default"], **change}
    problems = catalogue_item_problems(item)
    assert any(problem in p for p in problems), problems


def test_the_default_benefits_are_present_and_money_is_integer_fen() -> None:
    rules = {rule.code: rule for rule in BENEFITS}
    assert len(rules) == len(BENEFITS)
    expected = {
        "library.deposit_free": ("library", {"max_books", "deposit_waived_fen"}),
        "bike.deposit_free": ("bike", {"deposit_waived_fen"}),
        "hospital.pay_later": ("hospital", {"credit_line_fen"}),
        "hotel.deposit_free": ("hotel", {"deposit_waived_fen"}),
        "scenic.discount": ("scenic", {"max_discount_fen"}),
        "campus.sport_venue": ("campus", {"deposit_waived_fen"}),
        "gov.green_channel": ("government", {"clean_years"}),
    }
    for code, (kind, keys) in expected.items():
        assert rules[code].partner_kind == kind
        assert kind in PARTNER_KINDS, code  # a partner the admin API can create offers it
        assert keys <= set(rules[code].limits), code
    assert 6 <= len(rules) <= 8
    for rule in BENEFITS:
        assert SCORE_MIN <= rule.min_score <= SCORE_MAX
        for key, value in rule.limits.items():
            assert type(value) is int, (rule.code, key)
            if key.endswith("_fen"):
                assert value > 0, (rule.code, key)


def test_the_green_channel_needs_three_clean_years() -> None:
    rules = {rule.code: rule for rule in BENEFITS}
    green = [r for r in rules.values() if "clean_years" in r.limits]
    assert len(green) == 1
    assert green[0].limits["clean_years"] == 3
    assert green[0].min_score >= 600
