"""Volunteers and service hours (志愿服务).

An organisation registers its volunteers by ID number and name, then posts the hours of each
activity. A post is idempotent on (organisation, activity_ref, volunteer): the same body again
is the same record, a different body under that reference is a conflict. Every refusal names
its rule. Accepted hours count twice over, and this module says how much of each:

* towards the score, one point per full hour of the calendar year (China dates), at most
  :data:`xinyi.scoring.rules.HOURS_BONUS_YEARLY_CAP` a year (:func:`hours_points` is the query
  piece the score sums, :func:`minutes_in_year` what its explanation reads);
* towards repairs (信用修复) by volunteering: hours served on or after a record's date may be
  set against it, each hour once (:func:`claim_hours`).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Integer, Select, Subquery, case, func, literal, select
from sqlalchemy.orm import Session

from xinyi.auth.principal import Principal
from xinyi.auth.service import client_refs
from xinyi.citizens.service import citizen_bidx
from xinyi.deps import Deps
from xinyi.errors import Conflict, NotFound, ValidationFailed
from xinyi.jsonable import row
from xinyi.pii import IdNumber, InvalidIdentifier, mask_id_number, mask_name
from xinyi.subjects import personal
from xinyi.subjects.service import ensure_subject, subject_bidx, subjects_table
from xinyi.timeutil import CHINA, china_today
from xinyi.uow import unique_or
from xinyi.volunteering.models import HoursClaim, ServiceRecord, Volunteer

MAX_DAY_MINUTES = 12 * 60
MAX_AGE = timedelta(days=90)
RETRACTION_WINDOW = timedelta(days=7)
_NAME_CONTEXT = "volunteers.name"


class VolunteerNotRegistered(ValidationFailed):
    code = "volunteer_not_registered"
    title = "This organisation has not registered this volunteer"


class ServiceInFuture(ValidationFailed):
    code = "service_in_future"
    title = "Service hours cannot be posted before they are served"


class ServiceTooOld(ValidationFailed):
    code = "service_too_old"
    title = "Service hours are posted within 90 days"


class ServiceOverlaps(ValidationFailed):
    code = "service_overlaps"
    title = "The volunteer already has accepted service in this interval"


class DailyHoursExceeded(ValidationFailed):
    code = "daily_hours_exceeded"
    title = "More than 12 hours of service in one day"


class ActivityRefReused(Conflict):
    code = "activity_ref_reused"
    title = "This activity reference was already posted for this volunteer with another body"


class RetractionClosed(Conflict):
    code = "retraction_window_closed"
    title = "Service records are retracted within 7 days of being posted"


class AlreadyRetracted(Conflict):
    code = "already_retracted"
    title = "This service record was already retracted"


def _rule(error: type[ValidationFailed], field: str, message: str) -> ValidationFailed:
    return error.at(field, message, detail=f"{error.code}: {message}")


def _parse_id(raw: str, now: datetime) -> IdNumber:
    try:
        return IdNumber.parse(raw, today=china_today(now))
    except InvalidIdentifier as exc:
        raise ValidationFailed.at("id_number", str(exc), detail=f"id_number: {exc}") from None


# ---- volunteers ------------------------------------------------------------------------------

@dataclass(frozen=True)
class VolunteerView:
    id: uuid.UUID
    name: str
    id_number: str
    registered_at: datetime
    active: bool
    left_at: datetime | None


def _volunteer_view(session: Session, deps: Deps, v: Volunteer,
                    id_number: str | None) -> VolunteerView:
    name = personal.reveal(session, deps, v.subject_bidx, v.name_enc, context=_NAME_CONTEXT)
    closed = name is None or id_number is None
    return VolunteerView(id=v.id, name=personal.CLOSED if name is None else mask_name(name),
                         id_number=(personal.closed_reference(v.subject_bidx) if closed
                                    else mask_id_number(id_number or "")),
                         registered_at=v.registered_at,
                         active=v.removed_at is None and v.left_at is None, left_at=v.left_at)


def register_volunteer(session: Session, deps: Deps, org: Principal, *, id_number: str,
                       name: str) -> tuple[VolunteerView, bool]:
    """Register (or register again) a volunteer; ``(view, created)``."""
    now = deps.clock()
    parsed = _parse_id(id_number, now)
    name = name.strip()
    if not name:
        raise ValidationFailed.at("name", "must not be blank", detail="name: must not be blank")
    bidx = ensure_subject(session, deps, parsed, now)
    existing = session.scalar(select(Volunteer).where(Volunteer.org_id == org.id,
                                                      Volunteer.subject_bidx == bidx))
    encrypted = personal.seal(session, deps, bidx, name, context=_NAME_CONTEXT)
    if existing is not None:
        created = existing.removed_at is not None or existing.left_at is not None
        existing.name_enc = encrypted
        if created:
            existing.removed_at = existing.left_at = None
            existing.registered_at = now
        return _volunteer_view(session, deps, existing, parsed.value), created
    volunteer = Volunteer(id=uuid.uuid4(), org_id=org.id, subject_bidx=bidx, name_enc=encrypted,
                          registered_at=now)
    with unique_or(session, Conflict("This volunteer is being registered at this moment")):
        session.add(volunteer)
    return _volunteer_view(session, deps, volunteer, parsed.value), True


def _id_numbers(session: Session, deps: Deps, bidxs: list[bytes]) -> dict[bytes, str | None]:
    """The subjects' ID numbers (None for a closed account's), their keys fetched at once."""
    if not bidxs:
        return {}
    subjects = subjects_table()
    rows = list(session.execute(select(subjects.c.bidx, subjects.c.id_number_enc)
                                .where(subjects.c.bidx.in_(bidxs))))
    personal.load(session, deps, bidxs)
    return {bytes(b): personal.reveal(session, deps, b, enc, context="subjects.id_number")
            for b, enc in rows}


def org_volunteers(session: Session, deps: Deps, org: Principal, *, active_only: bool,
                   page: int, page_size: int) -> tuple[list[VolunteerView], int]:
    where = [Volunteer.org_id == org.id]
    if active_only:
        where += [Volunteer.removed_at.is_(None), Volunteer.left_at.is_(None)]
    total = session.scalar(select(func.count()).select_from(Volunteer).where(*where)) or 0
    rows = list(session.scalars(select(Volunteer).where(*where)
                                .order_by(Volunteer.registered_at.desc(), Volunteer.id)
                                .limit(page_size).offset((page - 1) * page_size)))
    ids = _id_numbers(session, deps, [v.subject_bidx for v in rows])
    return [_volunteer_view(session, deps, v, ids[v.subject_bidx]) for v in rows], total


def remove_volunteer(session: Session, deps: Deps, org: Principal,
                     volunteer_id: uuid.UUID) -> None:
    """The organisation no longer counts this person as its volunteer; hours already posted
    stay. Removing twice is the same as once."""
    volunteer = session.get(Volunteer, volunteer_id)
    if volunteer is None or volunteer.org_id != org.id:
        raise NotFound("No volunteer of yours has this id")
    if volunteer.removed_at is None:
        volunteer.removed_at = deps.clock()


@dataclass(frozen=True)
class OrgMembershipView:
    org_id: uuid.UUID
    org_name: str
    registered_at: datetime


def citizen_orgs(session: Session, account_id: uuid.UUID) -> list[OrgMembershipView]:
    """The organisations that have this citizen registered as their volunteer now."""
    bidx = citizen_bidx(session, account_id)
    rows = list(session.scalars(select(Volunteer).where(
        Volunteer.subject_bidx == bidx, Volunteer.removed_at.is_(None),
        Volunteer.left_at.is_(None)).order_by(Volunteer.registered_at)))
    names = client_refs(session, [v.org_id for v in rows])
    return [OrgMembershipView(v.org_id, names[v.org_id].name if v.org_id in names else "",
                              v.registered_at) for v in rows]


def leave_org(session: Session, deps: Deps, account_id: uuid.UUID, org_id: uuid.UUID) -> None:
    """The citizen leaves an organisation: it can post no more hours for them (those posted
    stay). The organisation can register them again only as a new registration."""
    bidx = citizen_bidx(session, account_id)
    volunteer = session.scalar(select(Volunteer).where(Volunteer.org_id == org_id,
                                                       Volunteer.subject_bidx == bidx))
    if volunteer is None or volunteer.removed_at is not None or volunteer.left_at is not None:
        raise NotFound("No organisation has you registered under this id")
    volunteer.left_at = deps.clock()


# ---- service records -------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceRecordView:
    id: uuid.UUID
    org_id: uuid.UUID
    org_name: str
    activity_ref: str
    activity_name: str
    started_at: datetime
    ended_at: datetime
    minutes: int
    hours: float
    status: str
    retracted_at: datetime | None
    retraction_reason: str | None
    created_at: datetime
    volunteer_id: uuid.UUID


def _hours(minutes: int) -> float:
    return round(minutes / 60, 2)


def _record_view(r: ServiceRecord, org_name: str) -> ServiceRecordView:
    return ServiceRecordView(
        id=r.id, org_id=r.org_id, org_name=org_name, activity_ref=r.activity_ref,
        activity_name=r.activity_name, started_at=r.started_at, ended_at=r.ended_at,
        minutes=r.minutes, hours=_hours(r.minutes), status=r.status,
        retracted_at=r.retracted_at, retraction_reason=r.retraction_reason,
        created_at=r.created_at, volunteer_id=r.volunteer_id)


def _content_hash(org_id: uuid.UUID, bidx: bytes, body: dict[str, Any]) -> bytes:
    canonical = json.dumps({
        "org": str(org_id), "subject": bidx.hex(), "ref": body["activity_ref"],
        "name": body["activity_name"],
        "start": body["started_at"].astimezone(CHINA).isoformat(),
        "end": body["ended_at"].astimezone(CHINA).isoformat()},
        sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).digest()


def _minutes_by_day(start: datetime, end: datetime) -> dict[date, float]:
    """Minutes of ``[start, end)`` on each China day it touches."""
    out: dict[date, float] = defaultdict(float)
    cursor = start.astimezone(CHINA)
    end = end.astimezone(CHINA)
    while cursor < end:
        next_midnight = datetime.combine(cursor.date() + timedelta(days=1), time(), tzinfo=CHINA)
        stop = min(end, next_midnight)
        out[cursor.date()] += (stop - cursor).total_seconds() / 60
        cursor = stop
    return out


def _lock_subject(session: Session, bidx: bytes) -> None:
    """Serialise posts for one volunteer (from any organisation), so that two overlapping
    intervals posted at once cannot both be accepted."""
    subjects = subjects_table()
    session.execute(select(subjects.c.bidx).where(subjects.c.bidx == bidx).with_for_update())


def _check_times(start: datetime, end: datetime, now: datetime) -> int:
    if end <= start:
        raise ValidationFailed.at("ended_at", "must be after started_at",
                                  detail="ended_at: must be after started_at")
    minutes = int((end - start).total_seconds() // 60)
    if minutes < 1:
        raise ValidationFailed.at("ended_at", "the interval must be at least one minute",
                                  detail="ended_at: the interval must be at least one minute")
    if end > now:
        raise _rule(ServiceInFuture, "ended_at", "the service has not ended yet (the future)")
    if start < now - MAX_AGE:
        raise _rule(ServiceTooOld, "started_at",
                    "the service started more than 90 days ago")
    if minutes > MAX_DAY_MINUTES:
        raise _rule(DailyHoursExceeded, "ended_at",
                    "one interval is at most 12 hours")
    return minutes


def _check_against_others(session: Session, bidx: bytes, start: datetime,
                          end: datetime) -> None:
    nearby = list(session.scalars(select(ServiceRecord).where(
        ServiceRecord.subject_bidx == bidx, ServiceRecord.status == "accepted",
        ServiceRecord.started_at < end + timedelta(days=1),
        ServiceRecord.ended_at > start - timedelta(days=1))))
    if any(r.started_at < end and r.ended_at > start for r in nearby):
        raise _rule(ServiceOverlaps, "started_at",
                    "the interval overlaps accepted service of this volunteer (at any "
                    "organisation)")
    per_day = _minutes_by_day(start, end)
    for r in nearby:
        for day, minutes in _minutes_by_day(r.started_at, r.ended_at).items():
            if day in per_day:
                per_day[day] += minutes
    over = sorted(d for d, m in per_day.items() if m > MAX_DAY_MINUTES + 1e-9)
    if over:
        raise _rule(DailyHoursExceeded, "ended_at",
                    f"more than 12 hours of service on {over[0].isoformat()} (China time)")


def post_service_record(session: Session, deps: Deps, org: Principal,
                        body: dict[str, Any]) -> tuple[ServiceRecordView, bool]:
    """Post the hours of one activity for one volunteer; ``(record, created)``."""
    now = deps.clock()
    parsed = _parse_id(body["id_number"], now)
    bidx = subject_bidx(deps, parsed)
    digest = _content_hash(org.id, bidx, body)
    org_name = org.client_name or ""
    existing = session.scalar(select(ServiceRecord).where(
        ServiceRecord.org_id == org.id, ServiceRecord.activity_ref == body["activity_ref"],
        ServiceRecord.subject_bidx == bidx))
    if existing is not None:
        if existing.content_hash != digest:
            raise ActivityRefReused()
        return _record_view(existing, org_name), False
    volunteer = session.scalar(select(Volunteer).where(
        Volunteer.org_id == org.id, Volunteer.subject_bidx == bidx,
        Volunteer.removed_at.is_(None), Volunteer.left_at.is_(None)))
    if volunteer is None:
        raise _rule(VolunteerNotRegistered, "id_number",
                    "register this volunteer first (POST /v1/org/volunteers)")
    start, end = body["started_at"], body["ended_at"]
    minutes = _check_times(start, end, now)
    _lock_subject(session, bidx)
    _check_against_others(session, bidx, start, end)
    record = ServiceRecord(
        id=uuid.uuid4(), org_id=org.id, volunteer_id=volunteer.id, subject_bidx=bidx,
        activity_ref=body["activity_ref"], activity_name=body["activity_name"],
        started_at=start, ended_at=end, service_day=start.astimezone(CHINA).date(),
        minutes=minutes, content_hash=digest, status="accepted", created_at=now)
    with unique_or(session, ActivityRefReused):
        session.add(record)
    deps.rescore(session, [bidx], now=now, today=china_today(now))
    return _record_view(record, org_name), True


def retract_service_record(session: Session, deps: Deps, org: Principal,
                           record_id: uuid.UUID, reason: str) -> ServiceRecordView:
    now = deps.clock()
    record = session.scalar(select(ServiceRecord).where(ServiceRecord.id == record_id)
                            .with_for_update())
    if record is None or record.org_id != org.id:
        raise NotFound("No service record of yours has this id")
    if record.status == "retracted":
        raise AlreadyRetracted()
    if now - record.created_at > RETRACTION_WINDOW:
        raise RetractionClosed()
    record.status, record.retracted_at, record.retraction_reason = "retracted", now, reason
    session.flush()
    deps.rescore(session, [record.subject_bidx], now=now, today=china_today(now))
    return _record_view(record, org.client_name or "")


def org_service_records(session: Session, org: Principal, *, page: int,
                        page_size: int) -> tuple[list[ServiceRecordView], int]:
    where = [ServiceRecord.org_id == org.id]
    total = session.scalar(select(func.count()).select_from(ServiceRecord).where(*where)) or 0
    rows = session.scalars(select(ServiceRecord).where(*where)
                           .order_by(ServiceRecord.created_at.desc(), ServiceRecord.id)
                           .limit(page_size).offset((page - 1) * page_size))
    return [_record_view(r, org.client_name or "") for r in rows], total


# ---- hours as the score and repairs count them ----------------------------------------------

def _year_bounds(today: date) -> tuple[date, date]:
    return date(today.year, 1, 1), today


def hours_points(today: date, cap: int) -> Subquery:
    """``(bidx, points)``: this calendar year's accepted hours of each volunteer, one point
    per full hour up to ``cap`` (the score's rule, :func:`xinyi.scoring.rules.hours_bonus`)."""
    first, last = _year_bounds(today)
    full_hours = func.sum(ServiceRecord.minutes) // literal(60, Integer)
    points = case((full_hours > cap, cap), else_=full_hours)
    return (select(ServiceRecord.subject_bidx.label("bidx"), points.label("points"))
            .where(ServiceRecord.status == "accepted", ServiceRecord.service_day >= first,
                   ServiceRecord.service_day <= last)
            .group_by(ServiceRecord.subject_bidx).subquery("hours_points"))


def volunteers_in_year(day: date) -> Select[Any]:
    """Query piece: the subject of everyone with accepted hours in ``day``'s calendar year."""
    first, last = _year_bounds(day)
    return (select(ServiceRecord.subject_bidx)
            .where(ServiceRecord.status == "accepted", ServiceRecord.service_day >= first,
                   ServiceRecord.service_day <= last)
            .distinct())


def minutes_in_year(session: Session, bidx: bytes, today: date) -> int:
    first, last = _year_bounds(today)
    return int(session.scalar(select(func.coalesce(func.sum(ServiceRecord.minutes), 0)).where(
        ServiceRecord.subject_bidx == bidx, ServiceRecord.status == "accepted",
        ServiceRecord.service_day >= first, ServiceRecord.service_day <= last)) or 0)


def _served_since(session: Session, bidx: bytes, since: date) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(ServiceRecord.minutes), 0)).where(
        ServiceRecord.subject_bidx == bidx, ServiceRecord.status == "accepted",
        ServiceRecord.service_day >= since)) or 0)


def _claimed(session: Session, bidx: bytes) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(HoursClaim.minutes), 0)).where(
        HoursClaim.subject_bidx == bidx, HoursClaim.released_at.is_(None))) or 0)


def available_minutes(session: Session, bidx: bytes, since: date) -> int:
    """Accepted minutes served on or after ``since`` that no other repair holds."""
    return max(0, _served_since(session, bidx, since) - _claimed(session, bidx))


def claim_hours(session: Session, bidx: bytes, *, minutes: int, ref: str, since: date,
                now: datetime) -> bool:
    """Set ``minutes`` against the repair ``ref``, if that many are available; the subject is
    locked first, so two applications cannot spend the same hours."""
    _lock_subject(session, bidx)
    if available_minutes(session, bidx, since) < minutes:
        return False
    session.add(HoursClaim(id=uuid.uuid4(), subject_bidx=bidx, ref=ref, minutes=minutes,
                           created_at=now))
    session.flush()
    return True


def release_claim(session: Session, ref: str, now: datetime) -> None:
    claim = session.scalar(select(HoursClaim).where(HoursClaim.ref == ref))
    if claim is not None and claim.released_at is None:
        claim.released_at = now


def missing_hours(required_hours: int, available: int) -> int:
    """Whole hours still to serve (rounded up), 0 when enough."""
    return max(0, math.ceil((required_hours * 60 - available) / 60))


def citizen_service_records(session: Session, account_id: uuid.UUID
                            ) -> tuple[bytes, list[ServiceRecordView]]:
    bidx = citizen_bidx(session, account_id)
    rows = list(session.scalars(select(ServiceRecord).where(ServiceRecord.subject_bidx == bidx)
                                .order_by(ServiceRecord.started_at.desc(), ServiceRecord.id)
                                .limit(500)))
    names = client_refs(session, [r.org_id for r in rows])
    return bidx, [_record_view(r, names[r.org_id].name if r.org_id in names else "")
                  for r in rows]


def export_service_records(session: Session, deps: Deps, account_id: uuid.UUID,
                           bidx: bytes) -> list[dict[str, Any]]:
    """Every service-hours record of the citizen, retracted ones included (export)."""
    found = list(session.scalars(select(ServiceRecord).where(ServiceRecord.subject_bidx == bidx)
                                 .order_by(ServiceRecord.started_at, ServiceRecord.id)))
    names = client_refs(session, [r.org_id for r in found])
    return [row(r, "id", "org_id", "activity_ref", "activity_name", "started_at", "ended_at",
                "service_day", "minutes", "status", "retracted_at", "retraction_reason",
                "created_at", org_name=names[r.org_id].name if r.org_id in names else None)
            for r in found]


def export_volunteer_registrations(session: Session, deps: Deps, account_id: uuid.UUID,
                                   bidx: bytes) -> list[dict[str, Any]]:
    """Each organisation's registration of the citizen, with the name it registered
    (unmasked: the export is the citizen's own), ended ones included."""
    found = list(session.scalars(select(Volunteer).where(Volunteer.subject_bidx == bidx)
                                 .order_by(Volunteer.registered_at, Volunteer.id)))
    names = client_refs(session, [v.org_id for v in found])
    return [row(v, "id", "org_id", "registered_at", "removed_at", "left_at",
                org_name=names[v.org_id].name if v.org_id in names else None,
                name=personal.reveal(session, deps, bidx, v.name_enc, context=_NAME_CONTEXT))
            for v in found]
# ---- personal keys and closing the account ---------------------------------------------------

def reseal_names(session: Session, deps: Deps, bidx: bytes) -> None:
    """The names organisations gave this subject, moved under their personal key (backfill)."""
    for v in session.scalars(select(Volunteer).where(Volunteer.subject_bidx == bidx)):
        v.name_enc = personal.reseal(session, deps, bidx, v.name_enc, context=_NAME_CONTEXT)


def forget_names(session: Session, deps: Deps, bidx: bytes) -> int:
    """Wipe the names organisations gave this subject, except those sealed under a live
    personal key (a later registration's); the volunteer rows and their hours stay."""
    wiped = 0
    for v in session.scalars(select(Volunteer).where(Volunteer.subject_bidx == bidx)):
        if v.name_enc != personal.SHREDDED and not personal.under_current_key(
                session, deps, bidx, v.name_enc):
            v.name_enc, wiped = personal.SHREDDED, wiped + 1
    return wiped
