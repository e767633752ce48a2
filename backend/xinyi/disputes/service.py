"""Objections (异议, R8): one open per record, shown as "under objection" wherever the record
is shown, resolved within working days (``XINYI_DISPUTE_WORKING_DAYS``, 15) by the record's
provider or a reviewer. A correction or deletion recomputes the score and tells partners with
a live consent (``record.corrected``); an upheld record stays, with the reason shown."""

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
from xinyi.audit import service as audit
from xinyi.auth.principal import Principal
from xinyi.citizens.service import citizen_bidx
from xinyi.deps import Deps
from xinyi.disputes.models import Dispute
from xinyi.errors import Conflict, NotFound, ValidationFailed
from xinyi.jsonable import row
from xinyi.notifications.service import notify
from xinyi.outbox.service import emit
from xinyi.records import service as records
from xinyi.timeutil import china_today
from xinyi.uow import unique_or
from xinyi.workdays.service import DeadlineCounts, deadline, deadline_counts

log = logging.getLogger(__name__)
REVIEW_PURPOSE = "异议处理 (objection handling)"
OUTCOME_ZH = {"corrected": "已更正", "deleted": "已删除", "upheld": "维持原记录"}


class DisputeOpen(Conflict):
    code = "dispute_open"
    title = "An objection to this record is already being handled"


class DisputeResolved(Conflict):
    code = "dispute_resolved"
    title = "This objection has already been resolved"


class RecordNotActive(Conflict):
    code = "record_not_active"
    title = "The record is no longer shown (archived): there is nothing to object to"


@dataclass(frozen=True)
class DisputeView:
    id: uuid.UUID
    record_id: uuid.UUID
    catalogue_code: str
    reason: str
    evidence: str | None
    attachments: list[AttachmentView]
    status: str
    filed_at: datetime
    received_on: date
    due_on: date
    due_provisional: bool
    overdue: bool
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_reason: str | None
    correction: dict[str, Any] | None


def _view(session: Session, d: Dispute, today: date) -> DisputeView:
    return DisputeView(
        id=d.id, record_id=d.record_id, catalogue_code=d.catalogue_code, reason=d.reason,
        evidence=d.evidence, attachments=attachments.linked(session, "dispute", d.id),
        status=d.status, filed_at=d.filed_at, received_on=d.received_on, due_on=d.due_on,
        due_provisional=d.due_provisional, overdue=d.status == "open" and today > d.due_on,
        resolved_at=d.resolved_at, resolved_by=d.resolved_by_kind,
        resolution_reason=d.resolution_reason, correction=d.correction)


def file(session: Session, deps: Deps, account_id: uuid.UUID,
         body: dict[str, Any]) -> DisputeView:
    now = deps.clock()
    today = china_today(now)
    bidx = citizen_bidx(session, account_id)
    record = records.subject_record(session, bidx, body["record_id"])
    if record.status != "active":
        raise RecordNotActive()
    ids = attachments.check_owned(session, bidx, body.get("attachment_ids", []))
    if session.scalar(select(Dispute.id).where(Dispute.record_id == record.id,
                                               Dispute.status == "open")) is not None:
        raise DisputeOpen()
    due = deadline(session, today, deps.settings.dispute_working_days)
    dispute = Dispute(id=uuid.uuid4(), subject_bidx=bidx, record_id=record.id,
                      provider_id=record.provider_id, catalogue_code=record.catalogue_code,
                      reason=body["reason"].strip(),
                      evidence=(body.get("evidence") or "").strip() or None, status="open",
                      filed_at=now, received_on=today, due_on=due.due_on,
                      due_provisional=due.provisional)
    with unique_or(session, DisputeOpen):
        session.add(dispute)
    records.mark_disputed(session, record.id, status="open")
    attachments.link(session, ids, case_kind="dispute", case_id=dispute.id,
                     provider_id=record.provider_id)
    notify(session, deps, bidx, "dispute_received",
           {"record": record.name_zh, "received_on": today.isoformat(),
            "due_on": due.due_on.isoformat()}, now=now, ref=f"dispute:{dispute.id}",
           dedupe_key=f"dispute_received:{dispute.id}")
    session.flush()
    return _view(session, dispute, today)


def my_disputes(session: Session, deps: Deps, account_id: uuid.UUID, *, page: int,
                page_size: int) -> tuple[list[DisputeView], int]:
    bidx = citizen_bidx(session, account_id)
    return _page(session, deps, [Dispute.subject_bidx == bidx], page, page_size)


def my_dispute(session: Session, deps: Deps, account_id: uuid.UUID,
               dispute_id: uuid.UUID) -> DisputeView:
    d = session.get(Dispute, dispute_id)
    if d is None or d.subject_bidx != citizen_bidx(session, account_id):
        raise NotFound("No objection of yours has this id")
    return _view(session, d, china_today(deps.clock()))


def _page(session: Session, deps: Deps, where: list[Any], page: int,
          page_size: int) -> tuple[list[DisputeView], int]:
    total = session.scalar(select(func.count()).select_from(Dispute).where(*where)) or 0
    rows = list(session.scalars(select(Dispute).where(*where)
                                .order_by((Dispute.status != "open"), Dispute.due_on,
                                          Dispute.filed_at, Dispute.id)
                                .limit(page_size).offset((page - 1) * page_size)))
    today = china_today(deps.clock())
    return [_view(session, d, today) for d in rows], total


def _record_read(session: Session, deps: Deps, who: Principal, subjects: list[bytes],
                 action: str) -> None:
    now = deps.clock()
    if who.kind == "provider":
        for bidx in dict.fromkeys(subjects):
            audit.append(session, audit.Access(
                subject_bidx=bidx, actor_type="provider", actor_id=str(who.id),
                actor_name=who.client_name or "unknown", action=action, scope="dispute",
                purpose=REVIEW_PURPOSE), now=now)
    else:
        audit.staff_read(session, subjects, staff_id=who.id, role=who.kind, action=action,
                         scope="dispute", purpose=REVIEW_PURPOSE, now=now)


def queue(session: Session, deps: Deps, who: Principal, *, status: str | None, page: int,
          page_size: int) -> tuple[list[DisputeView], int]:
    """A provider sees the objections to its own records; a reviewer sees all. Each citizen
    shown gets an access-log entry."""
    where: list[Any] = []
    if who.kind == "provider":
        where.append(Dispute.provider_id == who.id)
    if status:
        where.append(Dispute.status == status)
    items, total = _page(session, deps, where, page, page_size)
    shown = [d.subject_bidx for d in session.scalars(
        select(Dispute).where(Dispute.id.in_([i.id for i in items])))] if items else []
    _record_read(session, deps, who, shown, "dispute_queue")
    return items, total


def resolve(session: Session, deps: Deps, who: Principal, dispute_id: uuid.UUID, *,
            outcome: str, reason: str, correction: dict[str, Any] | None) -> DisputeView:
    now = deps.clock()
    today = china_today(now)
    dispute = session.scalar(select(Dispute).where(Dispute.id == dispute_id).with_for_update())
    if dispute is None or (who.kind == "provider" and dispute.provider_id != who.id):
        raise NotFound("No objection you may resolve has this id")
    if dispute.status != "open":
        raise DisputeResolved()
    if outcome == "corrected" and not correction:
        raise ValidationFailed.at("correction", "a correction needs the corrected fields",
                                  detail="correction: required when the outcome is corrected")
    if outcome != "corrected" and correction:
        raise ValidationFailed.at("correction", "only a correction carries corrected fields",
                                  detail="correction: only with the outcome corrected")
    record = records.record_facts(session, dispute.record_id)
    if outcome == "corrected":
        assert correction is not None
        records.mark_disputed(session, dispute.record_id, status=None)
        records.correct_for_dispute(session, deps, dispute.record_id, correction)
    elif outcome == "deleted":
        records.mark_disputed(session, dispute.record_id, status=None)
        records.delete_for_dispute(session, deps, dispute.record_id)
    else:
        records.mark_disputed(session, dispute.record_id, status="upheld", note=reason)
    dispute.status, dispute.resolved_at, dispute.resolution_reason = outcome, now, reason
    dispute.resolved_by_kind = "provider" if who.kind == "provider" else "reviewer"
    dispute.resolved_by_id = who.id
    dispute.correction = ({k: (v.isoformat() if isinstance(v, date) else v)
                           for k, v in correction.items()} if correction else None)
    _record_read(session, deps, who, [dispute.subject_bidx], f"dispute_{outcome}")
    # A correction goes through records' own correction, which emits ``record.corrected``;
    # a deletion archives the record, so it is said here (once either way).
    if outcome == "deleted":
        emit(session, "record.corrected", {"record_id": str(dispute.record_id),
                                           "dispute_id": str(dispute.id), "outcome": outcome,
                                           "catalogue_code": record.catalogue_code},
             now=now, subject_bidx=dispute.subject_bidx)
    notify(session, deps, dispute.subject_bidx, "dispute_resolved",
           {"record": record.name_zh, "outcome": OUTCOME_ZH[outcome]}, now=now,
           ref=f"dispute:{dispute.id}", dedupe_key=f"dispute_resolved:{dispute.id}", sms=True)
    session.flush()
    log.info("objection resolved", extra={"event": "dispute_resolved",
                                          "dispute_id": str(dispute.id), "outcome": outcome})
    return _view(session, dispute, today)


def flag_overdue(session: Session, deps: Deps) -> int:
    now = deps.clock()
    late = list(session.scalars(select(Dispute.id).where(
        Dispute.status == "open", Dispute.due_on < china_today(now))))
    for dispute_id in late:
        raise_alert(session, kind="dispute_overdue", ref=f"dispute:{dispute_id}",
                    text=f"Objection {dispute_id} is past its deadline and still open",
                    dedupe_key=f"dispute_overdue:{dispute_id}", now=now)
    return len(late)


def recompute_provisional(session: Session, deps: Deps) -> int:
    now = deps.clock()
    changed = 0
    for d in session.scalars(select(Dispute).where(Dispute.status == "open",
                                                   Dispute.due_provisional)):
        due = deadline(session, d.received_on, deps.settings.dispute_working_days)
        if due.provisional:
            continue
        moved = due.due_on != d.due_on
        d.due_on, d.due_provisional = due.due_on, False
        changed += moved
        raise_alert(session, kind="deadline_recomputed", ref=f"dispute:{d.id}",
                    text=f"Objection {d.id}: the official calendar is now known; its "
                         f"deadline is {due.due_on.isoformat()}"
                         + (" (moved)" if moved else " (unchanged)"),
                    dedupe_key=f"deadline_recomputed:dispute:{d.id}", now=now)
    return changed


def export_disputes(session: Session, deps: Deps, account_id: uuid.UUID,
                    bidx: bytes) -> list[dict[str, Any]]:
    """Every objection the citizen filed and how it was resolved (export)."""
    return [row(d, "id", "record_id", "provider_id", "catalogue_code", "reason", "evidence",
                "status", "filed_at", "received_on", "due_on", "due_provisional",
                "resolved_at", "resolved_by_kind", "resolution_reason", "correction")
            for d in session.scalars(select(Dispute).where(Dispute.subject_bidx == bidx)
                                     .order_by(Dispute.filed_at, Dispute.id))]
# ---- the credit office's statistics (counts only) ------------------------------------------

def outcome_counts(session: Session) -> dict[str, int]:
    """Objections per status (``open`` or the outcome: ``corrected``, ``deleted``,
    ``upheld``): one GROUP BY."""
    return {status: int(n) for status, n in session.execute(
        select(Dispute.status, func.count()).group_by(Dispute.status))}


def deadline_compliance(session: Session, today: date) -> DeadlineCounts:
    """Resolutions within the working days allowed, and open objections past them."""
    return deadline_counts(session, due_on=Dispute.due_on, decided_at=Dispute.resolved_at,
                           is_open=Dispute.status == "open", today=today)
