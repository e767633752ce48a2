"""The shared core every domain stands on: the subject (a person known by ID number) and the
per-partner pseudonym that names them outside.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow


class Subject(Base):
    """A person known by ID number, registered or not: records attach here (R1, R2)."""

    __tablename__ = "subjects"
    __table_args__ = (CheckConstraint("district IS NULL OR length(district) = 6",
                                      name="district_six_digits"),)

    bidx: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The administrative division code (行政区划代码) the ID number starts with: where it was
    # issued, shared by a whole district, so not personal by itself. It lets the credit office
    # count coverage per district without decrypting anyone. NULL only for subjects stored
    # before it was recorded, until `xinyi subjects backfill-districts` fills them.
    district: Mapped[str | None] = mapped_column(String(6), index=True)


class Pseudonym(Base):
    """The name a partner knows a citizen by: stable for that partner, meaningless to others."""

    __tablename__ = "pseudonyms"
    __table_args__ = (UniqueConstraint("partner_id", "subject_bidx",
                                       name="uq_pseudonyms_partner_subject"),)

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"), primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PersonalKey(Base):
    """A registered citizen's own data key (envelope encryption), wrapped by the master data
    key. Deleting the row is crypto-shredding: every field sealed under it stops decrypting."""

    __tablename__ = "personal_keys"

    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"), primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShreddedSubject(Base):
    """A closed account whose personal key was destroyed: append-only (the app role may not
    update or delete it), and mirrored in the shred list outside the database."""

    __tablename__ = "shredded_subjects"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"), index=True)
    account_id: Mapped[uuid.UUID]
    shredded_at: Mapped[datetime] = mapped_column(default=utcnow)
