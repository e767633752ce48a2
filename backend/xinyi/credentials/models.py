"""Issued credentials and partner verifications (signing keys: :mod:`xinyi.signing`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow


class Credential(Base):
    """An issued QR credential. ``subject`` is random per credential (no personal data); the
    row maps it back to the account for online verification."""

    __tablename__ = "credentials"
    __table_args__ = (Index("ix_credentials_expires_at", "expires_at"),)

    jti: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    kid: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    not_before: Mapped[datetime]
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Verification(Base):
    """A partner's verification; the stored answer is replayed for the same Idempotency-Key."""

    __tablename__ = "verifications"
    __table_args__ = (UniqueConstraint("partner_id", "idempotency_key",
                                       name="uq_verifications_partner_idempotency"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    credential_jti: Mapped[str] = mapped_column(String(40), unique=True)
    subject_bidx: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    benefit_code: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Checked on the partner's device without us, uploaded later; ``created_at`` is then the
    # time the partner verified it (POST /v1/partner/verifications:offline).
    offline: Mapped[bool] = mapped_column(default=False, server_default=false())


class CredentialHolder(Base):
    """The jti → holder link of a credential whose row was purged (an hour after expiry), kept
    for the offline verifier's key-age limit plus the upload window, so that a late offline
    upload is still attributed. No token, no account: the subject's keyed index and the
    credential's window only."""

    __tablename__ = "credential_holders"
    __table_args__ = (Index("ix_credential_holders_expires_at", "expires_at"),)

    jti: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_bidx: Mapped[bytes] = mapped_column(LargeBinary(32))
    not_before: Mapped[datetime]
    expires_at: Mapped[datetime]
