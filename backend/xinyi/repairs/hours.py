"""The citizen's service hours (``GET /v1/me/service-hours``): what they served, what it
counts towards (the score within the yearly cap, the repair of each record) and what to do
next. Here rather than in volunteering, since it reads the score's and the repairs' rules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from xinyi.deps import Deps
from xinyi.records import service as records
from xinyi.scoring import rules as scoring
from xinyi.timeutil import china_today
from xinyi.volunteering import service as volunteering
from xinyi.volunteering.service import OrgMembershipView, ServiceRecordView


@dataclass(frozen=True)
class RepairRequirement:
    record_id: uuid.UUID
    catalogue_code: str
    name_zh: str
    name_en: str
    severity: str | None
    by_volunteering: bool
    hours_required: int | None
    hours_available: float
    hours_missing: int | None
    repair_from: date | None
    can_apply_now: bool
    text_zh: str
    text_en: str


@dataclass(frozen=True)
class ServiceHoursView:
    total_hours: float
    hours_this_year: float
    score_points_this_year: int
    yearly_cap_points: int
    points_remaining_this_year: int
    records: list[ServiceRecordView]
    organisations: list[OrgMembershipView]
    repair_requirements: list[RepairRequirement]
    next_steps: list[str]


def _requirement(session: Session, bidx: bytes, r: records.RecordFacts,
                 today: date) -> RepairRequirement:
    opens = r.repair_from
    date_ok = opens is None or today >= opens
    if r.repair_after_months is None:
        return RepairRequirement(
            r.id, r.catalogue_code, r.name_zh, r.name_en, r.severity, False, None, 0, None,
            None, False, f"“{r.name_zh}”不能修复，将于{r.display_until.isoformat()}起不再展示。",
            f"“{r.name_en}” cannot be repaired; it stops being shown on "
            f"{r.display_until.isoformat()}.")
    if not r.repairable_by_volunteering or r.repair_hours_required is None:
        when = "now" if date_ok else f"from {opens}"
        return RepairRequirement(
            r.id, r.catalogue_code, r.name_zh, r.name_en, r.severity, False, None, 0, None,
            opens, date_ok,
            f"“{r.name_zh}”不能仅凭志愿服务修复；可{'现在' if date_ok else f'自{opens}起'}"
            "凭履行义务或慈善捐助的证明申请修复。",
            f"Volunteering alone never repairs “{r.name_en}”; you can apply {when} with "
            "proof of a fulfilled obligation or of charity.")
    available = volunteering.available_minutes(session, bidx, r.occurred_on)
    missing = volunteering.missing_hours(r.repair_hours_required, available)
    ready = date_ok and missing == 0
    if ready:
        zh = f"您已满足“{r.name_zh}”的志愿服务修复条件，现在即可申请修复。"
        en = f"You meet the volunteering requirement for “{r.name_en}”: you can apply now."
    elif missing:
        zh = (f"“{r.name_zh}”通过志愿服务修复需要{r.repair_hours_required}小时，"
              f"还差{missing}小时。")
        en = (f"Repairing “{r.name_en}” by volunteering needs {r.repair_hours_required} hours: "
              f"{missing} more hours.")
    else:
        zh = f"志愿服务时长已满足，自{opens}起可申请修复“{r.name_zh}”。"
        en = f"Your hours suffice; you can apply to repair “{r.name_en}” from {opens}."
    return RepairRequirement(
        r.id, r.catalogue_code, r.name_zh, r.name_en, r.severity, True,
        r.repair_hours_required, round(available / 60, 2), missing, opens, ready, zh, en)


def service_hours(session: Session, deps: Deps, account_id: uuid.UUID) -> ServiceHoursView:
    today = china_today(deps.clock())
    bidx, rows = volunteering.citizen_service_records(session, account_id)
    accepted = [r for r in rows if r.status == "accepted"]
    year_minutes = volunteering.minutes_in_year(session, bidx, today)
    points = scoring.hours_bonus(Decimal(year_minutes) / 60)
    cap = scoring.HOURS_BONUS_YEARLY_CAP
    requirements = [_requirement(session, bidx, r, today)
                    for r in records.repair_candidates(session, bidx, today)]
    steps = [r.text_zh for r in requirements]
    if points < cap:
        steps.append(f"今年的志愿服务时长最多还可为您的信用评分增加{cap - points}分。")
    else:
        steps.append("今年的志愿服务加分已达上限，更多时长仍可用于信用修复。")
    return ServiceHoursView(
        total_hours=round(sum(r.minutes for r in accepted) / 60, 2),
        hours_this_year=round(year_minutes / 60, 2), score_points_this_year=points,
        yearly_cap_points=cap, points_remaining_this_year=cap - points, records=rows,
        organisations=volunteering.citizen_orgs(session, account_id),
        repair_requirements=requirements, next_steps=steps)
