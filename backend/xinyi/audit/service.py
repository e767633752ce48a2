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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xinyi.audit.models import AccessLogEntry, StaffAction
from xinyi.auth.service import client_name
from xinyi.dbutil import china_date, insert_for
from xinyi.deps import Deps
from xinyi.errors import DomainError

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


@dataclass(frozen=True)
class Head:
    """The last entry of a subject's chain: the next entry takes ``seq + 1`` and links to
    ``hash``. An empty chain's head is ``(0, GENESIS)``."""

    seq: int
    hash: bytes


EMPTY = Head(0, GENESIS)
# Each lost race means another entry landed at that position, so an append loses at most
# once per append that runs concurrently on the same citizen: this bounds only a bug (a head
# that never moves) or a pathological burst, never ordinary contention (a test runs 30
# appends from 6 connections at once, so none can lose more than 25 times).
APPEND_TRIES = 100


class ChainBusy(DomainError):
    """The chain moved under every attempt (only under extreme contention on one citizen);
    nothing was recorded, so the caller's whole request may simply be retried."""

    status = 503
    code = "access_log_busy"
    title = "The access log is busy, try again"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


def _last_entry(subject: Any) -> Any:
    return (select(AccessLogEntry.seq, AccessLogEntry.hash)
            .where(AccessLogEntry.subject_bidx == subject)
            .order_by(AccessLogEntry.seq.desc()).limit(1))


def head_columns(subject: Any) -> tuple[Any, Any]:
    """Correlated scalar subqueries for a chain head, to read it in the caller's own query."""
    last = _last_entry(subject)
    return (last.with_only_columns(AccessLogEntry.seq).scalar_subquery(),
            last.with_only_columns(AccessLogEntry.hash).scalar_subquery())


def head_of(seq: int | None, digest: bytes | None) -> Head:
    return EMPTY if seq is None or digest is None else Head(seq, bytes(digest))


def read_head(session: Session, subject_bidx: bytes) -> Head:
    row = session.connection().execute(_last_entry(subject_bidx)).first()
    return EMPTY if row is None else Head(row.seq, bytes(row.hash))


def append(session: Session, access: Access, *, now: datetime,
           head: Head | None = None) -> AccessLogEntry:
    """Append to the subject's chain inside the caller's transaction (durable with it).

    Optimistic: the entry takes the position after ``head`` (read now if not given, e.g. by
    the caller's own query with :func:`head_columns`) with ``INSERT … ON CONFLICT (subject,
    seq) DO NOTHING``. If another transaction took that position first, nothing is inserted
    (PostgreSQL waits for that transaction to end before deciding) and the append starts
    again from the new head. No lock is held and no error aborts the caller's transaction;
    the unique (subject, seq) constraint keeps every chain unforked.
    """
    if access.actor_type not in ACTOR_TYPES:
        raise ValueError("unknown actor type")
    conn = session.connection()
    for _ in range(APPEND_TRIES):
        if head is None:
            head = read_head(session, access.subject_bidx)
        entry = AccessLogEntry(
            id=uuid.uuid4(), subject_bidx=access.subject_bidx, seq=head.seq + 1,
            actor_type=access.actor_type, actor_id=access.actor_id,
            actor_name=access.actor_name, action=access.action, scope=access.scope,
            consent_id=access.consent_id, purpose=access.purpose, created_at=now,
            prev_hash=head.hash)
        entry.hash = entry_hash(head.hash, entry)
        inserted = conn.execute(_append_statement(session),
                                {c: getattr(entry, c) for c in _COLUMNS}).first()
        if inserted is not None:
            return entry
        head = None  # the chain moved: start again from its new head
    raise ChainBusy()


_COLUMNS = tuple(c.key for c in AccessLogEntry.__table__.columns)
_APPEND: dict[str, Any] = {}


def _append_statement(session: Session) -> Any:
    """``INSERT … ON CONFLICT (subject_bidx, seq) DO NOTHING RETURNING id``, built once per
    dialect (the values go in as parameters)."""
    dialect = session.get_bind().dialect.name
    stmt = _APPEND.get(dialect)
    if stmt is None:
        base: Any = insert_for(session, AccessLogEntry.__table__)  # type: ignore[arg-type]
        stmt = _APPEND[dialect] = (
            base.on_conflict_do_nothing(index_elements=["subject_bidx", "seq"])
            .returning(AccessLogEntry.id))
    return stmt


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


def entries_for(session: Session, bidx: bytes, *, page: int,
                page_size: int) -> tuple[list[AccessLogEntry], int, ChainHead]:
    """The citizen's own log, newest first, and the head of its chain.

    The head is read first and the page stops at it: an entry appended meanwhile by another
    transaction shows on the next read, so a page and its head always agree.
    """
    head = read_head(session, bidx)
    where = (AccessLogEntry.subject_bidx == bidx, AccessLogEntry.seq <= head.seq)
    total = session.scalar(select(func.count()).select_from(AccessLogEntry).where(*where)) or 0
    rows = session.scalars(select(AccessLogEntry).where(*where)
                           .order_by(AccessLogEntry.seq.desc())
                           .limit(page_size).offset((page - 1) * page_size))
    return list(rows), total, ChainHead(bidx.hex(), head.seq, head.hash.hex())


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
    previous: AccessLogEntry | None = None
    expected_seq = 1
    stmt = select(AccessLogEntry).order_by(AccessLogEntry.subject_bidx, AccessLogEntry.seq)
    for entry in session.scalars(stmt.execution_options(yield_per=batch)):
        if entry.subject_bidx != last_subject:
            last_subject, prev, previous, expected_seq = entry.subject_bidx, GENESIS, None, 1
        culprit, problem = entry, None
        if entry.seq != expected_seq:
            problem = f"sequence gap: expected {expected_seq}, found {entry.seq}"
        elif entry.prev_hash != prev:
            if previous is not None and entry.hash == entry_hash(entry.prev_hash, entry):
                # This entry is intact and still links to what the previous one was: that
                # one was rewritten and given a new hash (its own check passed).
                culprit, problem = previous, "rewritten: the next entry links to another hash"
            else:
                problem = "prev_hash does not match the previous entry"
        elif entry.hash != entry_hash(prev, entry):
            problem = "content does not match its hash"
        if problem:
            if culprit is previous:
                checked -= 1
            return checked, ChainProblem(culprit.id, culprit.subject_bidx.hex()[:16],
                                         culprit.seq, problem)
        prev, previous, expected_seq = entry.hash, entry, expected_seq + 1
        checked += 1
    return checked, None


@dataclass(frozen=True)
class Actor:
    """``ActorOut``: who read, as the citizen is shown it."""

    type: str
    name: str


@dataclass(frozen=True)
class Query:
    """``QueryOut``: one entry of the citizen's access log."""

    id: uuid.UUID
    seq: int
    at: datetime
    who: Actor
    action: str
    scope: str
    consent_id: uuid.UUID | None
    purpose: str
    # What the citizen needs to recompute the entry's hash (docs/access-log.md): the reader's
    # id as the entry recorded it, and both hashes in hex.
    actor_id: str
    prev_hash: str
    hash: str


def describe(entry: AccessLogEntry) -> Query:
    return Query(id=entry.id, seq=entry.seq, at=entry.created_at,
                 who=Actor(type=entry.actor_type, name=entry.actor_name),
                 action=entry.action, scope=entry.scope, consent_id=entry.consent_id,
                 purpose=entry.purpose, actor_id=entry.actor_id,
                 prev_hash=entry.prev_hash.hex(), hash=entry.hash.hex())


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


def _entry_row(entry: AccessLogEntry) -> dict[str, Any]:
    return {"id": str(entry.id), "seq": entry.seq,
            # Always six digits of microseconds: the form the hash formula uses.
            "created_at": entry.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor_type": entry.actor_type, "actor_id": entry.actor_id,
            "actor_name": entry.actor_name, "action": entry.action, "scope": entry.scope,
            "consent_id": str(entry.consent_id) if entry.consent_id else None,
            "purpose": entry.purpose, "prev_hash": entry.prev_hash.hex(),
            "hash": entry.hash.hex()}


def export_access_log(session: Session, deps: Deps, account_id: uuid.UUID,
                      bidx: bytes) -> list[dict[str, Any]]:
    """The citizen's whole chain, oldest first, each entry with every field its hash covers
    (docs/access-log.md), for their export."""
    return [_entry_row(e) for e in session.scalars(
        select(AccessLogEntry).where(AccessLogEntry.subject_bidx == bidx)
        .order_by(AccessLogEntry.seq))]
