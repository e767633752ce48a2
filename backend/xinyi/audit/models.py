"""The access log as a transparency log: entries are inserted by the request alone; the
sealer gives each its place (per-citizen chain and one log-wide Merkle tree) in rows of its
own, and signs tree heads. Every table here is append-only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from xinyi.db import Base, new_id, utcnow


class AccessLogEntry(Base):
    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_log_created_at", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_bidx: Mapped[bytes] = mapped_column(ForeignKey("subjects.bidx"))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(64))
    consent_id: Mapped[uuid.UUID | None]
    purpose: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccessLogSeal(Base):
    """An entry's place, written once by the sealer: its per-subject ``seq`` and chain hash
    (``hash = SHA-256(prev_hash ‖ canonical entry)``) and its leaf in the log-wide tree."""

    __tablename__ = "access_log_seals"
    __table_args__ = (
        UniqueConstraint("subject_bidx", "seq", name="uq_access_log_seals_subject_seq"),
        UniqueConstraint("leaf_index", name="uq_access_log_seals_leaf_index"),
    )

    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("access_log.id"), primary_key=True)
    subject_bidx: Mapped[bytes] = mapped_column(LargeBinary(32))
    seq: Mapped[int] = mapped_column(Integer)
    leaf_index: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    sealed_at: Mapped[datetime] = mapped_column(default=utcnow)


class MerkleNode(Base):
    """A perfect subtree of the log-wide tree (level 0: a leaf hash), written once all its
    leaves are sealed (:mod:`xinyi.audit.merkle`)."""

    __tablename__ = "merkle_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class TreeHead(Base):
    """A signed tree head: ``tree_size`` leaves have root ``root_hash`` (RFC 9162 §4.10's
    fields), signed with the audit key ``kid`` over :func:`xinyi.audit.sealer.head_bytes`."""

    __tablename__ = "tree_heads"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    timestamp: Mapped[int] = mapped_column(BigInteger)  # milliseconds since the epoch
    kid: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class AuditCheckpoint(Base):
    """A signed digest over every chain head that moved since the previous checkpoint: signed
    before the Merkle tree existed, no longer written, still checked by ``audit verify``."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    entries: Mapped[int] = mapped_column(Integer)
    prev_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    kid: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class StaffAction(Base):
    """Append-only log of staff changes to shared settings (who, what, before and after).
    Nothing updates or deletes a row: :func:`xinyi.audit.service.log_staff_action` only
    inserts. No personal data: settings only."""

    __tablename__ = "staff_actions"
    __table_args__ = (Index("ix_staff_actions_target_created", "target", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    actor_id: Mapped[uuid.UUID]
    actor_role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
