from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, utcnow


class Pseudonym(Base):
    """The name a partner knows a citizen by: stable for that partner, meaningless to others."""

    __tablename__ = "pseudonyms"
    __table_args__ = (UniqueConstraint("partner_id", "subject_bidx",
                                       name="uq_pseudonyms_partner_subject"),)

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"), primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
