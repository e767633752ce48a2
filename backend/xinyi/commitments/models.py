"""One signed credit commitment (信用承诺)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow


class CreditCommitment(Base):
    """What the citizen committed to, for which purpose and case, signed by the service with
    its ``commitment`` key (a compact JWS over the text's digest), so the record can be shown
    to be unaltered later."""

    __tablename__ = "credit_commitments"
    __table_args__ = (Index("ix_credit_commitments_subject", "subject_bidx", "signed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    purpose: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    kid: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
