"""Subjects: people known by ID number (blind index), registered or not (R1, R2)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from xinyi.dbutil import upsert
from xinyi.deps import Deps
from xinyi.pii import IdNumber
from xinyi.records.models import Subject


def subject_bidx(deps: Deps, id_number: IdNumber) -> bytes:
    return deps.bidx(id_number.value, kind="id_number")


def ensure_subject(session: Session, deps: Deps, id_number: IdNumber, now: datetime) -> bytes:
    """The subject's key, creating the row (ID number encrypted) the first time it is seen."""
    bidx = subject_bidx(deps, id_number)
    if session.get(Subject, bidx) is None:
        upsert(session, Subject.__table__,  # type: ignore[arg-type]
               {"bidx": bidx, "first_seen_at": now,
                "id_number_enc": deps.cipher.encrypt(id_number.value,
                                                     context="subjects.id_number")},
               key=["bidx"], update=[])
    return bidx
