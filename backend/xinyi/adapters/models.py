"""The adapters' own records: what a kind knows beyond the generic benefit session.

One row per loan, ride, encounter, stay or entry. The kind's own fields (books, bills, the
bike's id…) live in ``details`` (JSON): they are read and written only by that kind's
module, always under a row lock, and never hold personal data. ``session_id`` is null when
nothing was waived (standard terms, a used-up cap, or a kind without sessions).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow
from xinyi.partner_kinds import kind_is_known

STATUSES = ("open", "closed")


class AdapterRecord(Base):
    """A loan, ride, encounter, stay or entry of one partner (its kind's own vocabulary)."""

    __tablename__ = "adapter_records"
    __table_args__ = (
        CheckConstraint(kind_is_known("kind"), name="kind_known"),
        CheckConstraint("status IN ('open', 'closed')", name="status_known"),
        CheckConstraint("amount_fen >= 0 AND waived_fen >= 0 AND charge_normally_fen >= 0",
                        name="amounts_not_negative"),
        CheckConstraint("waived_fen + charge_normally_fen = amount_fen", name="amounts_add_up"),
        CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)",
                        name="closed_when_closed"),
        Index("ix_adapter_records_partner_created", "partner_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    # The verification it started from (null for none: never, today; kept nullable so a kind
    # could open without one). One verification starts at most one record.
    verification_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("verifications.id"), unique=True)
    decision: Mapped[str] = mapped_column(String(16))
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("benefit_sessions.id"),
                                                         unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    reference: Mapped[str] = mapped_column(String(100))
    amount_fen: Mapped[int] = mapped_column(Integer)
    waived_fen: Mapped[int] = mapped_column(Integer)
    charge_normally_fen: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
