"""The credit information catalogue (信用信息目录): its items and their rules, kept by staff."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xinyi.deps import Deps
from xinyi.errors import Conflict, NotFound, ValidationFailed
from xinyi.records.models import CatalogueItem
from xinyi.records.rules import default_repair_hours
from xinyi.records.schemas import is_catalogue_code
from xinyi.uow import unique_or


class CatalogueCodeTaken(Conflict):
    code = "catalogue_code_taken"
    title = "A catalogue item with this code already exists"


def list_catalogue(session: Session) -> list[CatalogueItem]:
    return list(session.scalars(select(CatalogueItem).order_by(CatalogueItem.code)))


def _check_item_rules(values: Mapping[str, Any]) -> None:
    polarity, points, severity = values["polarity"], values["points"], values["severity"]
    problems: list[tuple[str, str]] = []
    if polarity == "positive" and points <= 0:
        problems.append(("points", "must be positive for a positive item"))
    if polarity == "negative" and points >= 0:
        problems.append(("points", "must be negative for a negative item"))
    if polarity == "positive" and severity is not None:
        problems.append(("severity", "must be null for a positive item"))
    if polarity == "negative" and severity is None:
        problems.append(("severity", "is required for a negative item"))
    if severity == "serious" and values["repairable_by_volunteering"]:
        problems.append(("repairable_by_volunteering",
                         "serious records are never repaired by volunteering alone"))
    hours = values.get("repair_hours_required")
    if hours is not None and not values["repairable_by_volunteering"]:
        problems.append(("repair_hours_required",
                         "only an item repairable by volunteering needs volunteer hours"))
    if problems:
        raise ValidationFailed.at(*problems[0], *problems[1:],
                                  detail="The item's rules are inconsistent")


def create_catalogue_item(session: Session, deps: Deps,
                          values: Mapping[str, Any]) -> CatalogueItem:
    values = dict(values)
    if "repair_hours_required" not in values:
        values["repair_hours_required"] = default_repair_hours(
            values["severity"], values["repairable_by_volunteering"])
    _check_item_rules(values)
    if session.get(CatalogueItem, values["code"]) is not None:
        raise CatalogueCodeTaken()
    item = CatalogueItem(**values, updated_at=deps.clock())
    with unique_or(session, CatalogueCodeTaken):
        session.add(item)
    return item


def update_catalogue_item(session: Session, deps: Deps, code: str,
                          changes: Mapping[str, Any]) -> CatalogueItem:
    """Edits apply to records recorded from now on; existing records keep their snapshot."""
    # A code that cannot exist (a NUL, say) must not reach the database.
    item = session.get(CatalogueItem, code) if is_catalogue_code(code) else None
    if item is None:
        raise NotFound("No catalogue item has this code")
    if not changes:
        raise ValidationFailed("Nothing to change")
    changes = dict(changes)
    merged = {c: getattr(item, c) for c in (
        "polarity", "points", "severity", "repairable_by_volunteering", "repair_hours_required")}
    merged.update({k: v for k, v in changes.items() if k in merged})
    if "repair_hours_required" not in changes:
        # A change of what volunteering may repair brings the hours along with it.
        if not merged["repairable_by_volunteering"]:
            merged["repair_hours_required"] = None
        elif merged["repair_hours_required"] is None:
            merged["repair_hours_required"] = default_repair_hours(
                merged["severity"], True)
        if merged["repair_hours_required"] != item.repair_hours_required:
            changes["repair_hours_required"] = merged["repair_hours_required"]
    _check_item_rules(merged)
    for name, value in changes.items():
        setattr(item, name, value)
    item.updated_at = deps.clock()
    session.flush()
    return item


