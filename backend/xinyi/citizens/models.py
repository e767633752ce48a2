"""The citizen's identity: real name and ID number, encrypted, found by blind index.

A citizen is keyed by their login's id; the foreign key names the table only, so this domain
does not import auth's models (it asks :mod:`xinyi.auth.service` about the account)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, utcnow


class Citizen(Base):
    """A registered citizen (市民); the ID number is the unified personal credit code (R1)."""

    __tablename__ = "citizens"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_bidx: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    realname_verified_at: Mapped[datetime] = mapped_column(default=utcnow)
