"""Published commitment texts and the signed credit commitments (信用承诺) citizens give."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy import text as sql
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow

STATUSES = ("active", "revoked", "breached")


class CommitmentText(Base):
    """One published version of what a citizen commits to for a purpose (``repair``,
    ``rongque`` 容缺受理, ``benefit`` 信用免押…). A new version never replaces an old one: a
    commitment keeps the version it was given under. A breach becomes a record of
    ``breach_catalogue_code``."""

    __tablename__ = "commitment_texts"
    __table_args__ = (CheckConstraint("version >= 1", name="version_positive"),)

    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title_zh: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    revocable: Mapped[bool] = mapped_column(Boolean)
    breach_catalogue_code: Mapped[str] = mapped_column(ForeignKey("catalogue_items.code"))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by: Mapped[uuid.UUID | None] = mapped_column()


class CreditCommitment(Base):
    """What the citizen committed to, for which purpose and case, signed by the service with
    its ``commitment`` key (a compact JWS over the text's digest), so the record can be shown
    to be unaltered later. ``active`` until revoked (where the text allows) or breached (a
    provider's report, recorded as a record after notice and grace)."""

    __tablename__ = "credit_commitments"
    __table_args__ = (
        Index("ix_credit_commitments_subject", "subject_bidx", "signed_at"),
        ForeignKeyConstraint(["purpose", "text_version"],
                             ["commitment_texts.purpose", "commitment_texts.version"],
                             name="fk_credit_commitments_text"),
        CheckConstraint("status IN ('active', 'revoked', 'breached')", name="status_known"),
        CheckConstraint("(status = 'revoked') = (revoked_at IS NOT NULL)",
                        name="revoked_complete"),
        CheckConstraint("status <> 'breached' OR (breached_at IS NOT NULL "
                        "AND breach_provider_id IS NOT NULL AND breach_facts IS NOT NULL "
                        "AND breach_occurred_on IS NOT NULL AND record_due_at IS NOT NULL)",
                        name="breach_complete"),
        # The sweep's work: breaches whose grace is over and that have no record yet.
        Index("ix_credit_commitments_breach_due", "record_due_at",
              postgresql_where=sql("status = 'breached' AND record_id IS NULL"),
              sqlite_where=sql("status = 'breached' AND record_id IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    purpose: Mapped[str] = mapped_column(String(32))
    text_version: Mapped[int] = mapped_column(Integer, server_default=sql("1"))
    ref: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    kid: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="active",
                                        server_default=sql("'active'"))
    revoked_at: Mapped[datetime | None] = mapped_column()
    breached_at: Mapped[datetime | None] = mapped_column()
    breach_provider_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_clients.id"))
    breach_facts: Mapped[str | None] = mapped_column(Text)
    breach_occurred_on: Mapped[date | None] = mapped_column(Date)
    record_due_at: Mapped[datetime | None] = mapped_column()
    record_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("credit_records.id"))
