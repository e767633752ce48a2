"""A citizen's report of dishonest behaviour (有奖举报) and its triage.

The reporter is known here only by their blind index (``reporter_bidx``), which only the
reviewers' views resolve (masked). The reported party is stored as reported: a person by
encrypted ID number and its blind index, an organisation by name and optional unified
social credit code.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow

PARTY_KINDS = ("person", "organisation")
STATUSES = ("pending", "decided")
OUTCOMES = ("forwarded", "rejected", "rewarded")


class DishonestyReport(Base):
    __tablename__ = "dishonesty_reports"
    __table_args__ = (
        CheckConstraint("party_kind IN ('person', 'organisation')", name="party_kind_known"),
        CheckConstraint("(party_kind = 'person' AND party_bidx IS NOT NULL "
                        "AND party_id_number_enc IS NOT NULL AND party_name IS NULL) OR "
                        "(party_kind = 'organisation' AND party_name IS NOT NULL "
                        "AND party_bidx IS NULL AND party_id_number_enc IS NULL)",
                        name="party_complete"),
        CheckConstraint("status IN ('pending', 'decided')", name="status_known"),
        CheckConstraint("outcome IS NULL OR outcome IN ('forwarded', 'rejected', 'rewarded')",
                        name="outcome_known"),
        CheckConstraint("(status = 'pending' AND outcome IS NULL AND decided_at IS NULL) OR "
                        "(status = 'decided' AND outcome IS NOT NULL AND decided_at IS NOT NULL "
                        "AND decision_reason IS NOT NULL AND decided_by IS NOT NULL)",
                        name="decision_complete"),
        CheckConstraint("(outcome = 'rewarded') = (reward_fen IS NOT NULL) "
                        "AND (reward_fen IS NULL OR reward_fen > 0)", name="reward_iff_rewarded"),
        CheckConstraint("(outcome = 'forwarded') = (forwarded_to IS NOT NULL)",
                        name="forwarded_iff_provider"),
        Index("ix_dishonesty_reports_reporter", "reporter_bidx", "created_at"),
        Index("ix_dishonesty_reports_status", "status", "created_at"),
        Index("ix_dishonesty_reports_forwarded", "forwarded_to", "decided_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    reporter_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    party_kind: Mapped[str] = mapped_column(String(16))
    party_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    party_id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    party_name: Mapped[str | None] = mapped_column(String(200))
    party_uscc: Mapped[str | None] = mapped_column(String(18))
    facts: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    outcome: Mapped[str | None] = mapped_column(String(16))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    reward_fen: Mapped[int | None] = mapped_column(Integer)
    forwarded_to: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_clients.id"))
    decided_by: Mapped[uuid.UUID | None] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
