"""Accounts (citizens and staff), login sessions, refresh tokens and API-key principals."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from xinyi.db import Base, new_id, utcnow

ROLES = ("citizen", "operator", "reviewer", "auditor")
STAFF_ROLES = ("operator", "reviewer", "auditor")
CLIENT_TYPES = ("partner", "org", "provider")
ALL_CATALOGUE = "*"  # a grant of every catalogue item, present and future, made explicitly


class Account(Base):
    """Anyone who logs in with a phone and password: a citizen or a credit-office staff member.

    One table so a phone number identifies exactly one login, whoever it belongs to.
    """

    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}", name="role_known"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    role: Mapped[str] = mapped_column(String(16))
    # Both cleared when a citizen closes the account, so the phone can register again.
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]


class AuthSession(Base):
    """One login: the family that every rotated refresh token and access token belongs to."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    account: Mapped[Account] = relationship(lazy="joined", innerjoin=True)


class RefreshToken(Base):
    """A refresh token, stored only as a SHA-256 hash; ``used_at`` detects reuse."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("auth_sessions.id"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]

    session: Mapped[AuthSession] = relationship(lazy="joined", innerjoin=True)


class ApiClient(Base):
    """A partner merchant, volunteer organisation or data provider that calls with API keys."""

    __tablename__ = "api_clients"
    __table_args__ = (CheckConstraint(f"type IN {CLIENT_TYPES!r}", name="type_known"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]


class ApiKey(Base):
    """``xyk_<id>_<secret>``; only a SHA-256 of the secret is kept (it has 256 bits of entropy)."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_client_live", "client_id", "revoked_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    client: Mapped[ApiClient] = relationship(lazy="joined", innerjoin=True)


class CatalogueGrant(Base):
    """A catalogue item a data provider may push records of; :data:`ALL_CATALOGUE` grants
    every item. A provider without a grant may push nothing (fail closed)."""

    __tablename__ = "provider_catalogue_grants"

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"), primary_key=True)
    # No foreign key to the catalogue: it belongs to the records domain, and "*" is no item.
    # Codes are checked against the catalogue when granted; items are never deleted.
    catalogue_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
