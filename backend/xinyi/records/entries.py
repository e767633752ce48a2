"""A subject's red- and black-list entries (名单认定) with the record and the catalogue rule
that put them there: the automated decision, explained to the citizen it is about."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xinyi.records.models import CatalogueItem, CreditRecord, ListEntry


@dataclass(frozen=True)
class ListEntryFacts:
    id: uuid.UUID
    record_id: uuid.UUID
    list: str  # red | black
    catalogue_code: str
    item_name_zh: str
    polarity: str
    severity: str | None
    legal_basis: str
    record_occurred_on: date
    record_status: str
    entered_at: datetime
    left_at: datetime | None
    left_reason: str | None


_FACTS = (select(ListEntry, CatalogueItem.name_zh, CatalogueItem.polarity, CatalogueItem.severity,
                 CreditRecord.occurred_on, CreditRecord.status)
          .join(CatalogueItem, CatalogueItem.code == ListEntry.catalogue_code)
          .join(CreditRecord, CreditRecord.id == ListEntry.record_id))


def _facts(row: Any) -> ListEntryFacts:
    e = row[0]
    return ListEntryFacts(id=e.id, record_id=e.record_id, list=e.list,
                          catalogue_code=e.catalogue_code, item_name_zh=row[1], polarity=row[2],
                          severity=row[3], legal_basis=e.legal_basis, record_occurred_on=row[4],
                          record_status=row[5], entered_at=e.entered_at, left_at=e.left_at,
                          left_reason=e.left_reason)


def entries_about(session: Session, bidx: bytes) -> list[ListEntryFacts]:
    """Every list entry of this subject, newest first (including those since left)."""
    return [_facts(r) for r in session.execute(
        _FACTS.where(ListEntry.subject_bidx == bidx)
        .order_by(ListEntry.entered_at.desc(), ListEntry.id))]


def entry_about(session: Session, bidx: bytes, entry_id: uuid.UUID) -> ListEntryFacts | None:
    row = session.execute(_FACTS.where(ListEntry.id == entry_id,
                                       ListEntry.subject_bidx == bidx)).first()
    return None if row is None else _facts(row)
