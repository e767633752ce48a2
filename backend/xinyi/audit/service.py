"""The access log (查询使用登记, R7): every read of a citizen's data by anyone but the citizen.

Structure: one hash chain per subject (``seq`` 1, 2, …; ``hash = SHA-256(prev_hash ‖ entry)``).
Per-subject chains mean appends for different citizens never wait on each other (a global
chain would serialise every verification in the city), and a citizen's log is verifiable on
its own. Signed checkpoints (see :mod:`xinyi.audit.checkpoints`) bind all chains together so
that rewriting a chain from some entry onwards, or dropping its tail, is also detected.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xinyi.audit.models import AccessLogEntry
from xinyi.auth.models import ApiClient

GENESIS = b"\x00" * 32
ACTOR_TYPES = ("partner", "staff", "org", "provider")


@dataclass(frozen=True)
class Access:
    """What happened: who read which scope of whose data, under which consent, and why."""

    subject_bidx: bytes
    actor_type: str
    actor_id: str
    actor_name: str
    action: str
    scope: str
    purpose: str
    consent_id: uuid.UUID | None = None


def entry_hash(prev_hash: bytes, entry: AccessLogEntry) -> bytes:
    canonical = json.dumps({
        "id": str(entry.id), "subject": entry.subject_bidx.hex(), "seq": entry.seq,
        "actor_type": entry.actor_type, "actor_id": entry.actor_id,
        "actor_name": entry.actor_name, "action": entry.action, "scope": entry.scope,
        "consent_id": str(entry.consent_id) if entry.consent_id else None,
        "purpose": entry.purpose,
        "created_at": entry.created_at.isoformat(timespec="microseconds"),
    }, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(prev_hash + canonical.encode()).digest()


def append(session: Session, access: Access, *, now: datetime) -> AccessLogEntry:
    """Append to the subject's chain inside the caller's transaction (durable with it).

    Appends for one subject are serialised: on PostgreSQL by a transaction-scoped advisory
    lock on the subject, on SQLite by its single writer (BEGIN IMMEDIATE). The unique
    (subject, seq) constraint stays as the last line of defence against a forked chain.
    """
    if access.actor_type not in ACTOR_TYPES:
        raise ValueError("unknown actor type")
    if session.get_bind().dialect.name == "postgresql":
        lock_key = int.from_bytes(access.subject_bidx[:8], "big", signed=True)
        session.execute(select(func.pg_advisory_xact_lock(lock_key)))
    head = session.execute(
        select(AccessLogEntry.seq, AccessLogEntry.hash)
        .where(AccessLogEntry.subject_bidx == access.subject_bidx)
        .order_by(AccessLogEntry.seq.desc()).limit(1)).first()
    seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
    entry = AccessLogEntry(
        id=uuid.uuid4(), subject_bidx=access.subject_bidx, seq=seq,
        actor_type=access.actor_type, actor_id=access.actor_id,
        actor_name=access.actor_name, action=access.action, scope=access.scope,
        consent_id=access.consent_id, purpose=access.purpose, created_at=now, prev_hash=prev)
    entry.hash = entry_hash(prev, entry)
    session.add(entry)
    return entry


def partner_actor(session: Session, partner_id: uuid.UUID) -> tuple[str, str]:
    name = session.scalar(select(ApiClient.name).where(ApiClient.id == partner_id))
    return str(partner_id), name or "unknown"


def entries_for(session: Session, bidx: bytes, *, page: int,
                page_size: int) -> tuple[list[AccessLogEntry], int]:
    """The citizen's own log, newest first."""
    where = AccessLogEntry.subject_bidx == bidx
    total = session.scalar(select(func.count()).select_from(AccessLogEntry).where(where)) or 0
    rows = session.scalars(select(AccessLogEntry).where(where)
                           .order_by(AccessLogEntry.seq.desc())
                           .limit(page_size).offset((page - 1) * page_size))
    return list(rows), total


@dataclass(frozen=True)
class ChainProblem:
    entry_id: uuid.UUID
    subject_hex: str
    seq: int
    reason: str


def verify_chains(session: Session, *, batch: int = 10_000) -> tuple[int, ChainProblem | None]:
    """Recompute every chain in (subject, seq) order; the first broken entry is named."""
    checked = 0
    last_subject: bytes | None = None
    prev = GENESIS
    expected_seq = 1
    stmt = select(AccessLogEntry).order_by(AccessLogEntry.subject_bidx, AccessLogEntry.seq)
    for entry in session.scalars(stmt.execution_options(yield_per=batch)):
        if entry.subject_bidx != last_subject:
            last_subject, prev, expected_seq = entry.subject_bidx, GENESIS, 1
        problem = None
        if entry.seq != expected_seq:
            problem = f"sequence gap: expected {expected_seq}, found {entry.seq}"
        elif entry.prev_hash != prev:
            problem = "prev_hash does not match the previous entry"
        elif entry.hash != entry_hash(prev, entry):
            problem = "content does not match its hash"
        if problem:
            return checked, ChainProblem(entry.id, entry.subject_bidx.hex()[:16], entry.seq,
                                         problem)
        prev, expected_seq = entry.hash, expected_seq + 1
        checked += 1
    return checked, None


def describe(entry: AccessLogEntry) -> dict[str, Any]:
    return {"id": entry.id, "seq": entry.seq, "at": entry.created_at,
            "who": {"type": entry.actor_type, "name": entry.actor_name},
            "action": entry.action, "scope": entry.scope, "consent_id": entry.consent_id,
            "purpose": entry.purpose}
