"""Webhook endpoints, the per-partner event feed, deliveries (event × endpoint) and attempts.

Flow: a business change writes an ``outbox_events`` row in its own transaction. The
dispatcher turns each outbox event into one :class:`PartnerEvent` per partner that hears of
it (with that partner's next ``seq`` and pseudonym) and one :class:`WebhookDelivery` per
matching endpoint. The delivery worker leases due deliveries, sends them, and keeps every
:class:`WebhookAttempt`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow


class WebhookEndpoint(Base):
    """A partner's receiver. Secrets are stored encrypted (FieldCipher); during a rotation the
    previous secret keeps signing until ``previous_secret_until``."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_partner", "partner_id", "deleted_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JSON)  # empty: every type
    description: Mapped[str] = mapped_column(String(500), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # partner | gone (the receiver answered 410) | failing (every attempt failed for 5 days)
    disabled_reason: Mapped[str | None] = mapped_column(String(16))
    disabled_at: Mapped[datetime | None]
    rate_limit_per_s: Mapped[int] = mapped_column(Integer, default=20)
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_until: Mapped[datetime | None]
    # Start of the current unbroken run of failed attempts; None after any success.
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]


class PartnerEvent(Base):
    """One event in one partner's feed (``GET /v1/partner/events``). ``seq`` increases per
    partner without gaps; ``payload`` is exactly the ``data`` the partner receives (its
    pseudonym for the citizen, never personal data). The webhook-id is ``msg_<id hex>``."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("partner_id", "seq", name="uq_webhook_events_partner_seq"),
        UniqueConstraint("partner_id", "outbox_event_id", name="uq_webhook_events_partner_outbox"),
        Index("ix_webhook_events_about", "partner_id", "about"),
        Index("ix_webhook_events_created", "created_at"),
        # The dispatcher's "already in a feed?" and retention's "still referred to?".
        Index("ix_webhook_events_outbox", "outbox_event_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # What the event is about, for "a partner warned of an entry always learns when it ends"
    # (e.g. ``list:<record id>``); None for most events.
    about: Mapped[str | None] = mapped_column(String(100))
    outbox_event_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("outbox_events.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event to one endpoint. ``status``: pending (due at ``next_attempt_at``), paused
    (the endpoint is disabled: kept, sent in order once it is enabled again), delivered,
    dead (the schedule is exhausted: recoverable by replay or recover). A worker leases a
    due delivery by setting ``leased_until``; a lease that runs out (a killed worker) makes it
    due again, with the same webhook-id."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "status", "created_at"),
        # The worker's lease: each endpoint's due deliveries in order, read from the index.
        Index("ix_webhook_deliveries_lease", "endpoint_id", "status", "next_attempt_at", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_events.id"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id"))
    # The event's ``seq`` (copied: it never changes), so deliveries are leased in event order
    # straight from an index.
    seq: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    leased_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One HTTP attempt: what the receiver answered (status, first 2 KiB of the body) or why
    nothing was answered (``error``: timeout, connect, refused_address, redirect, …)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(64))
    response_body: Mapped[str] = mapped_column(Text, default="")


class WebhookWatch(Base):
    """A partner was told an entry opened (``about`` = ``list:<record id>``): it will be told
    when the entry closes, even after its consent ended and after the opening event itself
    was purged from the feed. Removed once the closing event is dispatched."""

    __tablename__ = "webhook_watches"
    __table_args__ = (Index("ix_webhook_watches_about", "about"),)

    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"),
                                                  primary_key=True)
    about: Mapped[str] = mapped_column(String(100), primary_key=True)
    subject_bidx: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
