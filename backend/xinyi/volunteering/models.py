"""Volunteers registered by organisations, their service records and the hours repairs use."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow


class Volunteer(Base):
    """A person an organisation registered as its volunteer. Removed by the organisation or
    left by the citizen: the row stays (its service records point at it), inactive."""

    __tablename__ = "volunteers"
    __table_args__ = (
        UniqueConstraint("org_id", "subject_bidx", name="uq_volunteers_org_subject"),
        Index("ix_volunteers_subject", "subject_bidx"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None]
    left_at: Mapped[datetime | None]


class ServiceRecord(Base):
    """Hours of service at one activity, posted by the organisation; idempotent on
    (organisation, activity, volunteer)."""

    __tablename__ = "service_records"
    __table_args__ = (
        UniqueConstraint("org_id", "activity_ref", "subject_bidx",
                         name="uq_service_records_org_activity_subject"),
        CheckConstraint("ended_at > started_at", name="interval_positive"),
        CheckConstraint("minutes > 0 AND minutes <= 720", name="minutes_bounded"),
        CheckConstraint("status IN ('accepted', 'retracted')", name="status_known"),
        CheckConstraint("(status = 'accepted' AND retracted_at IS NULL) OR "
                        "(status = 'retracted' AND retracted_at IS NOT NULL "
                        "AND retraction_reason IS NOT NULL)", name="retraction_complete"),
        Index("ix_service_records_subject_start", "subject_bidx", "started_at"),
        Index("ix_service_records_org_created", "org_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    volunteer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("volunteers.id"))
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    activity_ref: Mapped[str] = mapped_column(String(128))
    activity_name: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    # The China date the service started on: the yearly score cap counts by it.
    service_day: Mapped[date] = mapped_column(Date)
    minutes: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16), default="accepted")
    retracted_at: Mapped[datetime | None]
    retraction_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HoursClaim(Base):
    """Hours set against one repair application, so the same hours never repair two records.
    Released when the application is rejected; kept when it is approved."""

    __tablename__ = "hours_claims"
    __table_args__ = (CheckConstraint("minutes > 0", name="minutes_positive"),
                      Index("ix_hours_claims_subject", "subject_bidx", "released_at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    ref: Mapped[str] = mapped_column(String(100), unique=True)
    minutes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None]
