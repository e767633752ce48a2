"""Uploaded evidence and the cases that reference it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column

from xinyi.db import Base, new_id, utcnow

MEDIA_TYPES = ("image/png", "image/jpeg", "application/pdf")


class Attachment(Base):
    """A PNG, JPEG or PDF of at most 2 MiB, its type judged by its content. The bytes live in
    this row (in the database's backups with everything else), never in a log line."""

    __tablename__ = "attachments"
    __table_args__ = (
        CheckConstraint("media_type IN ('image/png', 'image/jpeg', 'application/pdf')",
                        name="media_type_known"),
        CheckConstraint("size > 0 AND size <= 2097152", name="size_bounded"),
        Index("ix_attachments_owner", "owner_bidx", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    owner_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    media_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AttachmentLink(Base):
    """An attachment referenced by a case: who besides its owner may read it follows from
    here (any reviewer; the provider of the record the case is about, if any)."""

    __tablename__ = "attachment_links"
    __table_args__ = (
        CheckConstraint("case_kind IN ('repair', 'dispute', 'report')",
                        name="case_kind_known"),
        Index("ix_attachment_links_attachment", "attachment_id"),
    )

    case_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    attachment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("attachments.id"),
                                                     primary_key=True)
    # None: no provider reads it (a report's evidence: reviewers only).
    provider_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_clients.id"))
