"""Catalogue items, subjects (people known by ID number), credit records and list entries."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
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

POLARITIES = ("positive", "negative")
SEVERITIES = ("minor", "general", "serious")
RECORD_STATUSES = ("active", "archived")
ARCHIVE_REASONS = ("expired", "repaired", "withdrawn")
OCCUPATIONS = ("teacher", "doctor", "nurse", "lawyer", "civil_servant", "accountant",
               "journalist", "pharmacist", "engineer", "notary", "auditor", "other")


class CatalogueItem(Base):
    """One kind of credit information (信用信息目录 item) and its rules."""

    __tablename__ = "catalogue_items"
    __table_args__ = (
        CheckConstraint("polarity IN ('positive', 'negative')", name="polarity_known"),
        CheckConstraint(
            "(polarity = 'positive' AND points > 0 AND severity IS NULL) OR "
            "(polarity = 'negative' AND points < 0 AND severity IN "
            "('minor', 'general', 'serious'))", name="points_match_polarity"),
        CheckConstraint("display_months > 0", name="display_positive"),
        CheckConstraint("repair_hours_required IS NULL OR repair_hours_required >= 0",
                        name="repair_hours_not_negative"),
    )

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    polarity: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str | None] = mapped_column(String(16))
    domain: Mapped[str] = mapped_column(String(64))
    points: Mapped[int] = mapped_column(Integer)
    display_months: Mapped[int] = mapped_column(Integer)
    repair_after_months: Mapped[int | None] = mapped_column(Integer)
    repairable_by_volunteering: Mapped[bool] = mapped_column(Boolean)
    # Volunteer hours a repair by volunteering needs (None: volunteering alone never repairs
    # it). Read when an application arrives, so a staff edit applies to the next one.
    repair_hours_required: Mapped[int | None] = mapped_column(Integer)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CreditRecord(Base):
    """A record pushed by a data provider. Points and periods are fixed when it is recorded,
    so a later catalogue edit never silently rewrites what a citizen was told."""

    __tablename__ = "credit_records"
    __table_args__ = (
        UniqueConstraint("provider_id", "provider_ref", name="uq_credit_records_provider_ref"),
        CheckConstraint("status IN ('active', 'archived')", name="status_known"),
        CheckConstraint(
            "(status = 'active' AND archived_reason IS NULL) OR "
            "(status = 'archived' AND archived_reason IN ('expired', 'repaired', 'withdrawn'))",
            name="archive_reason_matches"),
        Index("ix_credit_records_subject_status", "subject_bidx", "status"),
        Index("ix_credit_records_status_display", "status", "display_until"),
        CheckConstraint("objection_status IS NULL OR objection_status IN ('open', 'upheld')",
                        name="objection_status_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    provider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    provider_ref: Mapped[str] = mapped_column(String(128))
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    catalogue_code: Mapped[str] = mapped_column(ForeignKey("catalogue_items.code"))
    occurred_on: Mapped[date] = mapped_column(Date)
    summary: Mapped[str] = mapped_column(String(500))
    occupation: Mapped[str | None] = mapped_column(String(32))
    points: Mapped[int] = mapped_column(Integer)
    display_months: Mapped[int] = mapped_column(Integer)
    repair_after_months: Mapped[int | None] = mapped_column(Integer)
    display_until: Mapped[date] = mapped_column(Date)
    repair_from: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="active")
    archived_reason: Mapped[str | None] = mapped_column(String(16))
    archived_at: Mapped[datetime | None]
    # An objection (异议): "open" while one is being handled (shown as under objection
    # wherever the record is shown), "upheld" once one was rejected, with its reason.
    objection_status: Mapped[str | None] = mapped_column(String(8))
    objection_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ListEntry(Base):
    """A red-list (红名单) or black-list (黑名单) entry; only items with a legal basis make one."""

    __tablename__ = "list_entries"
    __table_args__ = (
        CheckConstraint("list IN ('red', 'black')", name="list_known"),
        Index("ix_list_entries_subject_open", "subject_bidx", "left_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credit_records.id"), index=True)
    list: Mapped[str] = mapped_column(String(8))
    catalogue_code: Mapped[str] = mapped_column(ForeignKey("catalogue_items.code"))
    legal_basis: Mapped[str] = mapped_column(Text)
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    left_at: Mapped[datetime | None]
    left_reason: Mapped[str | None] = mapped_column(String(16))
