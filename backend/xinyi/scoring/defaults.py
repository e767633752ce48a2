"""The default catalogue (信用信息目录) and benefit rules shipped with the package.

The credit office edits both at run time; these files are what a fresh installation starts
with (``xinyi seed-demo``, first migration). They are read with :mod:`importlib.resources`
so they work from a wheel as well as from a checkout, and checked on load so a bad edit to
the JSON fails loudly instead of scoring someone wrongly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Final, TypeGuard

from xinyi.partner_kinds import PARTNER_KINDS
from xinyi.scoring.rules import SCORE_MAX, SCORE_MIN, BenefitRule, Polarity, Severity

CATALOGUE_FIELDS: Final = frozenset(
    {
        "code",
        "name_zh",
        "name_en",
        "polarity",
        "severity",
        "domain",
        "points",
        "display_months",
        "repair_after_months",
        "repairable_by_volunteering",
        "legal_basis",
    }
)
BENEFIT_FIELDS: Final = frozenset(
    {"code", "partner_kind", "name_zh", "name_en", "min_score", "limits"}
)
CODE_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def catalogue_item_problems(item: Mapping[str, object]) -> list[str]:
    """What is wrong with a catalogue item, in words an operator can act on; empty if valid.

    These are the invariants the scoring rules rely on, so the admin catalogue editor
    should apply the same check before saving an item.
    """
    problems: list[str] = []
    keys = set(item)
    if keys != CATALOGUE_FIELDS:
        missing = sorted(CATALOGUE_FIELDS - keys)
        extra = sorted(keys - CATALOGUE_FIELDS)
        return [f"fields: missing {missing}, unexpected {extra}"]

    code = item["code"]
    if not isinstance(code, str) or not CODE_PATTERN.fullmatch(code):
        problems.append("code must look like 'domain.item' in lower case")
    for name in ("name_zh", "name_en", "domain"):
        if not _is_text(item[name]):
            problems.append(f"{name} must be a non-empty string")
    basis = item["legal_basis"]
    if basis is not None and not _is_text(basis):
        problems.append("legal_basis must be a non-empty string or null")

    polarity = item["polarity"]
    severity = item["severity"]
    points = item["points"]
    display = item["display_months"]
    repair = item["repair_after_months"]
    volunteering = item["repairable_by_volunteering"]
    if polarity not in set(Polarity):
        problems.append("polarity must be 'positive' or 'negative'")
    if severity is not None and severity not in set(Severity):
        problems.append("severity must be 'minor', 'general', 'serious' or null")
    if not _is_int(points) or points == 0:
        problems.append("points must be a non-zero integer")
    if not _is_int(display) or not 1 <= display <= 120:
        problems.append("display_months must be an integer from 1 to 120")
    if repair is not None and (not _is_int(repair) or repair < 0):
        problems.append("repair_after_months must be a non-negative integer or null")
    if not isinstance(volunteering, bool):
        problems.append("repairable_by_volunteering must be true or false")
    if problems:
        return problems

    assert isinstance(points, int) and isinstance(display, int)
    if polarity == Polarity.POSITIVE:
        if severity is not None:
            problems.append("a positive item has no severity")
        if points < 0:
            problems.append("a positive item must add points")
        if repair is not None or volunteering:
            problems.append("a positive item has nothing to repair")
    else:
        if severity is None:
            problems.append("a negative item needs a severity")
        if points > 0:
            problems.append("a negative item must take points away")
        if severity == Severity.SERIOUS and volunteering:
            problems.append("a serious item is never repairable by volunteering alone")
        if severity == Severity.SERIOUS and basis is None:
            problems.append("a serious (black-list) item needs a legal basis")
        if volunteering and repair is None:
            problems.append("an unrepairable item cannot be repairable by volunteering")
        if isinstance(repair, int) and repair >= display:
            problems.append("repair must open before the display period ends")
    if not SCORE_MIN - SCORE_MAX <= points <= SCORE_MAX - SCORE_MIN:
        problems.append("points must stay within the width of the score range")
    return problems


def _read_json(name: str) -> object:
    text = resources.files("xinyi.scoring").joinpath(name).read_text(encoding="utf-8")
    return json.loads(text)


def load_default_catalogue() -> list[dict[str, object]]:
    """The default catalogue items, each checked by :func:`catalogue_item_problems`."""
    data = _read_json("default_catalogue.json")
    if not isinstance(data, list):
        raise ValueError("default_catalogue.json must hold a list")
    items: list[dict[str, object]] = []
    for raw in data:
        if not isinstance(raw, dict):
            raise ValueError("every catalogue item must be an object")
        problems = catalogue_item_problems(raw)
        if problems:
            raise ValueError(f"catalogue item {raw.get('code')!r}: {'; '.join(problems)}")
        items.append(dict(raw))
    return items


def load_default_benefits() -> list[BenefitRule]:
    """The default benefit rules; :class:`BenefitRule` itself rejects non-integer limits."""
    data = _read_json("default_benefits.json")
    if not isinstance(data, list):
        raise ValueError("default_benefits.json must hold a list")
    rules: list[BenefitRule] = []
    for raw in data:
        if not isinstance(raw, dict) or set(raw) != BENEFIT_FIELDS:
            raise ValueError(f"benefit rule must have exactly the fields {sorted(BENEFIT_FIELDS)}")
        code, kind = raw["code"], raw["partner_kind"]
        name_zh, name_en = raw["name_zh"], raw["name_en"]
        min_score, limits = raw["min_score"], raw["limits"]
        if not (_is_text(code) and _is_text(kind) and _is_text(name_zh) and _is_text(name_en)):
            raise ValueError(f"benefit rule {code!r}: names must be non-empty strings")
        if not _is_int(min_score) or not isinstance(limits, dict):
            raise ValueError(f"benefit rule {code!r}: min_score must be int, limits an object")
        if kind not in PARTNER_KINDS:
            raise ValueError(f"benefit rule {code!r}: partner_kind must be one of "
                             f"{', '.join(PARTNER_KINDS)} (no partner could verify it)")
        rules.append(BenefitRule(code, kind, name_zh, name_en, min_score, limits))
    return rules
