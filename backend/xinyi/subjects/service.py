"""Subjects: people known by ID number (blind index), registered or not (R1, R2), and the
per-partner pseudonyms (R7 de-identification): HMAC of partner and subject, recorded once so a
partner can later name the citizen it verified (consent requests, reports)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Exists, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from xinyi.dbutil import upsert
from xinyi.deps import Deps
from xinyi.errors import NotFound
from xinyi.pii import DecryptionError, IdNumber
from xinyi.subjects import personal
from xinyi.subjects.models import Pseudonym, Subject


def subject_bidx(deps: Deps, id_number: IdNumber) -> bytes:
    return deps.bidx(id_number.value, kind="id_number")


def district_of(id_number: str) -> str:
    """The six-digit administrative division code (行政区划代码) a valid ID number starts with
    (GB 11643): the district where it was issued, which ``IdNumber.parse`` has validated."""
    return id_number[:6]


def ensure_subject(session: Session, deps: Deps, id_number: IdNumber, now: datetime) -> bytes:
    """The subject's key, creating the row (ID number encrypted, its district kept) the first
    time it is seen; a subject stored before districts were kept gets its district now."""
    bidx = subject_bidx(deps, id_number)
    known = session.get(Subject, bidx)
    if known is None:
        upsert(session, Subject.__table__,  # type: ignore[arg-type]
               {"bidx": bidx, "first_seen_at": now, "district": district_of(id_number.value),
                "id_number_enc": deps.cipher.encrypt(id_number.value,
                                                     context="subjects.id_number")},
               key=["bidx"], update=[])
    elif known.district is None:
        known.district = district_of(id_number.value)
    return bidx


@dataclass(frozen=True)
class Backfill:
    """One batch of :func:`backfill_districts`."""

    filled: int
    unreadable: int  # ID numbers that no longer decrypt (a shredded key): left without one
    last: bytes | None  # the last key looked at; None when no subject is left after it


def backfill_districts(session: Session, deps: Deps, *, after: bytes | None,
                       batch: int = 1000) -> Backfill:
    """The district of up to ``batch`` subjects stored without one, in key order after
    ``after``: each ID number decrypted in memory, only its first six digits written (one
    executemany UPDATE a batch). Resumable and idempotent; the CLI runs a unit per batch."""
    table = subjects_table()
    query = (select(table.c.bidx, table.c.id_number_enc).where(table.c.district.is_(None))
             .order_by(table.c.bidx).limit(batch))
    if after is not None:
        query = query.where(table.c.bidx > after)
    rows = session.execute(query).all()
    if not rows:
        return Backfill(0, 0, None)
    found: list[dict[str, object]] = []
    unreadable = 0
    personal.load(session, deps, [bytes(b) for b, _ in rows])
    for bidx, enc in rows:
        try:  # a closed account's copy is shredded (None): it has no district to give
            number = personal.reveal(session, deps, bytes(bidx), enc,
                                     context="subjects.id_number")
        except DecryptionError:
            number = None
        if number is None:
            unreadable += 1
            continue
        found.append({"key": bidx, "code": district_of(number)})
    if found:
        session.execute(update(table).where(table.c.bidx == bindparam("key"))
                        .values(district=bindparam("code")), found)
    return Backfill(len(found), unreadable, bytes(rows[-1][0]))


class UnknownSubject(NotFound):
    code = "unknown_subject"
    title = "This partner has no citizen with this subject"


def pseudonym(deps: Deps, partner_id: uuid.UUID, bidx: bytes) -> str:
    mac = hmac.new(deps.settings.blind_index_key, b"pseudonym:" + partner_id.bytes + bidx,
                   hashlib.sha256).digest()
    return "ps_" + base64.b32encode(mac[:20]).decode().lower().rstrip("=")


def remember(session: Session, deps: Deps, partner_id: uuid.UUID, bidx: bytes) -> str:
    """The partner's pseudonym for this subject, recorded (idempotently) in the transaction.

    Two first verifications of one citizen at one partner may race; either unique constraint
    then turns the second insert into a no-op instead of an error.
    """
    name = pseudonym(deps, partner_id, bidx)
    upsert(session, Pseudonym.__table__,  # type: ignore[arg-type]
           {"partner_id": partner_id, "pseudonym": name, "subject_bidx": bidx,
            "created_at": deps.clock()}, key=None, update=[])
    return name


def resolve(session: Session, partner_id: uuid.UUID, name: str) -> bytes:
    """The subject behind a partner's pseudonym; another partner's pseudonym resolves to nothing."""
    bidx = session.scalar(select(Pseudonym.subject_bidx).where(
        Pseudonym.partner_id == partner_id, Pseudonym.pseudonym == name))
    if bidx is None:
        raise UnknownSubject()
    return bidx


def known_to(partner_id: Any, bidx: Any) -> Exists:
    """Query piece: whether the partner's pseudonym for the subject is already recorded."""
    return (select(Pseudonym.partner_id)
            .where(Pseudonym.partner_id == partner_id, Pseudonym.subject_bidx == bidx).exists())


def subjects_table() -> Table:
    """Query piece: the subjects table (``bidx``, ``id_number_enc``, ``first_seen_at``,
    ``district``), for the set-based work that joins or fills it (scores, the bulk import, the
    credit office's lists and statistics)."""
    return Subject.__table__  # type: ignore[return-value]


def first_seen(session: Session, bidx: bytes) -> datetime | None:
    """When this subject was first known; None if it is not (yet) a subject."""
    return session.scalar(select(Subject.first_seen_at).where(Subject.bidx == bidx))


def subject_count(session: Session) -> int:
    """How many people are known by ID number (registered or not)."""
    return int(session.scalar(select(func.count()).select_from(Subject)) or 0)
