"""Reading records: the citizen's own view, the lists of the credit office (every staff read
of a citizen is registered in the access log) and the record counts of its statistics."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xinyi.audit.service import staff_read
from xinyi.auth.principal import Principal
from xinyi.auth.service import client_name_of
from xinyi.citizens.service import citizen_bidx
from xinyi.deps import Deps
from xinyi.records.models import CatalogueItem, CreditRecord, ListEntry
from xinyi.records.views import CitizenRecordView, ListEntryView
from xinyi.subjects import personal
from xinyi.subjects.service import subjects_table

SUBJECTS = subjects_table()


def citizen_records(session: Session, account_id: uuid.UUID, *, archived: bool, page: int,
                    page_size: int) -> tuple[list[CitizenRecordView], int]:
    bidx = citizen_bidx(session, account_id)
    status = "archived" if archived else "active"
    where = (CreditRecord.subject_bidx == bidx, CreditRecord.status == status)
    total = session.scalar(select(func.count()).select_from(CreditRecord).where(*where)) or 0
    rows = session.execute(
        select(CreditRecord, CatalogueItem, client_name_of(CreditRecord.provider_id))
        .join(CatalogueItem, CatalogueItem.code == CreditRecord.catalogue_code)
        .where(*where).order_by(CreditRecord.occurred_on.desc(), CreditRecord.id)
        .limit(page_size).offset((page - 1) * page_size))
    items = [CitizenRecordView(
        id=r.id, catalogue_code=c.code, name_zh=c.name_zh, name_en=c.name_en,
        polarity=c.polarity, severity=c.severity, domain=c.domain,
        occurred_at=r.occurred_on, summary=r.summary, points=r.points,
        display_until=r.display_until, repair_from=r.repair_from, status=r.status,
        archived_reason=r.archived_reason, source=source,
        repair_hours_required=c.repair_hours_required,
        under_objection=r.objection_status == "open",
        objection_note=r.objection_note if r.objection_status == "upheld" else None)
        for r, c, source in rows]
    return items, total


# ---- lists and statistics for the credit office -------------------------------------------

def list_entries(session: Session, deps: Deps, reader: Principal, *, list_name: str | None,
                 include_left: bool, page: int, page_size: int
                 ) -> tuple[list[ListEntryView], int]:
    """A page of list entries; each citizen shown gets one access-log entry (a staff read)."""
    where = []
    if list_name:
        where.append(ListEntry.list == list_name)
    if not include_left:
        where.append(ListEntry.left_at.is_(None))
    total = session.scalar(select(func.count()).select_from(ListEntry).where(*where)) or 0
    rows = session.execute(
        select(ListEntry, SUBJECTS.c.id_number_enc)
        .join(SUBJECTS, SUBJECTS.c.bidx == ListEntry.subject_bidx).where(*where)
        .order_by(ListEntry.entered_at.desc(), ListEntry.id)
        .limit(page_size).offset((page - 1) * page_size))
    shown = list(rows)
    personal.load(session, deps, [e.subject_bidx for e, _ in shown])
    items = [ListEntryView(
        id=e.id, list=e.list, catalogue_code=e.catalogue_code,
        legal_basis=e.legal_basis, record_id=e.record_id,
        subject=personal.masked_id_number(session, deps, e.subject_bidx, enc),
        entered_at=e.entered_at, left_at=e.left_at, left_reason=e.left_reason)
        for e, enc in shown]
    staff_read(session, [e.subject_bidx for e, _ in shown], staff_id=reader.id,
               role=reader.kind, action="list_review", scope="lists",
               purpose="红黑名单管理 (red/black lists)", now=deps.clock())
    return items, total


def record_counts(session: Session) -> list[tuple[str, str | None, str, int]]:
    """Active records per catalogue domain, severity and polarity (one GROUP BY): the credit
    office's statistics."""
    return [(d, sev, pol, int(n)) for d, sev, pol, n in session.execute(
        select(CatalogueItem.domain, CatalogueItem.severity, CatalogueItem.polarity,
               func.count())
        .join(CreditRecord, CreditRecord.catalogue_code == CatalogueItem.code)
        .where(CreditRecord.status == "active")
        .group_by(CatalogueItem.domain, CatalogueItem.severity, CatalogueItem.polarity)
        .order_by(CatalogueItem.domain, CatalogueItem.polarity, CatalogueItem.severity))]
