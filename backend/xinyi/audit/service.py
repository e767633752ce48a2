"""The access log (查询使用登记, R7): every read of a citizen's data by anyone but the citizen.

The request path writes an entry with one plain INSERT in the caller's transaction, so it is
durable with the read and contends with nothing. The sealer (:mod:`xinyi.audit.sealer`)
then gives every entry, in commit order, its place in rows of its own: the per-citizen
chain (``seq`` 1, 2, …; ``hash = SHA-256(prev_hash ‖ canonical entry)``, the citizen's
completeness proof) and a leaf in one log-wide Merkle tree (RFC 9162) whose signed heads
partners keep. Until then the entry is ``pending``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select
from sqlalchemy.orm import Session

from xinyi.audit.models import AccessLogEntry, AccessLogSeal, StaffAction
from xinyi.auth.service import client_name
from xinyi.dbutil import china_date
from xinyi.deps import Deps

GENESIS = b"\x00" * 32
ACTOR_TYPES = ("partner", "staff", "org", "provider", "citizen")


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


def canonical(entry: AccessLogEntry, seq: int) -> bytes:
    """The entry as its hashes cover it (docs/access-log.md): compact JSON, keys sorted."""
    return json.dumps({
        "id": str(entry.id), "subject": entry.subject_bidx.hex(), "seq": seq,
        "actor_type": entry.actor_type, "actor_id": entry.actor_id,
        "actor_name": entry.actor_name, "action": entry.action, "scope": entry.scope,
        "consent_id": str(entry.consent_id) if entry.consent_id else None,
        "purpose": entry.purpose,
        "created_at": entry.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
    }, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def entry_bytes(prev_hash: bytes, entry: AccessLogEntry, seq: int) -> bytes:
    """What the chain hash and the Merkle leaf are computed over: ``prev_hash ‖ canonical``."""
    return prev_hash + canonical(entry, seq)


def entry_hash(prev_hash: bytes, entry: AccessLogEntry, seq: int) -> bytes:
    return hashlib.sha256(entry_bytes(prev_hash, entry, seq)).digest()


@dataclass(frozen=True)
class Head:
    """The last sealed entry of a subject's chain: the next takes ``seq + 1`` and links to
    ``hash``. An empty chain's head is ``(0, GENESIS)``."""

    seq: int
    hash: bytes


EMPTY = Head(0, GENESIS)
_INSERT = insert(AccessLogEntry)


def _row(access: Access, now: datetime) -> dict[str, Any]:
    if access.actor_type not in ACTOR_TYPES:
        raise ValueError("unknown actor type")
    return {"id": uuid.uuid4(), "subject_bidx": access.subject_bidx,
            "actor_type": access.actor_type, "actor_id": access.actor_id,
            "actor_name": access.actor_name, "action": access.action, "scope": access.scope,
            "consent_id": access.consent_id, "purpose": access.purpose, "created_at": now}


def append(session: Session, access: Access, *, now: datetime) -> AccessLogEntry:
    """Record ``access`` inside the caller's transaction (durable with it): one INSERT, no
    read, nothing to wait for. The sealer gives the entry its place once it commits."""
    row = _row(access, now)
    session.connection().execute(_INSERT, row)
    return AccessLogEntry(**row)


_AFTER: dict[int, tuple[Any, Any]] = {}
_LOG_PARAM = "log_"


def _after_statement(write: Any) -> Any:
    """``WITH written AS (<write>) INSERT INTO access_log … SELECT <the entry> FROM written``,
    built once per write statement; the entry's values are parameters ``log_<column>``."""
    cached = _AFTER.get(id(write))
    if cached is not None and cached[0] is write:
        return cached[1]
    written = write.cte("written")
    columns = AccessLogEntry.__table__.columns
    entry = select(*[bindparam(_LOG_PARAM + c.key, type_=c.type) for c in columns]) \
        .select_from(written)
    stmt = insert(AccessLogEntry).from_select([c.key for c in columns], entry) \
        .returning(AccessLogEntry.id)
    _AFTER[id(write)] = (write, stmt)
    return stmt


def append_after(session: Session, write: Any, params: dict[str, Any], access: Access, *,
                 now: datetime) -> bool:
    """Run ``write`` (an ``INSERT … RETURNING`` of at most one row, e.g. ``ON CONFLICT DO
    NOTHING``) with ``params`` and, only if it wrote its row, :func:`append` ``access``.
    False, and nothing written, if it did not. ``params`` names every column of the row:
    inside a CTE, columns get no Python-side defaults.

    On PostgreSQL both are one statement (``write`` as a data-modifying CTE the entry is
    selected from), a round trip fewer on a hot path; elsewhere they are two. Either way the
    entry is in the caller's transaction, like :func:`append`'s."""
    row = _row(access, now)
    if session.get_bind().dialect.name != "postgresql":
        if session.connection().execute(write, params).first() is None:
            return False
        session.connection().execute(_INSERT, row)
        return True
    stmt = _after_statement(write)
    return session.connection().execute(
        stmt, {**params, **{_LOG_PARAM + k: v for k, v in row.items()}}).first() is not None


def append_many(session: Session, entries: Iterable[tuple[Access, datetime]]) -> int:
    """:func:`append` for many entries at once (an offline upload): one multi-row INSERT in
    the caller's transaction. Returns how many."""
    rows = [_row(access, at) for access, at in entries]
    if rows:
        session.connection().execute(insert(AccessLogEntry).values(rows))
    return len(rows)


_COLUMNS = tuple(c.key for c in AccessLogEntry.__table__.columns)


def read_head(session: Session, subject_bidx: bytes) -> Head:
    row = session.execute(select(AccessLogSeal.seq, AccessLogSeal.hash)
                          .where(AccessLogSeal.subject_bidx == subject_bidx)
                          .order_by(AccessLogSeal.seq.desc()).limit(1)).first()
    return EMPTY if row is None else Head(row.seq, bytes(row.hash))


STAFF_NAMES = {"operator": "信用办经办人员", "reviewer": "信用办复核人员",
               "auditor": "信用办审计人员"}


def staff_read(session: Session, subjects: Iterable[bytes], *, staff_id: uuid.UUID,
               role: str, action: str, scope: str, purpose: str, now: datetime) -> None:
    """One entry in each citizen's chain for a staff read that showed their data (a list
    page shows several citizens: each gets one), in the caller's transaction."""
    for bidx in dict.fromkeys(subjects):  # each once, in page order
        append(session, Access(bidx, "staff", str(staff_id), STAFF_NAMES.get(role, role),
                               action, scope, purpose), now=now)


def partner_actor(session: Session, partner_id: uuid.UUID) -> tuple[str, str]:
    return str(partner_id), client_name(session, partner_id) or "unknown"


@dataclass(frozen=True)
class ChainHead:
    """``ChainHeadOut``: the last entry of a citizen's chain, in the form the hash formula
    uses (hex), so that the citizen can check a copy of their log against it."""

    subject: str
    seq: int
    hash: str


def entries_for(session: Session, bidx: bytes, *, page: int, page_size: int
                ) -> tuple[list[tuple[AccessLogEntry, AccessLogSeal | None]], int, ChainHead]:
    """The citizen's own log, newest first (pending entries, not yet sealed, before the
    sealed ones), and the head of its sealed chain.

    The head is read first and the page stops at it: an entry sealed meanwhile by the sealer
    shows on the next read, so a page and its head always agree.
    """
    head = read_head(session, bidx)
    where = (AccessLogEntry.subject_bidx == bidx,
             or_(AccessLogSeal.seq.is_(None), AccessLogSeal.seq <= head.seq))
    joined = select(AccessLogEntry, AccessLogSeal).outerjoin(
        AccessLogSeal, AccessLogSeal.entry_id == AccessLogEntry.id).where(*where)
    total = session.scalar(select(func.count()).select_from(joined.subquery())) or 0
    rows = session.execute(joined.order_by(AccessLogSeal.seq.is_(None).desc(),
                                           AccessLogSeal.seq.desc(),
                                           AccessLogEntry.created_at.desc())
                           .limit(page_size).offset((page - 1) * page_size))
    return ([(e, s) for e, s in rows], total,
            ChainHead(bidx.hex(), head.seq, head.hash.hex()))


@dataclass(frozen=True)
class Actor:
    """``ActorOut``: who read, as the citizen is shown it."""

    type: str
    name: str


@dataclass(frozen=True)
class Query:
    """``QueryOut``: one entry of the citizen's access log."""

    id: uuid.UUID
    status: str  # "sealed" or "pending" (not yet given its place by the sealer)
    seq: int | None
    at: datetime
    who: Actor
    action: str
    scope: str
    consent_id: uuid.UUID | None
    purpose: str
    # What the citizen needs to recompute the entry's hash (docs/access-log.md): the reader's
    # id as the entry recorded it, and both hashes in hex.
    actor_id: str
    prev_hash: str | None
    hash: str | None
    leaf_index: int | None


def describe(entry: AccessLogEntry, seal: AccessLogSeal | None) -> Query:
    return Query(id=entry.id, status="sealed" if seal else "pending",
                 seq=seal.seq if seal else None, at=entry.created_at,
                 who=Actor(type=entry.actor_type, name=entry.actor_name),
                 action=entry.action, scope=entry.scope, consent_id=entry.consent_id,
                 purpose=entry.purpose, actor_id=entry.actor_id,
                 prev_hash=seal.prev_hash.hex() if seal else None,
                 hash=seal.hash.hex() if seal else None,
                 leaf_index=seal.leaf_index if seal else None)


def reads_per_day(session: Session, since: datetime) -> list[tuple[date, int]]:
    """Access-log entries per China day since ``since``, oldest first (the query statistics)."""
    day = china_date(session, AccessLogEntry.created_at)
    return [(d, int(n)) for d, n in session.execute(
        select(day, func.count()).where(AccessLogEntry.created_at >= since)
        .group_by(day).order_by(day))]


def log_staff_action(session: Session, *, actor_id: uuid.UUID, actor_role: str, action: str,
                     target: str, before: dict[str, Any] | None, after: dict[str, Any] | None,
                     now: datetime) -> None:
    """Append one staff change (settings only, never personal data) to ``staff_actions``,
    in the caller's unit: the change and its log entry commit together."""
    session.add(StaffAction(actor_id=actor_id, actor_role=actor_role, action=action,
                            target=target, before=before, after=after, created_at=now))


def staff_actions(session: Session, target: str) -> list[dict[str, Any]]:
    """The log of changes to ``target``, oldest first."""
    return [{"actor_id": a.actor_id, "actor_role": a.actor_role, "action": a.action,
             "before": a.before, "after": a.after, "created_at": a.created_at}
            for a in session.scalars(select(StaffAction).where(StaffAction.target == target)
                                     .order_by(StaffAction.created_at, StaffAction.id))]


CITIZEN_NAME = "本人"


def citizen_read(session: Session, bidx: bytes, *, account_id: uuid.UUID, action: str,
                 scope: str, purpose: str, now: datetime) -> AccessLogEntry:
    """An entry for something the citizen themselves took away (their export), so that it
    shows in their own log with the rest."""
    return append(session, Access(bidx, "citizen", str(account_id), CITIZEN_NAME, action,
                                  scope, purpose), now=now)


def _entry_row(entry: AccessLogEntry, seal: AccessLogSeal | None) -> dict[str, Any]:
    return {"id": str(entry.id), "status": "sealed" if seal else "pending",
            "seq": seal.seq if seal else None,
            # Always six digits of microseconds: the form the hash formula uses.
            "created_at": entry.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor_type": entry.actor_type, "actor_id": entry.actor_id,
            "actor_name": entry.actor_name, "action": entry.action, "scope": entry.scope,
            "consent_id": str(entry.consent_id) if entry.consent_id else None,
            "purpose": entry.purpose, "prev_hash": seal.prev_hash.hex() if seal else None,
            "hash": seal.hash.hex() if seal else None,
            "leaf_index": seal.leaf_index if seal else None}


def export_access_log(session: Session, deps: Deps, account_id: uuid.UUID,
                      bidx: bytes) -> list[dict[str, Any]]:
    """The citizen's whole chain, oldest first, each entry with every field its hash covers
    (docs/access-log.md), then the entries still pending, for their export."""
    rows = session.execute(
        select(AccessLogEntry, AccessLogSeal)
        .outerjoin(AccessLogSeal, AccessLogSeal.entry_id == AccessLogEntry.id)
        .where(AccessLogEntry.subject_bidx == bidx)
        .order_by(AccessLogSeal.seq.is_(None), AccessLogSeal.seq, AccessLogEntry.created_at,
                  AccessLogEntry.id))
    return [_entry_row(e, s) for e, s in rows]
