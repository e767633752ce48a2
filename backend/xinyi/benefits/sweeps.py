"""The worker's sweeps over benefit sessions: overdue, default by itself, record after grace.

Each batch of the overdue and default sweeps is, on PostgreSQL, ONE statement: the guarded
``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED) AND state = … RETURNING``
as a data-modifying CTE, and from its rows, in the same statement, the notices (``INSERT …
ON CONFLICT DO NOTHING``), the events and the release of exposure; no row reaches Python.
Elsewhere (SQLite) the same steps run one after another. Several workers take disjoint
batches (SKIP LOCKED); a row another worker already moved no longer matches the state; the
notices carry dedupe keys. So a sweep run twice, or by two workers, changes each session
once, notifies once and emits once.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Row,
    String,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import Uuid

from xinyi.benefits import terms as session_terms
from xinyi.benefits.models import BenefitSession, Exposure
from xinyi.benefits.service import (
    _COLUMNS,
    AUTO_DEFAULT_AFTER,
    event_payload,
    events_sql,
    yuan,
    zh_time,
)
from xinyi.deps import Deps
from xinyi.notifications.service import Notice, notices_from_select, notify_many
from xinyi.outbox.service import events_table
from xinyi.records.service import DefaultRecord, catalogue_by_code, record_defaults
from xinyi.scoring.service import benefit_rules
from xinyi.timeutil import china_today

BATCH = 5000  # rows per batch where they pass through Python (not PostgreSQL)
#: Rows per batch on PostgreSQL, where a batch is one statement and no row reaches Python:
#: larger batches mean fewer statements, each holding its rows' locks a little longer.
PG_BATCH = 20000
_CHUNK = 5000  # rows per INSERT: 7 columns each stay under PostgreSQL's 65,535 parameters
#: The catalogue item a default of each partner kind is recorded as.
DEFAULT_ITEMS = {"library": "library.overdue_default", "bike": "bike.default",
                 "hospital": "hospital.pay_later_default", "hotel": "hotel.default"}
MARKET_DEFAULT = "market.default"


def default_item(kind: str) -> str:
    return DEFAULT_ITEMS.get(kind, MARKET_DEFAULT)


def _due_batch(state: str, condition: Any, batch: int) -> Any:
    return (select(BenefitSession.id)
            .where(BenefitSession.state == state, condition)
            .limit(batch)
            .with_for_update(skip_locked=True))


def _move(session: Session, state: str, condition: Any, values: dict[str, Any],
          batch: int) -> list[Row[Any]]:
    picked = _due_batch(state, condition, batch).scalar_subquery()
    return list(session.execute(
        update(BenefitSession)
        .where(BenefitSession.id.in_(picked), BenefitSession.state == state)
        .values(**values).returning(*_COLUMNS)).all())


class _Names:
    def __init__(self, session: Session) -> None:
        self._session = session
        self.benefits = {b.code: b.name_zh for b in benefit_rules(session)}
        self._partners: dict[uuid.UUID, str] = {}

    def load(self, partner_ids: Iterable[uuid.UUID]) -> None:
        missing = set(partner_ids) - set(self._partners)
        self._partners.update(session_terms.partner_names(self._session, missing))

    def partner(self, partner_id: uuid.UUID) -> str:
        return self._partners.get(partner_id) or "合作机构"

    def benefit(self, code: str) -> str:
        return self.benefits.get(code, code)


def _events(session: Session, topic: str, rows: Sequence[Row[Any]], now: datetime) -> None:
    """The events of a batch, in multi-row INSERTs (not a round trip per row)."""
    values = [{"id": uuid.uuid4(), "topic": f"benefit_session.{topic}",
               "payload": event_payload(r), "partner_id": r.partner_id, "subject_bidx": None,
               "created_at": now, "published_at": None} for r in rows]
    for start in range(0, len(values), _CHUNK):
        session.execute(events_table().insert().values(values[start:start + _CHUNK]))


def _release(session: Session, ids: list[uuid.UUID], now: datetime) -> None:
    """Give back the waived amounts of these sessions, per citizen, in one
    ``UPDATE … FROM (SELECT subject, sum(waived) … GROUP BY subject)``."""
    if not ids:
        return
    held = (select(BenefitSession.subject_bidx.label("bidx"),
                   func.sum(BenefitSession.waived_fen).label("total"))
            .where(_in_batch(session, ids), BenefitSession.waived_fen > 0)
            .group_by(BenefitSession.subject_bidx).subquery("held"))
    session.execute(update(Exposure).where(Exposure.subject_bidx == held.c.bidx)
                    .values(open_fen=Exposure.open_fen - held.c.total, updated_at=now))


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _in_batch(session: Session, ids: list[uuid.UUID]) -> Any:
    """``id`` in the batch: one array parameter on PostgreSQL, an expanding IN elsewhere."""
    if _postgres(session):
        return BenefitSession.id == any_(bindparam("batch_ids", ids, type_=ARRAY(Uuid())))
    return BenefitSession.id.in_(ids)


def _zh(column: Any) -> Any:
    return func.to_char(func.timezone("Asia/Shanghai", column), 'YYYY"年"FMMM"月"FMDD"日"')


def _text(column: Any) -> Any:
    return cast(column, String)


def _moved_cte(state: str, condition: Any, values: dict[str, Any], batch: int) -> Any:
    """The batch's guarded ``UPDATE … RETURNING`` (every column, after the change) as the
    CTE the notices, events and exposure are written from, in the same statement."""
    picked = _due_batch(state, condition, batch).scalar_subquery()
    return (update(BenefitSession)
            .where(BenefitSession.id.in_(picked), BenefitSession.state == state)
            .values(**values).returning(*_COLUMNS).cte("moved"))


def _events_cte(moved: Any, topic: str, now: datetime) -> Any:
    return events_sql(moved, topic, literal(now, BenefitSession.created_at.type)).cte("events")


def _notices_cte(session: Session, moved: Any, template: str, suffix: str,
                 params: dict[str, Any], now: datetime) -> Any:
    m = moved.c
    source, names = _named(session, moved)
    ref = literal("benefit_session:") + _text(m.id)
    args = [x for name, value in {**names, **params}.items() for x in (literal(name), value)]
    return notices_from_select(session, template, select(
        m.subject_bidx, func.json_build_object(*args), ref, ref + literal(f":{suffix}"))
        .select_from(source), now=now).cte("notices")


def _release_cte(moved: Any, now: datetime) -> Any:
    m = moved.c
    held = (select(m.subject_bidx.label("bidx"), func.sum(m.waived_fen).label("total"))
            .where(m.waived_fen > 0).group_by(m.subject_bidx).subquery("held"))
    return (update(Exposure).where(Exposure.subject_bidx == held.c.bidx)
            .values(open_fen=Exposure.open_fen - held.c.total, updated_at=now)
            .cte("released"))


def _named(session: Session, moved: Any) -> tuple[Any, dict[str, Any]]:
    """The moved rows joined to the partners' names (a hash join over the small clients
    table), and the partner's and the benefit's names (a CASE over the handful of rules) as
    SQL over them."""
    m = moved.c
    partners = session_terms.partner_names_sql()
    benefits = {b.code: b.name_zh for b in benefit_rules(session)}
    benefit = case(benefits, value=m.benefit_code, else_=m.benefit_code) if benefits \
        else m.benefit_code
    return moved.outerjoin(partners, partners.c.id == m.partner_id), {
        "partner": func.coalesce(partners.c.name, "合作机构"), "benefit": benefit}


def _run_batch(session: Session, moved: Any, *ctes: Any) -> int:
    """One statement: the state change and every write that depends on it (PostgreSQL runs
    each data-modifying CTE once, whether the final SELECT reads it or not)."""
    return int(session.scalar(select(func.count()).select_from(moved).add_cte(*ctes)) or 0)


def mark_overdue(session: Session, deps: Deps, *, batch: int = BATCH,
                 pg_batch: int | None = PG_BATCH) -> int:
    """Open sessions past their due date become ``overdue``; each citizen is notified."""
    now = deps.clock()
    values = {"state": "overdue", "overdue_at": now, "updated_at": now}
    if _postgres(session):
        moved = _moved_cte("open", BenefitSession.due_at <= now, values, pg_batch or batch)
        params = {"due_date": _zh(moved.c.due_at)}
        return _run_batch(session, moved,
                          _notices_cte(session, moved, "benefit_session_overdue", "overdue",
                                       params, now),
                          _events_cte(moved, "overdue", now))
    rows = _move(session, "open", BenefitSession.due_at <= now, values, batch)
    if not rows:
        return 0
    names = _Names(session)
    names.load(r.partner_id for r in rows)
    notify_many(session, [Notice(
        bytes(r.subject_bidx), "benefit_session_overdue",
        {"partner": names.partner(r.partner_id), "benefit": names.benefit(r.benefit_code),
         "due_date": zh_time(r.due_at)},
        f"benefit_session:{r.id}", f"benefit_session:{r.id}:overdue") for r in rows], now=now)
    _events(session, "overdue", rows, now)
    return len(rows)


def default_unclosed(session: Session, deps: Deps, *, batch: int = BATCH,
                     pg_batch: int | None = PG_BATCH) -> int:
    """Overdue sessions not closed 30 days after their due date become ``defaulted`` by
    themselves: the amount owed is what was waived, grace starts, the exposure is released
    and the citizen is notified."""
    now = deps.clock()
    terms = session_terms.all_terms(session)
    groups: dict[int, list[str]] = defaultdict(list)
    for rule in benefit_rules(session):
        groups[terms.get(rule.code, session_terms.Terms()).grace_days].append(rule.code)
    default_days = session_terms.DEFAULT_GRACE_DAYS
    known = [code for codes in groups.values() for code in codes]
    cut = now - AUTO_DEFAULT_AFTER
    if _postgres(session):
        grace = case(*[(BenefitSession.benefit_code.in_(codes), now + timedelta(days=days))
                       for days, codes in sorted(groups.items())],
                     else_=now + timedelta(days=default_days)) if groups \
            else literal(now + timedelta(days=default_days), BenefitSession.grace_until.type)
        batch_cte = _moved_cte("overdue", BenefitSession.due_at <= cut,
                               {**_auto_default_values(now, default_days),
                                "grace_until": grace}, pg_batch or batch)
        owed = batch_cte.c.amount_owed_fen
        amount = (cast(owed // 100, String) + literal(".")
                  + func.lpad(cast(owed % 100, String), 2, "0"))
        params = {"amount_yuan": amount, "grace_until": _zh(batch_cte.c.grace_until)}
        return _run_batch(session, batch_cte, _release_cte(batch_cte, now),
                          _notices_cte(session, batch_cte, "benefit_session_defaulted",
                                       "defaulted", params, now),
                          _events_cte(batch_cte, "defaulted", now))
    moved: list[Row[Any]] = []

    def move(condition: Any, days: int, room: int) -> list[Row[Any]]:
        return _move(session, "overdue", condition, _auto_default_values(now, days), room)

    for days, codes in sorted(groups.items()):
        moved += move((BenefitSession.due_at <= cut) & BenefitSession.benefit_code.in_(codes),
                      days, batch - len(moved))
        if len(moved) >= batch:
            break
    if len(moved) < batch:  # a benefit rule since removed: the default grace
        moved += move((BenefitSession.due_at <= cut)
                      & BenefitSession.benefit_code.not_in(known),
                      default_days, batch - len(moved))
    if not moved:
        return 0
    _release(session, [r.id for r in moved], now)
    _defaulted_notices(session, moved, now)
    _events(session, "defaulted", moved, now)
    return len(moved)


def _auto_default_values(now: datetime, grace_days: int) -> dict[str, Any]:
    return {"state": "defaulted", "amount_owed_fen": BenefitSession.waived_fen,
            "defaulted_at": now, "defaulted_by": "system", "closed_at": now,
            "grace_until": now + timedelta(days=grace_days), "updated_at": now}


def _defaulted_notices(session: Session, rows: Sequence[Row[Any]], now: datetime) -> None:
    names = _Names(session)
    names.load(r.partner_id for r in rows)
    notify_many(session, [Notice(
        bytes(r.subject_bidx), "benefit_session_defaulted",
        {"partner": names.partner(r.partner_id), "benefit": names.benefit(r.benefit_code),
         "amount_yuan": yuan(r.amount_owed_fen), "grace_until": zh_time(r.grace_until)},
        f"benefit_session:{r.id}", f"benefit_session:{r.id}:defaulted") for r in rows],
        now=now)


def record_after_grace(session: Session, deps: Deps, *, batch: int = 500) -> int:
    """Defaulted sessions whose grace is over (not settled) get a minor default record of
    the partner's kind, with the session as evidence; state ``recorded``."""
    now = deps.clock()
    rows = _move(session, "defaulted", BenefitSession.grace_until <= now,
                 {"state": "recorded", "recorded_at": now, "updated_at": now}, batch)
    if not rows:
        return 0
    names = _Names(session)
    names.load(r.partner_id for r in rows)
    defaults = [DefaultRecord(
        subject_bidx=bytes(r.subject_bidx), partner_id=r.partner_id,
        catalogue_code=default_item(r.kind), ref=f"benefit_session:{r.id}",
        summary=(f"{names.partner(r.partner_id)}「{names.benefit(r.benefit_code)}」服务单"
                 f"{r.id}：{zh_time(r.due_at)}到期，应付{yuan(r.amount_owed_fen)}元，"
                 f"经催告并于宽限期（至{zh_time(r.grace_until)}）满仍未结清"),
        occurred_on=china_today(r.defaulted_at or now)) for r in rows]
    recorded = record_defaults(session, deps, defaults, now=now)
    session.connection().execute(
        update(BenefitSession).where(BenefitSession.id == bindparam("sid"))
        .values(record_id=bindparam("rid")),
        [{"sid": r.id, "rid": recorded[f"benefit_session:{r.id}"]} for r in rows])
    items = catalogue_by_code(session)
    final = list(session.execute(select(*_COLUMNS).where(
        BenefitSession.id.in_([r.id for r in rows]))).all())
    notify_many(session, [Notice(
        bytes(r.subject_bidx), "benefit_session_recorded",
        {"partner": names.partner(r.partner_id), "benefit": names.benefit(r.benefit_code),
         "item": items[default_item(r.kind)].name_zh},
        f"benefit_session:{r.id}", f"benefit_session:{r.id}:recorded") for r in final],
        now=now)
    _events(session, "recorded", final, now)
    return len(final)
