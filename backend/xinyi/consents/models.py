"""Consent requests from partners and the consents citizens grant (授权, R3)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow

SCOPES = ("report.summary", "report.full")
REQUEST_STATUSES = ("pending", "approved", "denied", "expired", "withdrawn")
MIN_DURATION_SECONDS = 3600
MAX_DURATION_SECONDS = 365 * 24 * 3600

_SCOPE_KNOWN = "scope IN ('report.summary', 'report.full')"


class ConsentRequest(Base):
    """A partner asks a citizen for authorisation (授权申请) for one scope and purpose."""

    __tablename__ = "consent_requests"
    __table_args__ = (
        CheckConstraint(_SCOPE_KNOWN, name="scope_known"),
        CheckConstraint(
            "status IN ('pending', 'approved', 'denied', 'expired', 'withdrawn')",
            name="status_known"),
        CheckConstraint(
            f"requested_duration_seconds BETWEEN {MIN_DURATION_SECONDS} "
            f"AND {MAX_DURATION_SECONDS}", name="duration_bounded"),
        CheckConstraint(
            "(status IN ('approved', 'denied') AND decided_at IS NOT NULL) OR "
            "(status IN ('pending', 'expired', 'withdrawn') AND decided_at IS NULL)",
            name="decided_when_decided"),
        CheckConstraint("expires_at > created_at", name="expires_after_creation"),
        Index("ix_consent_requests_subject_status", "subject_bidx", "status", "expires_at"),
        Index("ix_consent_requests_status_expires", "status", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    scope: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(500))
    requested_duration_seconds: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]


class Consent(Base):
    """A citizen's authorisation (授权) of one partner for one scope and purpose, until
    ``expires_at`` or until revoked (撤回授权), whichever comes first."""

    __tablename__ = "consents"
    __table_args__ = (
        CheckConstraint(_SCOPE_KNOWN, name="scope_known"),
        CheckConstraint("expires_at > granted_at", name="expires_after_grant"),
        CheckConstraint("revoked_at IS NULL OR revoked_at >= granted_at",
                        name="revoked_after_grant"),
        Index("ix_consents_subject_partner", "subject_bidx", "partner_id", "expires_at"),
        Index("ix_consents_subject_granted", "subject_bidx", "granted_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    scope: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(500))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # Unique: one request approved twice (even by two racing calls) can never make two consents.
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("consent_requests.id"), unique=True)
