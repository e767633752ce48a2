"""What the consents service hands its routes: frozen snapshots, one per response schema
(``consents/schemas.py``), which the routes' ``@response`` schemas dump.

A status is computed at the service's ``now`` (a pending request past its lapse time reads
as expired), so the snapshot, not the model, is what the answer says.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


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
