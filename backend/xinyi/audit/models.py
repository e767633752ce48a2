"""One hash chain per citizen (subject), so appends for different citizens never contend and
a citizen's own log can be verified alone; signed checkpoints bind all chain heads together."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
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


class AccessLogEntry(Base):
    __tablename__ = "access_log"
    __table_args__ = (
        UniqueConstraint("subject_bidx", "seq", name="uq_access_log_subject_seq"),
        Index("ix_access_log_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    seq: Mapped[int] = mapped_column(Integer)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(64))
    consent_id: Mapped[uuid.UUID | None]
    purpose: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A signed digest over every chain head that moved since the previous checkpoint."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    entries: Mapped[int] = mapped_column(Integer)
    prev_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    kid: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class StaffAction(Base):
    """Append-only log of staff changes to shared settings (who, what, before and after).
    Nothing updates or deletes a row: :func:`xinyi.audit.service.log_staff_action` only
    inserts. No personal data: settings only."""

    __tablename__ = "staff_actions"
    __table_args__ = (Index("ix_staff_actions_target_created", "target", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    actor_id: Mapped[uuid.UUID]
    actor_role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
