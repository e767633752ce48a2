"""Background exports: one row per request, the built file encrypted until it is taken."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from xinyi.db import Base, new_id, utcnow

FORMATS = ("json", "zip")
STATUSES = ("queued", "building", "ready", "failed", "expired", "downloaded")
ACTIVE = ("queued", "building")


class Export(Base):
    """A citizen's export built by the worker. ``content`` (AES-GCM, bound to the export's
    id) is set while ``ready`` and cleared once downloaded or expired."""

    __tablename__ = "exports"
    __table_args__ = (
        CheckConstraint("format IN ('json', 'zip')", name="format_known"),
        CheckConstraint("status IN ('queued', 'building', 'ready', 'failed', 'expired', "
                        "'downloaded')", name="status_known"),
        CheckConstraint("content IS NULL OR status = 'ready'", name="content_only_when_ready"),
        # One export queued or building per citizen: the database settles a race.
        Index("uq_exports_active_account", "account_id", unique=True,
              postgresql_where=text("status IN ('queued', 'building')"),
              sqlite_where=text("status IN ('queued', 'building')")),
        Index("ix_exports_status_created", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    format: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    size: Mapped[int | None] = mapped_column(Integer)
    failure: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
