from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow


class OutboxEvent(Base):
    """A business event, written in the transaction of the change it describes.

    Who hears of it: ``partner_id`` names the one partner it concerns (a consent of theirs);
    otherwise ``subject_bidx`` names the citizen, and the partners that hear of it are those
    with a live consent for that citizen (each under its own pseudonym). Neither: internal
    only. The payload never holds personal data; the delivery side adds the partner's
    pseudonym of the subject. ``published_at`` is set once the event has been handed on.
    """

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_pending", "published_at", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    partner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_clients.id"))
    subject_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
