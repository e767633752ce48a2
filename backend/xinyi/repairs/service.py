"""Credit repair (信用修复): apply, judged at once against the catalogue rules; a reviewer
decides within 3 working days, once; approval archives the record, recomputes the score,
writes the decision PDF, notifies the citizen and tells partners with a live consent.

Hours: a repair by volunteering sets the item's required hours (served on or after the
record's date) against the application; a rejection releases them, an approval spends them.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xinyi.alerts.service import raise_alert
from xinyi.attachments import service as attachments
from xinyi.attachments.service import AttachmentView
from xinyi.audit.service import staff_read
from xinyi.auth.principal import Principal
from xinyi.citizens.service import citizen_bidx
from xinyi.commitments.service import record_commitment
from xinyi.deps import Deps
from xinyi.errors import Conflict, NotFound, ValidationFailed
from xinyi.jsonable import row
from xinyi.notifications.service import notify
from xinyi.outbox.service import emit
from xinyi.records import service as records
from xinyi.repairs import pdf
from xinyi.repairs.models import RepairApplication
from xinyi.repairs.rules import BASIS_ZH, SEVERITY_ZH, shortfalls
from xinyi.subjects import personal
from xinyi.subjects.service import subjects_table
from xinyi.timeutil import china_today
from xinyi.uow import unique_or
from xinyi.volunteering import service as volunteering
from xinyi.workdays.service import DeadlineCounts, deadline, deadline_counts

log = logging.getLogger(__name__)
REVIEW_PURPOSE = "信用修复审核 (credit repair review)"
REAPPLY = ("补充证明材料或满足所缺条件后，可随时通过信易+重新提交信用修复申请"
           "（POST /v1/me/repairs）；对本决定有异议的，可依法申请复核。")


class RepairNotEligible(ValidationFailed):
    code = "repair_not_eligible"
    title = "The record cannot be repaired this way yet"


class RepairPending(Conflict):
    code = "repair_pending"
    title = "An application to repair this record is already under review"


class RepairDecided(Conflict):
    code = "repair_decided"
    title = "This application has already been decided"


class RecordNotActive(Conflict):
    code = "record_not_active"
    title = "The record is no longer shown (archived): there is nothing to repair"


class DecisionNotReady(NotFound):
    code = "decision_not_ready"
    title = "This application has not been decided yet"


@dataclass(frozen=True)
class RepairView:
    id: uuid.UUID
    record_id: uuid.UUID
    catalogue_code: str
    basis: str
    evidence: str | None
    attachments: list[AttachmentView]
    commitment_id: uuid.UUID | None
    hours_required: int | None
    hours_claimed: float
    status: str
    received_on: date
    due_on: date
    due_provisional: bool
    overdue: bool
    created_at: datetime
    decided_at: datetime | None
    decision_reason: str | None
    reapply: str | None
    decision_document: str | None


def _view(session: Session, app: RepairApplication, today: date) -> RepairView:
    decided = app.status != "pending"
    return RepairView(
        id=app.id, record_id=app.record_id, catalogue_code=app.catalogue_code,
        basis=app.basis, evidence=app.evidence,
        attachments=attachments.linked(session, "repair", app.id),
        commitment_id=app.commitment_id, hours_required=app.hours_required,
        hours_claimed=round(app.minutes_claimed / 60, 2), status=app.status,
        received_on=app.received_on, due_on=app.due_on, due_provisional=app.due_provisional,
        overdue=app.status == "pending" and today > app.due_on, created_at=app.created_at,
        decided_at=app.decided_at, decision_reason=app.decision_reason,
        reapply=REAPPLY if app.status == "rejected" else None,
        decision_document=f"/v1/me/repairs/{app.id}/decision.pdf" if decided else None)


def _pending_for(session: Session, record_id: uuid.UUID) -> RepairApplication | None:
    return session.scalar(select(RepairApplication).where(
        RepairApplication.record_id == record_id, RepairApplication.status == "pending"))


def apply(session: Session, deps: Deps, account_id: uuid.UUID,
          body: dict[str, Any]) -> RepairView:
    """Judge the application now: refused with every shortfall named, or accepted today
    with its working-day deadline. A refusal writes nothing."""
    now = deps.clock()
    today = china_today(now)
    bidx = citizen_bidx(session, account_id)
    record = records.subject_record(session, bidx, body["record_id"])
    if record.status != "active":
        raise RecordNotActive()
    ids = attachments.check_owned(session, bidx, body.get("attachment_ids", []))
    if _pending_for(session, record.id) is not None:
        raise RepairPending()
    evidence = (body.get("evidence") or "").strip() or None
    basis = body["basis"]
    available = (volunteering.available_minutes(session, bidx, record.occurred_on)
                 if basis == "volunteer_hours" else 0)
    missing = shortfalls(record, basis=basis, today=today, available_minutes=available,
                         has_evidence=bool(evidence or ids),
                         commitment_accepted=body["commitment_accepted"])
    if missing:
        raise RepairNotEligible(
            "; ".join(f"{m.rule}: {m.message}" for m in missing),
            errors=[{"field": m.field, "location": "json", "messages": [f"{m.rule}: {m.message}"]}
                    for m in missing])
    due = deadline(session, today, deps.settings.repair_working_days)
    app = RepairApplication(
        id=uuid.uuid4(), subject_bidx=bidx, record_id=record.id,
        provider_id=record.provider_id, catalogue_code=record.catalogue_code, basis=basis,
        evidence=evidence, status="pending", received_on=today, due_on=due.due_on,
        due_provisional=due.provisional, created_at=now, minutes_claimed=0,
        hours_required=record.repair_hours_required if basis == "volunteer_hours" else None)
    with unique_or(session, RepairPending):
        session.add(app)
    if basis == "volunteer_hours" and app.hours_required:
        minutes = app.hours_required * 60
        if not volunteering.claim_hours(session, bidx, minutes=minutes, ref=f"repair:{app.id}",
                                        since=record.occurred_on, now=now):
            raise RepairPending("Another application is using these hours at this moment")
        app.minutes_claimed = minutes
    commitment = record_commitment(session, deps, bidx, purpose="repair",
                                   ref=f"repair:{app.id}", now=now)
    app.commitment_id = commitment.id
    attachments.link(session, ids, case_kind="repair", case_id=app.id,
                     provider_id=record.provider_id)
    notify(session, deps, bidx, "repair_received",
           {"record": record.name_zh, "received_on": today.isoformat(),
            "due_on": due.due_on.isoformat()}, now=now, ref=f"repair:{app.id}",
           dedupe_key=f"repair_received:{app.id}")
    session.flush()
    log.info("repair application accepted", extra={"event": "repair_applied",
                                                    "repair_id": str(app.id), "basis": basis})
    return _view(session, app, today)


def _mine(session: Session, account_id: uuid.UUID, repair_id: uuid.UUID) -> RepairApplication:
    app = session.get(RepairApplication, repair_id)
    if app is None or app.subject_bidx != citizen_bidx(session, account_id):
        raise NotFound("No application of yours has this id")
    return app


def my_repairs(session: Session, deps: Deps, account_id: uuid.UUID, *, page: int,
               page_size: int) -> tuple[list[RepairView], int]:
    bidx = citizen_bidx(session, account_id)
    where = [RepairApplication.subject_bidx == bidx]
    total = session.scalar(select(func.count()).select_from(RepairApplication)
                           .where(*where)) or 0
    rows = session.scalars(select(RepairApplication).where(*where)
                           .order_by(RepairApplication.created_at.desc(), RepairApplication.id)
                           .limit(page_size).offset((page - 1) * page_size))
    today = china_today(deps.clock())
    return [_view(session, a, today) for a in rows], total


def my_repair(session: Session, deps: Deps, account_id: uuid.UUID,
              repair_id: uuid.UUID) -> RepairView:
    return _view(session, _mine(session, account_id, repair_id), china_today(deps.clock()))


def decision_pdf(session: Session, account_id: uuid.UUID, repair_id: uuid.UUID) -> bytes:
    app = _mine(session, account_id, repair_id)
    if app.decision_pdf is None:
        raise DecisionNotReady()
    return app.decision_pdf


# ---- the reviewer's side -------------------------------------------------------------------

def queue(session: Session, deps: Deps, reviewer: Principal, *, status: str | None,
          overdue: bool | None, page: int, page_size: int) -> tuple[list[RepairView], int]:
    """Applications, the most urgent first; each citizen shown gets an access-log entry."""
    today = china_today(deps.clock())
    where = []
    if status:
        where.append(RepairApplication.status == status)
    if overdue is True:
        where += [RepairApplication.status == "pending", RepairApplication.due_on < today]
    elif overdue is False:
        where.append((RepairApplication.status != "pending") | (RepairApplication.due_on >= today))
    total = session.scalar(select(func.count()).select_from(RepairApplication)
                           .where(*where)) or 0
    rows = list(session.scalars(
        select(RepairApplication).where(*where)
        .order_by((RepairApplication.status != "pending"), RepairApplication.due_on,
                  RepairApplication.created_at, RepairApplication.id)
        .limit(page_size).offset((page - 1) * page_size)))
    staff_read(session, [a.subject_bidx for a in rows], staff_id=reviewer.id,
               role=reviewer.kind, action="repair_queue", scope="repair",
               purpose=REVIEW_PURPOSE, now=deps.clock())
    return [_view(session, a, today) for a in rows], total


def review(session: Session, deps: Deps, reviewer: Principal,
           repair_id: uuid.UUID) -> RepairView:
    app = session.get(RepairApplication, repair_id)
    if app is None:
        raise NotFound("No application has this id")
    staff_read(session, [app.subject_bidx], staff_id=reviewer.id, role=reviewer.kind,
               action="repair_review", scope="repair", purpose=REVIEW_PURPOSE, now=deps.clock())
    return _view(session, app, china_today(deps.clock()))


def _applicant(session: Session, deps: Deps, bidx: bytes) -> str:
    subjects = subjects_table()
    enc = session.scalar(select(subjects.c.id_number_enc).where(subjects.c.bidx == bidx))
    return personal.masked_id_number(session, deps, bidx, enc) if enc else ""


def decide(session: Session, deps: Deps, reviewer: Principal, repair_id: uuid.UUID, *,
           outcome: str, reason: str) -> RepairView:
    """Decide once (a second decision is a conflict). The decision is in the citizen's
    access log; approval archives the record and recomputes the score."""
    now = deps.clock()
    today = china_today(now)
    app = session.scalar(select(RepairApplication).where(RepairApplication.id == repair_id)
                         .with_for_update())
    if app is None:
        raise NotFound("No application has this id")
    if app.status != "pending":
        raise RepairDecided()
    record = records.record_facts(session, app.record_id)
    approved = outcome == "approved"
    if approved and not records.archive_for_repair(session, deps, app.record_id):
        raise RecordNotActive("The record was archived meanwhile (e.g. withdrawn after an "
                              "objection): reject this application instead")
    if not approved:
        volunteering.release_claim(session, f"repair:{app.id}", now)
    app.status, app.decided_at, app.decided_by = outcome, now, reviewer.id
    app.decision_reason = reason
    app.decision_pdf = pdf.render(pdf.DecisionText(
        number=f"XYXF-{app.received_on:%Y%m%d}-{app.id.hex[:8].upper()}",
        applicant=_applicant(session, deps, app.subject_bidx), record_name=record.name_zh,
        record_code=record.catalogue_code, severity=SEVERITY_ZH.get(record.severity or "", ""),
        occurred_on=record.occurred_on, basis=BASIS_ZH[app.basis],
        received_on=app.received_on, due_on=app.due_on, approved=approved, reason=reason,
        decided_on=today, reapply=None if approved else REAPPLY))
    staff_read(session, [app.subject_bidx], staff_id=reviewer.id, role=reviewer.kind,
               action=f"repair_{outcome}", scope="repair", purpose=REVIEW_PURPOSE, now=now)
    notify(session, deps, app.subject_bidx, f"repair_{outcome}", {"record": record.name_zh},
           now=now, ref=f"repair:{app.id}", dedupe_key=f"repair_decided:{app.id}", sms=True)
    if approved:
        emit(session, "record.repaired", {"record_id": str(app.record_id),
                                          "repair_id": str(app.id),
                                          "catalogue_code": app.catalogue_code,
                                          "repaired_on": today.isoformat()},
             now=now, subject_bidx=app.subject_bidx)
    session.flush()
    log.info("repair decided", extra={"event": "repair_decided", "repair_id": str(app.id),
                                      "outcome": outcome})
    return _view(session, app, today)


# ---- the worker's sweeps -------------------------------------------------------------------

def flag_overdue(session: Session, deps: Deps) -> int:
    """An alert to staff for each pending application past its deadline (once each)."""
    now = deps.clock()
    today = china_today(now)
    late = list(session.scalars(select(RepairApplication.id).where(
        RepairApplication.status == "pending", RepairApplication.due_on < today)))
    for repair_id in late:
        raise_alert(session, kind="repair_overdue", ref=f"repair:{repair_id}",
                    text=f"Repair application {repair_id} is past its deadline of working "
                         "days and still undecided",
                    dedupe_key=f"repair_overdue:{repair_id}", now=now)
    return len(late)


def recompute_provisional(session: Session, deps: Deps) -> int:
    """Deadlines counted Monday to Friday because a year was unknown are counted again once
    it is known; each that moved is reported to staff."""
    now = deps.clock()
    changed = 0
    for app in session.scalars(select(RepairApplication).where(
            RepairApplication.status == "pending", RepairApplication.due_provisional)):
        due = deadline(session, app.received_on, deps.settings.repair_working_days)
        if due.provisional:
            continue
        moved = due.due_on != app.due_on
        app.due_on, app.due_provisional = due.due_on, False
        if moved:
            changed += 1
        raise_alert(session, kind="deadline_recomputed", ref=f"repair:{app.id}",
                    text=f"Repair application {app.id}: the official calendar is now known; "
                         f"its deadline is {due.due_on.isoformat()}"
                         + (" (moved)" if moved else " (unchanged)"),
                    dedupe_key=f"deadline_recomputed:repair:{app.id}", now=now)
    return changed


def export_repairs(session: Session, deps: Deps, account_id: uuid.UUID,
                   bidx: bytes) -> list[dict[str, Any]]:
    """Every repair application of the citizen and its decision (export; the decision PDF
    stays at ``/v1/me/repairs/{id}/decision.pdf``)."""
    return [row(r, "id", "record_id", "provider_id", "catalogue_code", "basis", "evidence",
                "commitment_id", "hours_required", "minutes_claimed", "status", "received_on",
                "due_on", "due_provisional", "created_at", "decided_at", "decision_reason")
            for r in session.scalars(select(RepairApplication)
                                     .where(RepairApplication.subject_bidx == bidx)
                                     .order_by(RepairApplication.created_at,
                                               RepairApplication.id))]
# ---- the credit office's statistics (counts only) ------------------------------------------

def status_counts(session: Session) -> dict[str, int]:
    """Applications per status (``pending``, ``approved``, ``rejected``): one GROUP BY."""
    return {status: int(n) for status, n in session.execute(
        select(RepairApplication.status, func.count()).group_by(RepairApplication.status))}


def deadline_compliance(session: Session, today: date) -> DeadlineCounts:
    """Decisions within the 3 working days, and pending applications past them."""
    r = RepairApplication
    return deadline_counts(session, due_on=r.due_on, decided_at=r.decided_at,
                           is_open=r.status == "pending", today=today)
