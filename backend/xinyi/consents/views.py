"""What the consents service hands its routes: frozen snapshots, one per response schema
(``consents/schemas.py``), which the routes' ``@response`` schemas dump.

A status is computed at the service's ``now`` (a pending request past its lapse time reads
as expired), so the snapshot, not the model, is what the answer says.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class PartnerView:
    """``PartnerOut``."""

    id: uuid.UUID
    name: str
    kind: str | None


@dataclass(frozen=True)
class CitizenRequestView:
    """``CitizenConsentRequestOut``: a partner's request as the citizen sees it."""

    id: uuid.UUID
    partner: PartnerView
    scope: str
    purpose: str
    requested_duration_seconds: int
    status: str
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True)
class ConsentView:
    """``ConsentOut``."""

    id: uuid.UUID
    partner: PartnerView
    scope: str
    purpose: str
    status: str
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    request_id: uuid.UUID | None


@dataclass(frozen=True)
class PartnerRequestView:
    """``PartnerConsentRequestOut``: the request as the partner sees it, the citizen under
    the partner's own pseudonym."""

    id: uuid.UUID
    subject: str
    scope: str
    purpose: str
    expires_in: int
    status: str
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    consent_id: uuid.UUID | None


@dataclass(frozen=True)
class ReportRecordView:
    """``ReportRecordOut``: a displayed record, as a full report shows it."""

    catalogue_code: str
    name_zh: str
    name_en: str
    polarity: str
    severity: str | None
    occurred_at: date
    points: int
    display_until: date
    under_objection: bool


@dataclass(frozen=True)
class ReportView:
    """``ReportOut``: what the consent's scope allows; ``records`` only with the full scope."""

    subject: str
    scope: str
    consent_id: uuid.UUID
    consent_expires_at: datetime
    generated_at: datetime
    tier: str
    score: int
    positive_records: int
    negative_records: int
    records_under_objection: int
    records: tuple[ReportRecordView, ...] | None = None


@dataclass(frozen=True)
class Withdrawal:
    revoked: int
