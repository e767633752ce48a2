"""Benefit sessions (信用免押 / 先享后付): what happens after an ``eligible`` verification.

A partner opens a session on its own ``eligible`` verification, at most once and within
:data:`OPEN_WINDOW` of it. Opening never refuses for a limit or a cap (R6): the amount is
split into ``waived_fen`` (covered on credit) and ``charge_normally_fen`` (the rest), with

    waived_fen = min(amount_fen, the benefit's limit, waivable_fen, remaining exposure)

The remaining exposure is the cap of the citizen's tier (per benefit, in its session terms)
minus the waived amounts of the citizen's sessions held open or overdue, across every
partner. The database enforces the cap: :class:`~xinyi.benefits.models.Exposure` is raised
only by a guarded UPDATE under a row lock, with CHECK constraints behind it.

States::

    open ──close fulfilled──▶ fulfilled          (also from overdue: returned late)
    open ──cancel (≤15 min)─▶ cancelled
    open ──sweep, past due──▶ overdue ──30 days after due, by itself──▶ defaulted
    open|overdue ──close defaulted──▶ defaulted ──settle in grace──▶ settled
                                      defaulted ──grace over, sweep──▶ recorded

The exposure is released when a session leaves ``open``/``overdue``. Every write accepts an
Idempotency-Key (:mod:`xinyi.idempotency`). Another partner's session or verification is a
404, the same as one that does not exist. Events go to the outbox with the session's
partner: ``benefit_session.opened|closed|overdue|defaulted|settled|recorded``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    LargeBinary,
    Row,
    String,
    bindparam,
    case,
    cast,
    false,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.types import Uuid

from xinyi.auth.principal import Principal
from xinyi.auth.service import client_refs
from xinyi.benefits import terms as session_terms
from xinyi.benefits.models import HELD_STATES, BenefitSession, Exposure
from xinyi.citizens.service import citizen_bidx
from xinyi.credentials.verification import (
    VerificationRef,
    verification_ref_of,
    verification_ref_query,
)
from xinyi.dbutil import (
    json_number_sql,
    json_object_sql,
    json_quoted_sql,
    json_string_sql,
    owned_by,
    time_ordered_uuid_sql,
)
from xinyi.deps import Deps
from xinyi.errors import Conflict, NotFound, ValidationFailed
from xinyi.idempotency import Claim, answer_update_sql, idempotent, idempotent_claim
from xinyi.jsonable import row
from xinyi.notifications.service import notify
from xinyi.outbox.service import emit, events_table
from xinyi.timeutil import china_today
from xinyi.uow import unique_or

MAX_AMOUNT_FEN = 100_000_000  # ¥1,000,000
OPEN_WINDOW = timedelta(minutes=10)
CANCEL_WINDOW = timedelta(minutes=15)
MAX_DUE = timedelta(days=90)
MAX_EXTENSION = timedelta(days=30)  # beyond the original due date, once
AUTO_DEFAULT_AFTER = timedelta(days=30)  # an overdue session not closed defaults by itself
MAX_REFERENCE = 100
OUTCOMES = ("fulfilled", "defaulted")
# The limit keys of a benefit rule that bound the waived part, first found wins.
LIMIT_KEYS = ("deposit_waived_fen", "credit_line_fen")


# ---- errors (each code is part of the contract) ----

class SessionNotFound(NotFound):
    code = "benefit_session_not_found"
    title = "No benefit session of yours has this id"


class VerificationNotFound(NotFound):
    code = "verification_not_found"
    title = "No verification of yours has this id"


class VerificationNotEligible(ValidationFailed):
    code = "verification_not_eligible"
    title = "The verification answered standard_terms: nothing can be opened on credit"


class VerificationStale(ValidationFailed):
    code = "verification_stale"
    title = "The verification is older than 10 minutes"


class VerificationUsed(Conflict):
    code = "verification_used"
    title = "A session was already opened on this verification"


class SessionClosed(Conflict):
    code = "benefit_session_closed"
    title = "The session is no longer open"


class CancelWindowOver(Conflict):
    code = "cancel_window_over"
    title = "A session can be cancelled only within 15 minutes of opening"


class AlreadyExtended(Conflict):
    code = "benefit_session_already_extended"
    title = "A session is extended at most once"


class NotDefaulted(Conflict):
    code = "benefit_session_not_defaulted"
    title = "Only a defaulted session can be settled"


class GraceOver(Conflict):
    code = "grace_over"
    title = "The grace period is over: the default is (or is being) recorded"


# ---- what callers see ----

@dataclass(frozen=True)
class SessionView:
    id: uuid.UUID
    verification_id: uuid.UUID
    partner_id: uuid.UUID
    benefit_code: str
    kind: str
    state: str  # open|fulfilled|cancelled|overdue|defaulted|settled|recorded
    amount_fen: int
    waived_fen: int
    charge_normally_fen: int
    amount_owed_fen: int | None
    due_at: datetime
    reference: str
    created_at: datetime
    closed_at: datetime | None
    grace_until: datetime | None
    extended: bool
    record_id: uuid.UUID | None
    next_step: str  # what happens next, in words (for partner and citizen)
    next_step_at: datetime | None

    @property
    def session_id(self) -> uuid.UUID:
        """The same as ``id``: the adapters' answers carry both."""
        return self.id


@dataclass(frozen=True)
class CitizenSessionView:
    """A session as its citizen sees it: the partner by name, no partner-side reference."""

    id: uuid.UUID
    partner_name: str
    benefit_code: str
    kind: str
    state: str
    amount_fen: int
    waived_fen: int
    charge_normally_fen: int
    amount_owed_fen: int | None
    due_at: datetime
    created_at: datetime
    closed_at: datetime | None
    grace_until: datetime | None
    record_id: uuid.UUID | None
    next_step: str
    next_step_at: datetime | None


def next_step(state: str, *, due_at: datetime, grace_until: datetime | None,
              created_at: datetime | None = None) -> tuple[str, datetime | None]:
    """What happens next to a session in ``state``, and when (None: nothing more)."""
    del created_at
    if state == "open":
        return ("Return or pay by the due date; after it the session becomes overdue "
                "and the citizen is reminded", due_at)
    if state == "overdue":
        return ("Overdue: close it (returned late leaves no record); if not closed it "
                "becomes defaulted 30 days after the due date", due_at + AUTO_DEFAULT_AFTER)
    if state == "defaulted":
        return ("Defaulted: settle the amount owed before the grace period ends; otherwise "
                "a default record is written then (it can be objected to)", grace_until)
    if state == "recorded":
        return ("A default record was written; the citizen may object to it", None)
    if state == "settled":
        return ("Settled within grace: no record is written", None)
    if state == "fulfilled":
        return ("Fulfilled: nothing more happens", None)
    return ("Cancelled: nothing more happens", None)


def _view(row: Any) -> SessionView:
    step, at = next_step(row.state, due_at=row.due_at, grace_until=row.grace_until)
    return SessionView(
        id=row.id, verification_id=row.verification_id, partner_id=row.partner_id,
        benefit_code=row.benefit_code, kind=row.kind, state=row.state,
        amount_fen=row.amount_fen, waived_fen=row.waived_fen,
        charge_normally_fen=row.charge_normally_fen, amount_owed_fen=row.amount_owed_fen,
        due_at=row.due_at, reference=row.reference, created_at=row.created_at,
        closed_at=row.closed_at, grace_until=row.grace_until, extended=bool(row.extended),
        record_id=row.record_id, next_step=step, next_step_at=at)


_VIEW_FIELDS = ("id", "verification_id", "partner_id", "record_id")
_TIME_FIELDS = ("due_at", "created_at", "closed_at", "grace_until", "next_step_at")


def dump_view(view: SessionView) -> dict[str, Any]:
    """The view as JSON-able data (the stored answer of an Idempotency-Key)."""
    out: dict[str, Any] = dict(view.__dict__)
    for name in _VIEW_FIELDS:
        out[name] = None if out[name] is None else str(out[name])
    for name in _TIME_FIELDS:
        out[name] = None if out[name] is None else out[name].isoformat()
    return out


def load_view(data: Mapping[str, Any]) -> SessionView:
    values = dict(data)
    for name in _VIEW_FIELDS:
        values[name] = None if values[name] is None else uuid.UUID(values[name])
    for name in _TIME_FIELDS:
        values[name] = None if values[name] is None else datetime.fromisoformat(values[name])
    return SessionView(**values)


# ---- input rules ----

def _amount(field: str, value: object, *, zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed.at(field, "must be an integer number of fen")
    low = 0 if zero else 1
    if not low <= value <= MAX_AMOUNT_FEN:
        raise ValidationFailed.at(field, f"must be {low} to {MAX_AMOUNT_FEN} fen "
                                         "(at most ¥1,000,000)")
    return value


def _aware(field: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed.at(field, "must carry a time zone offset")
    return value


def _due(value: datetime, now: datetime) -> datetime:
    _aware("due_at", value)
    if value <= now:
        raise ValidationFailed.at("due_at", "must be in the future")
    if value > now + MAX_DUE:
        raise ValidationFailed.at("due_at", "must be at most 90 days from now")
    return value


def _reference(value: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_REFERENCE \
            or not value.isprintable() or value != value.strip():
        raise ValidationFailed.at("reference", f"must be 1 to {MAX_REFERENCE} printable "
                                               "characters without surrounding spaces")
    return value


# ---- exposure ----

def _benefit_limit(ref: VerificationRef) -> int:
    for key in LIMIT_KEYS:
        if key in ref.limits:
            return int(ref.limits[key])
    return 0


def _hold_statement(dialect: Any) -> Any:
    """The exposure hold as ONE upsert: add ``LEAST(want, cap - held)`` (never below 0) to
    the citizen's row, inserting it if there is none, and return what was added.

    ``INSERT … ON CONFLICT DO UPDATE`` locks the row and computes the SET on its latest
    version, so concurrent opens for one citizen, by any partners, take turns; the SET
    expressions all read the row as it was, so ``last_hold_fen`` is what this open added.
    The CHECK constraints are the last line: the sum can never pass the cap. Parameters:
    ``bidx``, ``want`` and ``cap`` (both > 0), ``first`` (``min(want, cap)``), ``now``."""
    table: Any = Exposure.__table__
    c = table.c
    cap, want = bindparam("cap", type_=Integer), bindparam("want", type_=Integer)
    # SQLite spells least/greatest as the two-argument min/max.
    least, greatest = ((func.least, func.greatest) if dialect is postgresql
                       else (func.min, func.max))
    take = least(want, greatest(0, cap - c.open_fen))
    first = bindparam("first", type_=Integer)
    now = bindparam("now", type_=c.updated_at.type)
    stmt = dialect.insert(table).values(
        subject_bidx=bindparam("bidx", type_=LargeBinary), open_fen=first, cap_fen=cap,
        last_hold_fen=first, updated_at=now)
    return stmt.on_conflict_do_update(index_elements=["subject_bidx"], set_={
        "last_hold_fen": take, "open_fen": c.open_fen + take,
        # The cap it was checked against, when something was added (a cap lowered below
        # what is held stays as it was: nothing is added then).
        "cap_fen": case((take > 0, cap), else_=c.cap_fen),
        "updated_at": now}).returning(c.last_hold_fen.label("waived"))


_HOLD = {"postgresql": _hold_statement(postgresql), "sqlite": _hold_statement(sqlite)}


def _hold_params(bidx: bytes, want: int, cap: int, now: datetime) -> dict[str, Any]:
    return {"bidx": bidx, "want": want, "cap": cap, "first": min(want, cap), "now": now}


def _hold(session: Session, bidx: bytes, want: int, cap: int, now: datetime) -> int:
    """Add up to ``want`` fen to the citizen's exposure, within ``cap``; what was added
    (see :func:`_hold_statement`)."""
    if want <= 0 or cap <= 0:
        return 0
    stmt = _HOLD[session.get_bind().dialect.name]
    return int(session.connection().execute(
        stmt, _hold_params(bidx, want, cap, now)).scalar_one())


def release(session: Session, bidx: bytes, amount: int, now: datetime) -> None:
    """Give back ``amount`` fen of the citizen's exposure (a session left open/overdue)."""
    if amount <= 0:
        return
    session.connection().execute(update(Exposure).where(Exposure.subject_bidx == bidx)
                                 .values(open_fen=Exposure.open_fen - amount, updated_at=now))


def exposure_of(session: Session, bidx: bytes) -> int:
    """The fen currently held against the citizen's cap."""
    return int(session.scalar(select(Exposure.open_fen).where(
        Exposure.subject_bidx == bidx)) or 0)


# ---- events and notices ----

def event_payload(row: Any) -> dict[str, Any]:
    """What a partner hears of its session: ids, state, amounts, dates; no personal data."""
    return {
        "session_id": str(row.id), "verification_id": str(row.verification_id),
        "benefit_code": row.benefit_code, "kind": row.kind, "state": row.state,
        "reference": row.reference, "amount_fen": row.amount_fen,
        "waived_fen": row.waived_fen, "charge_normally_fen": row.charge_normally_fen,
        "amount_owed_fen": row.amount_owed_fen, "due_at": row.due_at.isoformat(),
        "grace_until": None if row.grace_until is None else row.grace_until.isoformat(),
        "record_id": None if row.record_id is None else str(row.record_id),
    }


def _sql(text: str) -> Any:
    """A constant written into the statement (not a parameter): the hot statements stay
    short enough, and with few enough parameters, for the driver to cache their parsing."""
    return literal_column("'" + text.replace("'", "''") + "'")


_UTC, _ISO = _sql("UTC"), _sql('YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')


def iso_sql(column: Any) -> Any:
    """A timestamp column as ISO 8601 text in UTC, as ``datetime.isoformat`` reads it."""
    return func.to_char(func.timezone(_UTC, column), _ISO)


def _text(column: Any) -> Any:
    return cast(column, String)


def _json(*pairs: Any) -> Any:
    """``json_build_object`` with its keys written into the statement."""
    return func.json_build_object(*[_sql(x) if i % 2 == 0 else x
                                    for i, x in enumerate(pairs)])


def payload_sql(s: Any) -> Any:
    """:func:`event_payload` as PostgreSQL JSON (the same keys and values, written without
    spaces) over the columns ``s`` of a session row (a CTE's ``RETURNING``)."""
    return json_object_sql(
        ("session_id", json_quoted_sql(_text(s.id))),
        ("verification_id", json_quoted_sql(_text(s.verification_id))),
        ("benefit_code", json_string_sql(s.benefit_code)), ("kind", json_string_sql(s.kind)),
        ("state", json_string_sql(s.state)), ("reference", json_string_sql(s.reference)),
        ("amount_fen", json_number_sql(s.amount_fen)),
        ("waived_fen", json_number_sql(s.waived_fen)),
        ("charge_normally_fen", json_number_sql(s.charge_normally_fen)),
        ("amount_owed_fen", json_number_sql(s.amount_owed_fen)),
        ("due_at", json_quoted_sql(iso_sql(s.due_at))),
        ("grace_until", json_quoted_sql(iso_sql(s.grace_until))),
        ("record_id", json_quoted_sql(_text(s.record_id))))


def view_sql(s: Any) -> Any:
    """:func:`dump_view` as PostgreSQL JSON over the columns ``s`` of a session row; the
    next step is given (parameters ``step`` and ``step_at``, ISO text or NULL): each
    statement using this moves the session to one known state."""
    return _json(
        "id", _text(s.id), "verification_id", _text(s.verification_id),
        "partner_id", _text(s.partner_id), "benefit_code", s.benefit_code, "kind", s.kind,
        "state", s.state, "amount_fen", s.amount_fen, "waived_fen", s.waived_fen,
        "charge_normally_fen", s.charge_normally_fen, "amount_owed_fen", s.amount_owed_fen,
        "due_at", iso_sql(s.due_at), "reference", s.reference,
        "created_at", iso_sql(s.created_at), "closed_at", iso_sql(s.closed_at),
        "grace_until", iso_sql(s.grace_until), "extended", s.extended,
        "record_id", _text(s.record_id), "next_step", bindparam("step", type_=String),
        "next_step_at", bindparam("step_at", type_=String))


def events_sql(moved: Any, topic: str, now: Any) -> Any:
    """The outbox event of each row of ``moved`` (a CTE of session rows), as an ``INSERT …
    SELECT`` to put in the same statement; time-ordered ids."""
    m = moved.c
    return events_table().insert().from_select(
        ["id", "topic", "payload", "partner_id", "created_at"],
        select(time_ordered_uuid_sql(), _sql(f"benefit_session.{topic}"),
               cast(payload_sql(m), JSON), m.partner_id, now).select_from(moved))


def _emit(session: Session, topic: str, row: Any, now: datetime) -> None:
    emit(session, f"benefit_session.{topic}", event_payload(row), now=now,
         partner_id=row.partner_id)


def yuan(fen: int | None) -> str:
    fen = fen or 0
    return f"{fen // 100}.{fen % 100:02d}"


def zh_time(at: datetime) -> str:
    day = china_today(at)
    return f"{day.year}年{day.month}月{day.day}日"


def notice_defaulted(session: Session, deps: Deps, row: Any, partner_name: str,
                     now: datetime) -> None:
    notify(session, deps, row.subject_bidx, "benefit_session_defaulted",
           {"partner": partner_name, "benefit": session_terms.benefit_name(session,
                                                                          row.benefit_code),
            "amount_yuan": yuan(row.amount_owed_fen),
            "grace_until": zh_time(row.grace_until)},
           now=now, ref=f"benefit_session:{row.id}",
           dedupe_key=f"benefit_session:{row.id}:defaulted", sms=True)


# ---- reading ----

_COLUMNS = tuple(BenefitSession.__table__.c)


def _row(session: Session, partner: Principal, session_id: uuid.UUID, *,
         lock: bool = False) -> Row[Any]:
    stmt = select(*_COLUMNS).where(BenefitSession.id == session_id,
                                   owned_by(BenefitSession.partner_id, partner.id))
    row = session.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise SessionNotFound()
    return row


def get_session(session: Session, deps: Deps, partner: Principal,
                session_id: uuid.UUID) -> SessionView:
    """This partner's session; another partner's is a 404 like one that does not exist."""
    del deps
    return _view(_row(session, partner, session_id))


# ---- the hot writes in one statement each (PostgreSQL) ----
#
# An open is: the exposure hold, the session's INSERT, its ``opened`` event and the stored
# answer of the Idempotency-Key; a close (fulfilled) is the guarded UPDATE, the release of
# the exposure, the ``closed`` event and the stored answer. On PostgreSQL each is ONE
# statement of data-modifying CTEs, built once with parameters (one round trip instead of
# four to seven). SQLite runs the same steps one after another.

_T: Any = BenefitSession.__table__
_INSERTED = ("id", "verification_id", "partner_id", "subject_bidx", "benefit_code", "kind",
             "state", "amount_fen", "waived_fen", "charge_normally_fen", "amount_owed_fen",
             "due_at", "original_due_at", "reference", "extended", "created_at", "updated_at")


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _now_param() -> Any:
    return bindparam("now", type_=_T.c.created_at.type)


def _answer_cte(rows: Any) -> Any:
    return answer_update_sql(select(view_sql(rows.c)).scalar_subquery()).cte("answer")


def _open_statement(hold: bool, answer: bool) -> Any:
    """The open as one statement: ``held`` (the hold's upsert, when there is anything to
    hold), ``opened`` (the INSERT, its ``waived_fen`` what ``held`` added), the event from
    ``opened`` and, with a key, the answer. A verification already used makes the INSERT
    fail on its unique ``verification_id``, and with it the whole statement (the hold too)."""
    now = _now_param()
    amount = bindparam("amount", type_=Integer)
    due = bindparam("due", type_=_T.c.due_at.type)
    held = _HOLD["postgresql"].cte("held") if hold else None
    waived: Any = held.c.waived if held is not None else literal(0, Integer)
    values = select(
        bindparam("sid", type_=Uuid()), bindparam("vid", type_=Uuid()),
        bindparam("pid", type_=Uuid()), bindparam("bidx", type_=LargeBinary),
        bindparam("code", type_=String), bindparam("kind", type_=String), literal("open"),
        amount, waived, amount - waived, null(), due, due,
        bindparam("reference", type_=String), false(), now, now)
    if held is not None:
        values = values.select_from(held)
    opened = insert(_T).from_select(list(_INSERTED), values).returning(*_T.c).cte("opened")
    o = opened.c
    # The event's payload and the answer are made in Python (every value is known but the
    # split); the statement adds the split.
    split = func.jsonb_build_object(_sql("waived_fen"), o.waived_fen,
                                    _sql("charge_normally_fen"), o.charge_normally_fen)

    def with_split(name: str) -> Any:
        return cast(bindparam(name, type_=postgresql.JSONB).op("||")(split), JSON)

    ctes = [events_table().insert().from_select(
        ["id", "topic", "payload", "partner_id", "created_at"],
        select(time_ordered_uuid_sql(), _sql("benefit_session.opened"), with_split("payload"),
               o.partner_id, now).select_from(opened)).cte("event")]
    if answer:
        ctes.append(answer_update_sql(select(with_split("answer")).scalar_subquery())
                    .cte("answer"))
    return select(*o).add_cte(*ctes)


def _close_statement(answer: bool) -> Any:
    """A close ``fulfilled`` as one statement: ``moved`` (the guarded UPDATE: of parallel
    closes exactly one matches), ``released`` (the exposure, from ``moved``), the event and,
    with a key, the answer. No row: the session was not open or overdue (or not there)."""
    now = _now_param()
    moved = (update(_T)
             .where(_T.c.id == bindparam("sid", type_=Uuid()),
                    owned_by(_T.c.partner_id, bindparam("pid", type_=Uuid())),
                    _T.c.state.in_(HELD_STATES))
             .values(state="fulfilled", amount_owed_fen=0, closed_at=now, updated_at=now)
             .returning(*_T.c).cte("moved"))
    ex: Any = Exposure.__table__
    released = (update(ex).where(ex.c.subject_bidx == moved.c.subject_bidx,
                                 moved.c.waived_fen > 0)
                .values(open_fen=ex.c.open_fen - moved.c.waived_fen, updated_at=now)
                .cte("released"))
    ctes = [released, events_sql(moved, "closed", now).cte("event")]
    if answer:
        ctes.append(_answer_cte(moved))
    return select(*moved.c).add_cte(*ctes)


_OPEN = {(hold, answer): _open_statement(hold, answer)
         for hold in (False, True) for answer in (False, True)}
_CLOSE = {answer: _close_statement(answer) for answer in (False, True)}


@dataclass(frozen=True)
class _Opened:
    """A session as an open inserts it, before the split is known (``waived_fen`` 0)."""

    id: uuid.UUID
    verification_id: uuid.UUID
    partner_id: uuid.UUID
    benefit_code: str
    kind: str
    amount_fen: int
    due_at: datetime
    reference: str
    created_at: datetime
    state: str = "open"
    waived_fen: int = 0
    amount_owed_fen: int | None = None
    closed_at: datetime | None = None
    grace_until: datetime | None = None
    extended: bool = False
    record_id: uuid.UUID | None = None

    @property
    def charge_normally_fen(self) -> int:
        return self.amount_fen


def _answer_params(claim: Claim | None, state: str, due: datetime) -> dict[str, Any]:
    if claim is None:
        return {}
    step, at = next_step(state, due_at=due, grace_until=None)
    return {**claim.params(), "step": step, "step_at": None if at is None else at.isoformat()}


def _unique_violation(exc: IntegrityError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "23505"


# ---- writes ----

def open_session(session: Session, deps: Deps, partner: Principal, *,
                 verification_id: uuid.UUID, amount_fen: int, due_at: datetime,
                 reference: str, idempotency_key: str | None = None,
                 waivable_fen: int | None = None) -> SessionView:
    """Open a session on this partner's ``eligible`` verification, made at most 10 minutes
    ago and not used for a session yet.

    ``amount_fen`` (1 fen to ¥1,000,000) is split; never refused for a limit or the cap:
    ``waived_fen = min(amount_fen, benefit limit, waivable_fen, remaining exposure)`` and
    the rest is ``charge_normally_fen``. ``waivable_fen`` is an adapter's own cap on the
    waivable part (None: the benefit's limit alone). ``due_at`` is in the future, at most
    90 days out. ``reference`` is the partner's own (1–100 printable characters).

    Refused, changing nothing: bad input (422 naming the field), a verification that does
    not exist or is another partner's (404 ``verification_not_found``), one that answered
    ``standard_terms`` (422 ``verification_not_eligible``), older than 10 minutes (422
    ``verification_stale``) or already used (409 ``verification_used``)."""
    now = deps.clock()
    amount = _amount("amount_fen", amount_fen)
    due = _due(due_at, now)
    ref_text = _reference(reference)
    waivable = None if waivable_fen is None else _amount("waivable_fen", waivable_fen,
                                                         zero=True)
    body = {"verification_id": str(verification_id), "amount_fen": amount,
            "due_at": due.isoformat(), "reference": ref_text, "waivable_fen": waivable}

    def run(claim: Claim | None) -> SessionView:
        return _open(session, deps, partner, verification_id, amount, due, ref_text,
                     waivable, now, claim)

    return idempotent_claim(session, owner_id=partner.id, key=idempotency_key,
                            operation="benefit_session.open", body=body, now=now, run=run,
                            dump=dump_view, load=load_view)


# The verification, whether a session was opened on it already, and its benefit's session
# terms: one round trip.
_FACTS = verification_ref_query().add_columns(
    select(BenefitSession.id).where(BenefitSession.verification_id == bindparam("id"))
    .exists().label("used"),
    *session_terms.terms_columns(verification_ref_query().selected_columns.benefit_code))


def _open(session: Session, deps: Deps, partner: Principal, verification_id: uuid.UUID,
          amount: int, due: datetime, reference: str, waivable: int | None,
          now: datetime, claim: Claim | None) -> SessionView:
    del deps
    facts = session.connection().execute(
        _FACTS, {"id": verification_id, "partner_id": partner.id}).first()
    if facts is None:
        raise VerificationNotFound()
    ref = verification_ref_of(facts)
    if ref.decision != "eligible":
        raise VerificationNotEligible.at("verification_id", "answered standard_terms")
    if now - ref.created_at > OPEN_WINDOW:
        raise VerificationStale.at("verification_id", "older than 10 minutes")
    if facts.used:  # a concurrent open of it is refused by the unique verification_id below
        raise VerificationUsed()
    terms = session_terms.terms_from(facts.grace_days, facts.exposure_caps)
    want = min(amount, _benefit_limit(ref), amount if waivable is None else waivable)
    cap = terms.cap_for(ref.tier)
    session_id, kind = uuid.uuid4(), partner.client_kind or "other"
    values = {"sid": session_id, "vid": ref.id, "pid": partner.id,
              "bidx": ref.subject_bidx, "code": ref.benefit_code, "kind": kind,
              "amount": amount, "due": due, "reference": reference, "now": now}
    if _postgres(session):
        hold = want > 0 and cap > 0
        # The row as it will be, but for the split (the statement adds it).
        before = _Opened(session_id, ref.id, partner.id, ref.benefit_code, kind, amount, due,
                         reference, now)
        params = {**values, **(_hold_params(ref.subject_bidx, want, cap, now) if hold else {}),
                  "payload": event_payload(before)}
        if claim is not None:
            params |= {**claim.params(), "answer": dump_view(_view(before))}
        try:
            row = session.connection().execute(_OPEN[hold, claim is not None],
                                               params).one()
        except IntegrityError as exc:
            if _unique_violation(exc):  # the unit is aborted: the refusal rolls it back
                raise VerificationUsed() from None
            raise
        if claim is not None:
            claim.stored()
        return _view(row)
    with unique_or(session, VerificationUsed):
        waived = _hold(session, ref.subject_bidx, want, cap, now)
        row = session.connection().execute(insert(BenefitSession).values(
            id=session_id, verification_id=ref.id, partner_id=partner.id,
            subject_bidx=ref.subject_bidx, benefit_code=ref.benefit_code,
            kind=kind, state="open", amount_fen=amount,
            waived_fen=waived, charge_normally_fen=amount - waived, amount_owed_fen=None,
            due_at=due, original_due_at=due, reference=reference, extended=False,
            created_at=now, updated_at=now).returning(*_COLUMNS)).one()
    _emit(session, "opened", row, now)
    return _view(row)


def _transition(session: Session, partner: Principal, session_id: uuid.UUID,
                states: tuple[str, ...], values: dict[str, Any],
                extra: Any = None) -> Row[Any] | None:
    """Move the session if it is (still) in one of ``states``: one guarded UPDATE, so of
    parallel calls exactly one changes it (PostgreSQL re-checks the WHERE after the row
    lock). None if it was not in those states."""
    stmt = (update(BenefitSession)
            .where(BenefitSession.id == session_id,
                   owned_by(BenefitSession.partner_id, partner.id),
                   BenefitSession.state.in_(states))
            .values(**values).returning(*_COLUMNS))
    if extra is not None:
        stmt = stmt.where(extra)
    return session.connection().execute(stmt).first()


def close_session(session: Session, deps: Deps, partner: Principal, session_id: uuid.UUID,
                  *, outcome: str, amount_owed_fen: int,
                  idempotency_key: str | None = None) -> SessionView:
    """Close an open or overdue session.

    ``fulfilled`` (returned, even late): ``amount_owed_fen`` must be 0; no record ever.
    ``defaulted``: the partner declares a default of ``amount_owed_fen`` (1 fen to
    ¥1,000,000); grace starts (the benefit's ``grace_days``, 0 allowed) and the citizen is
    notified. Either releases the exposure. Closing twice is a 409
    ``benefit_session_closed``; of parallel closes exactly one writes."""
    now = deps.clock()
    if outcome not in OUTCOMES:
        raise ValidationFailed.at("outcome", "must be fulfilled or defaulted")
    if outcome == "fulfilled":
        owed = _amount("amount_owed_fen", amount_owed_fen, zero=True)
        if owed != 0:
            raise ValidationFailed.at("amount_owed_fen", "must be 0 when fulfilled")
    else:
        owed = _amount("amount_owed_fen", amount_owed_fen)
    body = {"outcome": outcome, "amount_owed_fen": owed}

    def run(claim: Claim | None) -> SessionView:
        if outcome == "fulfilled" and _postgres(session):
            row = session.connection().execute(_CLOSE[claim is not None], {
                "sid": session_id, "pid": partner.id, "now": now,
                **_answer_params(claim, "fulfilled", now)}).first()
            if row is None:
                raise SessionClosed(f"The session is {_row(session, partner, session_id).state}")
            if claim is not None:
                claim.stored()
            return _view(row)
        if outcome == "fulfilled":  # no read first: a missing one is found out below
            values: dict[str, Any] = {"state": "fulfilled", "amount_owed_fen": 0}
        else:
            current = _row(session, partner, session_id)
            grace = timedelta(days=session_terms.terms_of(session,
                                                          current.benefit_code).grace_days)
            values = {"state": "defaulted", "amount_owed_fen": owed, "defaulted_at": now,
                      "defaulted_by": "partner", "grace_until": now + grace}
        row = _transition(session, partner, session_id, HELD_STATES,
                          {**values, "closed_at": now, "updated_at": now})
        if row is None:
            raise SessionClosed(f"The session is {_row(session, partner, session_id).state}")
        release(session, row.subject_bidx, row.waived_fen, now)
        _emit(session, "closed", row, now)
        if outcome == "defaulted":
            _emit(session, "defaulted", row, now)
            notice_defaulted(session, deps, row, partner.client_name or "合作机构", now)
        return _view(row)

    return idempotent_claim(session, owner_id=partner.id, key=idempotency_key,
                            operation=f"benefit_session.close:{session_id}", body=body,
                            now=now, run=run, dump=dump_view, load=load_view)


def extend_session(session: Session, deps: Deps, partner: Principal, session_id: uuid.UUID,
                   *, due_at: datetime, idempotency_key: str | None = None) -> SessionView:
    """Move an open session's due date later, once, to at most 30 days beyond the original
    due date (and in the future). An overdue or closed session cannot be extended (409)."""
    now = deps.clock()
    _aware("due_at", due_at)
    body = {"due_at": due_at.isoformat()}

    def run() -> SessionView:
        current = _row(session, partner, session_id)
        if current.state != "open":
            raise SessionClosed(f"The session is {current.state}")
        if current.extended:
            raise AlreadyExtended()
        if due_at <= now or due_at <= current.due_at:
            raise ValidationFailed.at("due_at", "must be later than now and the current "
                                                "due date")
        if due_at > current.original_due_at + MAX_EXTENSION:
            raise ValidationFailed.at("due_at", "must be at most 30 days after the original "
                                                "due date")
        row = _transition(session, partner, session_id, ("open",),
                          {"due_at": due_at, "extended": True, "updated_at": now},
                          BenefitSession.extended.is_(False))
        if row is None:
            raise AlreadyExtended()
        return _view(row)

    return idempotent(session, owner_id=partner.id, key=idempotency_key,
                      operation=f"benefit_session.extend:{session_id}", body=body, now=now,
                      run=run, dump=dump_view, load=load_view)


def cancel_session(session: Session, deps: Deps, partner: Principal, session_id: uuid.UUID,
                   *, idempotency_key: str | None = None) -> SessionView:
    """Cancel an open session (nothing owed) within 15 minutes of opening; releases the
    exposure. Later: 409 ``cancel_window_over``; not open: 409 ``benefit_session_closed``."""
    now = deps.clock()

    def run() -> SessionView:
        current = _row(session, partner, session_id)
        if current.state != "open":
            raise SessionClosed(f"The session is {current.state}")
        if now - current.created_at > CANCEL_WINDOW:
            raise CancelWindowOver()
        row = _transition(session, partner, session_id, ("open",),
                          {"state": "cancelled", "amount_owed_fen": 0, "closed_at": now,
                           "updated_at": now})
        if row is None:
            raise SessionClosed()
        release(session, row.subject_bidx, row.waived_fen, now)
        _emit(session, "closed", row, now)
        return _view(row)

    return idempotent(session, owner_id=partner.id, key=idempotency_key,
                      operation=f"benefit_session.cancel:{session_id}", body={}, now=now,
                      run=run, dump=dump_view, load=load_view)


def settle_session(session: Session, deps: Deps, partner: Principal, session_id: uuid.UUID,
                   *, idempotency_key: str | None = None) -> SessionView:
    """The citizen paid what was owed during grace: ``settled``, and no record, ever.
    Not defaulted: 409 ``benefit_session_not_defaulted``; grace over: 409 ``grace_over``."""
    now = deps.clock()

    def run() -> SessionView:
        current = _row(session, partner, session_id)
        if current.state == "recorded":
            raise GraceOver()
        if current.state != "defaulted":
            raise NotDefaulted(f"The session is {current.state}")
        if current.grace_until is None or now >= current.grace_until:
            raise GraceOver()
        row = _transition(session, partner, session_id, ("defaulted",),
                          {"state": "settled", "settled_at": now, "updated_at": now},
                          BenefitSession.grace_until > now)
        if row is None:
            raise GraceOver()
        _emit(session, "settled", row, now)
        return _view(row)

    return idempotent(session, owner_id=partner.id, key=idempotency_key,
                      operation=f"benefit_session.settle:{session_id}", body={}, now=now,
                      run=run, dump=dump_view, load=load_view)


# ---- the citizen ----

def citizen_sessions(session: Session, deps: Deps, account_id: uuid.UUID, *, page: int,
                     page_size: int) -> tuple[list[CitizenSessionView], int]:
    """The citizen's sessions, newest first, with each partner's name and the next step:
    ``(page, total)``."""
    del deps
    bidx = citizen_bidx(session, account_id)
    mine = BenefitSession.subject_bidx == bidx
    total = int(session.scalar(select(func.count()).select_from(BenefitSession)
                               .where(mine)) or 0)
    rows = session.execute(select(*_COLUMNS).where(mine)
                           .order_by(BenefitSession.created_at.desc(), BenefitSession.id)
                           .offset((page - 1) * page_size).limit(page_size)).all()
    names = session_terms.partner_names(session, {r.partner_id for r in rows})
    out = []
    for r in rows:
        step, at = next_step(r.state, due_at=r.due_at, grace_until=r.grace_until)
        out.append(CitizenSessionView(
            id=r.id, partner_name=names.get(r.partner_id, ""), benefit_code=r.benefit_code,
            kind=r.kind, state=r.state, amount_fen=r.amount_fen, waived_fen=r.waived_fen,
            charge_normally_fen=r.charge_normally_fen, amount_owed_fen=r.amount_owed_fen,
            due_at=r.due_at, created_at=r.created_at, closed_at=r.closed_at,
            grace_until=r.grace_until, record_id=r.record_id, next_step=step,
            next_step_at=at))
    return out, total


def export_sessions(session: Session, deps: Deps, account_id: uuid.UUID,
                    bidx: bytes) -> list[dict[str, Any]]:
    """Every benefit session of the citizen, whatever its state (export)."""
    found = list(session.scalars(select(BenefitSession).where(BenefitSession.subject_bidx == bidx)
                                 .order_by(BenefitSession.created_at, BenefitSession.id)))
    names = client_refs(session, {s.partner_id for s in found})
    return [row(s, "id", "verification_id", "partner_id", "benefit_code", "kind", "state",
                "amount_fen", "waived_fen", "charge_normally_fen", "amount_owed_fen", "due_at",
                "original_due_at", "reference", "extended", "created_at", "overdue_at",
                "closed_at", "defaulted_at", "grace_until", "settled_at", "recorded_at",
                "record_id", "updated_at",
                partner_name=names[s.partner_id].name if s.partner_id in names else None)
            for s in found]
# ---- the credit office's statistics (counts only, one GROUP BY each) ----

@dataclass(frozen=True)
class Usage:
    """Sessions of one benefit at one kind of partner; the amounts leave out cancelled ones."""

    benefit_code: str
    partner_kind: str
    opened: int
    fulfilled: int
    cancelled: int
    amount_fen: int
    waived_fen: int


def _how_many(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _fen(condition: Any, column: Any) -> Any:
    return func.coalesce(func.sum(case((condition, column), else_=0)), 0)


def usage_counts(session: Session) -> list[Usage]:
    s = BenefitSession
    used = s.state != "cancelled"
    return [Usage(code, kind, int(opened), int(fulfilled), int(cancelled), int(amount),
                  int(waived))
            for code, kind, opened, fulfilled, cancelled, amount, waived in session.execute(
                select(s.benefit_code, s.kind, func.count(), _how_many(s.state == "fulfilled"),
                       _how_many(s.state == "cancelled"), _fen(used, s.amount_fen),
                       _fen(used, s.waived_fen))
                .group_by(s.benefit_code, s.kind).order_by(s.benefit_code, s.kind))]


@dataclass(frozen=True)
class Defaults:
    """Partner defaults: every session that defaulted, and where each stands now."""

    defaulted: int
    in_grace: int  # still within its grace days
    settled: int  # paid within grace: no record
    recorded: int  # grace over unpaid: a minor market-default record was written


def default_counts(session: Session) -> Defaults:
    s = BenefitSession
    defaulted, in_grace, settled, recorded = session.execute(select(
        _how_many(s.defaulted_at.is_not(None)), _how_many(s.state == "defaulted"),
        _how_many(s.state == "settled"), _how_many(s.state == "recorded"))).one()
    return Defaults(int(defaulted), int(in_grace), int(settled), int(recorded))
