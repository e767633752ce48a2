"""What the records service hands its routes for reading: frozen snapshots, one per response
schema, which the routes' ``@response`` schemas dump (``records/schemas.py``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class CitizenRecordView:
    """``CitizenRecordOut``: one record with its catalogue item, as its citizen sees it."""

    id: uuid.UUID
    catalogue_code: str
    name_zh: str
    name_en: str
    polarity: str
    severity: str | None
    domain: str
    occurred_at: date
    summary: str
    points: int
    display_until: date
    repair_from: date | None
    status: str
    archived_reason: str | None
    source: str
    repair_hours_required: int | None
    under_objection: bool
    objection_note: str | None


@dataclass(frozen=True)
class ListEntryView:
    """``ListEntryOut``: a red- or black-list entry, its subject masked."""

    id: uuid.UUID
    list: str
    catalogue_code: str
    legal_basis: str
    record_id: uuid.UUID
    subject: str
    entered_at: datetime
    left_at: datetime | None
    left_reason: str | None
