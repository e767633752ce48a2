"""The worker's sweeps over benefit sessions: overdue, default by itself, record after grace.

Each sweep is a batch of set-based statements: one guarded ``UPDATE … WHERE id IN (SELECT …
LIMIT n FOR UPDATE SKIP LOCKED) AND state = … RETURNING``, then one bulk insert each for the
notices and the events, and one bulk release of exposure. Several workers take disjoint
batches (SKIP LOCKED); a row another worker already moved no longer matches the state; the
notices carry dedupe keys. So a sweep run twice, or by two workers, changes each session
once, notifies once and emits once.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.orm import Session

from xinyi.benefits import terms as session_terms
from xinyi.benefits.models import BenefitSession, Exposure
from xinyi.benefits.service import (
    _COLUMNS,
    AUTO_DEFAULT_AFTER,
    event_payload,
    yuan,
    zh_time,
)
from xinyi.deps import Deps
from xinyi.notifications.service import Notice, notify_many
from xinyi.outbox.service import events_table
from xinyi.records.service import DefaultRecord, catalogue_by_code, record_defaults
from xinyi.scoring.service import benefit_rules
from xinyi.timeutil import china_today

BATCH = 5000
#: The catalogue item a default of each partner kind is recorded as.
DEFAULT_ITEMS = {"library": "library.overdue_default", "bike": "bike.default",
                 "hospital": "hospital.pay_later_default", "hotel": "hotel.default"}
MARKET_DEFAULT = "market.default"


def default_item(kind: str) -> str:
    return DEFAULT_ITEMS.get(kind, MARKET_DEFAULT)


def _due_batch(state: str, condition: Any, batch: int) -> Any:
    return (select(BenefitSession.id)
            .where(BenefitSession.state == state, condition)
            .order_by(BenefitSession.id).limit(batch)
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

    def load(self, rows: Sequence[Row[Any]]) -> None:
        missing = {r.partner_id for r in rows} - set(self._partners)
        self._partners.update(session_terms.partner_names(self._session, missing))

    def partner(self, partner_id: uuid.UUID) -> str:
        return self._partners.get(partner_id) or "合作机构"

    def benefit(self, code: str) -> str:
        return self.benefits.get(code, code)


def _events(session: Session, topic: str, rows: Sequence[Row[Any]], now: datetime) -> None:
    if rows:
        session.execute(events_table().insert(), [
            {"id": uuid.uuid4(), "topic": f"benefit_session.{topic}",
             "payload": event_payload(r), "partner_id": r.partner_id, "subject_bidx": None,
             "created_at": now, "published_at": None} for r in rows])


_RELEASE = (update(Exposure).where(Exposure.subject_bidx == bindparam("bidx"))
            .values(open_fen=Exposure.open_fen - bindparam("amount"),
                    updated_at=bindparam("now")))


def _release(session: Session, rows: Sequence[Row[Any]], now: datetime) -> None:
    held: dict[bytes, int] = defaultdict(int)
    for r in rows:
        held[bytes(r.subject_bidx)] += r.waived_fen
    params = [{"bidx": b, "amount": a, "now": now} for b, a in held.items() if a > 0]
    if params:
        session.connection().execute(_RELEASE, params)


def mark_overdue(session: Session, deps: Deps, *, batch: int = BATCH) -> int:
    """Open sessions past their due date become ``overdue``; each citizen is notified."""
    now = deps.clock()
    rows = _move(session, "open", BenefitSession.due_at <= now,
                 {"state": "overdue", "overdue_at": now, "updated_at": now}, batch)
    if not rows:
        return 0
    names = _Names(session)
    names.load(rows)
    notify_many(session, [Notice(
        bytes(r.subject_bidx), "benefit_session_overdue",
        {"partner": names.partner(r.partner_id), "benefit": names.benefit(r.benefit_code),
         "due_date": zh_time(r.due_at)},
        f"benefit_session:{r.id}", f"benefit_session:{r.id}:overdue") for r in rows], now=now)
    _events(session, "overdue", rows, now)
    return len(rows)


def default_unclosed(session: Session, deps: Deps, *, batch: int = BATCH) -> int:
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
    rows: list[Row[Any]] = []
    cut = now - AUTO_DEFAULT_AFTER
    for days, codes in sorted(groups.items()):
        rows += _move(session, "overdue",
                      (BenefitSession.due_at <= cut) & BenefitSession.benefit_code.in_(codes),
                      _auto_default_values(now, days), batch - len(rows))
        if len(rows) >= batch:
            break
    if len(rows) < batch:  # a benefit rule since removed: the default grace
        rows += _move(session, "overdue",
                      (BenefitSession.due_at <= cut) & BenefitSession.benefit_code.not_in(known),
                      _auto_default_values(now, default_days), batch - len(rows))
    if not rows:
        return 0
    _release(session, rows, now)
    _defaulted_notices(session, rows, now)
    _events(session, "defaulted", rows, now)
    return len(rows)


def _auto_default_values(now: datetime, grace_days: int) -> dict[str, Any]:
    return {"state": "defaulted", "amount_owed_fen": BenefitSession.waived_fen,
            "defaulted_at": now, "closed_at": now,
            "grace_until": now + timedelta(days=grace_days), "updated_at": now}


def _defaulted_notices(session: Session, rows: Sequence[Row[Any]], now: datetime) -> None:
    names = _Names(session)
    names.load(rows)
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
    names.load(rows)
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
