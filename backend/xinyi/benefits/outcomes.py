"""What the system itself did to a citizen's benefit sessions (automated decisions): marked
one overdue, defaulted it 30 days after its due date, recorded it after the grace period.
A partner's own close (fulfilled, cancelled or a default it declares) is the partner's act,
not the system's, and is not listed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from xinyi.benefits.models import BenefitSession
from xinyi.benefits.service import AUTO_DEFAULT_AFTER
from xinyi.benefits.sweeps import default_item

STEPS = ("overdue", "defaulted", "recorded")


@dataclass(frozen=True)
class SessionOutcome:
    """A session with every step the system took on it (``steps``, in order). ``inferred``:
    the session was defaulted before the system recorded who declared a default, and the
    default is taken to be the sweep's from its dates and amount."""

    id: uuid.UUID
    partner_id: uuid.UUID
    benefit_code: str
    kind: str
    state: str
    amount_fen: int
    waived_fen: int
    amount_owed_fen: int | None
    due_at: datetime
    overdue_at: datetime | None
    defaulted_at: datetime | None
    grace_until: datetime | None
    recorded_at: datetime | None
    record_id: uuid.UUID | None
    default_item: str
    steps: tuple[str, ...]
    inferred: bool

    def at(self, step: str) -> datetime:
        moment = {"overdue": self.overdue_at, "defaulted": self.defaulted_at,
                  "recorded": self.recorded_at}[step]
        assert moment is not None
        return moment


def _outcome(row: BenefitSession) -> SessionOutcome:
    by_system = row.defaulted_at is not None and (
        row.defaulted_by == "system"
        or (row.defaulted_by is None and row.overdue_at is not None
            and row.defaulted_at >= row.due_at + AUTO_DEFAULT_AFTER
            and row.amount_owed_fen == row.waived_fen))
    steps = tuple(step for step, done in (("overdue", row.overdue_at is not None),
                                          ("defaulted", by_system),
                                          ("recorded", row.recorded_at is not None)) if done)
    return SessionOutcome(
        id=row.id, partner_id=row.partner_id, benefit_code=row.benefit_code, kind=row.kind,
        state=row.state, amount_fen=row.amount_fen, waived_fen=row.waived_fen,
        amount_owed_fen=row.amount_owed_fen, due_at=row.due_at, overdue_at=row.overdue_at,
        defaulted_at=row.defaulted_at, grace_until=row.grace_until,
        recorded_at=row.recorded_at, record_id=row.record_id,
        default_item=default_item(row.kind), steps=steps,
        inferred=by_system and row.defaulted_by is None)


# The sweep defaults only overdue sessions, so an overdue time covers every system default,
# those before ``defaulted_by`` was kept included.
_MOVED = or_(BenefitSession.overdue_at.is_not(None), BenefitSession.recorded_at.is_not(None),
             BenefitSession.defaulted_by == "system")


def system_outcomes(session: Session, bidx: bytes) -> list[SessionOutcome]:
    """The subject's sessions the system moved at least once, newest first."""
    rows = session.scalars(select(BenefitSession).where(BenefitSession.subject_bidx == bidx,
                                                         _MOVED)
                           .order_by(BenefitSession.created_at.desc(), BenefitSession.id))
    return [o for o in map(_outcome, rows) if o.steps]


def system_outcome(session: Session, bidx: bytes,
                   session_id: uuid.UUID) -> SessionOutcome | None:
    """One of the subject's sessions, if the system moved it; None otherwise."""
    row = session.scalar(select(BenefitSession).where(BenefitSession.id == session_id,
                                                      BenefitSession.subject_bidx == bidx))
    outcome = None if row is None else _outcome(row)
    return outcome if outcome is not None and outcome.steps else None
