"""The signing-key table; its own domain so credentials and audit both use it one way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, utcnow


class SigningKeyRow(Base):
    """An Ed25519 key; the private half is AES-GCM encrypted with the data key."""

    __tablename__ = "signing_keys"
    __table_args__ = (Index("ix_signing_keys_purpose", "purpose", "retired_at"),)

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]
