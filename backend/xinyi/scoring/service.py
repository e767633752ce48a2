"""Scores: incremental per subject on every record change, and a set-based batch for everyone.

The SQL here and :func:`xinyi.scoring.rules.explain` compute the same number; a test holds
them to it. Only active records inside their display period count (R9, R10).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CTE,
    Insert,
    Integer,
    Select,
    Subquery,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from xinyi.citizens.service import citizen_bidx, registered_at
from xinyi.dbutil import insert_for, upsert
from xinyi.deps import Deps
from xinyi.errors import NotFound, ValidationFailed
from xinyi.jsonable import row
from xinyi.outbox.service import emit, events_table
from xinyi.records.service import (
    active_records,
    black_list_under_objection,
    black_listed,
    counted_points,
)
from xinyi.scoring import rules
from xinyi.scoring.models import BenefitRuleRow, CreditScore, ScoreChange
from xinyi.subjects.service import first_seen, subjects_table
from xinyi.timeutil import CHINA, china_today
from xinyi.volunteering.service import hours_points, minutes_in_year, volunteers_in_year


def _clamped(raw: ColumnElement[Any]) -> ColumnElement[int]:
    return case((raw < rules.SCORE_MIN, rules.SCORE_MIN),
                (raw > rules.SCORE_MAX, rules.SCORE_MAX), else_=raw)


def _tier(score: ColumnElement[Any]) -> ColumnElement[str]:
    return case(*[(score >= lowest, literal(tier)) for tier, lowest in rules.TIER_THRESHOLDS],
                else_=literal(rules.TIER_LOWEST))


TIER_CHANGED = "citizen.tier_changed"


def _new_id(session: Session) -> ColumnElement[Any]:
    """A random UUID computed by the database, for rows written by INSERT … SELECT."""
    if session.get_bind().dialect.name == "postgresql":
        return func.gen_random_uuid()
    return func.lower(func.hex(func.randomblob(16)))  # the Uuid type's CHAR(32) on SQLite


def _tier_payload(session: Session, before: Any, after: Any) -> ColumnElement[Any]:
    build = (func.json_build_object if session.get_bind().dialect.name == "postgresql"
             else func.json_object)
    return build(literal("from"), before, literal("to"), after)


def _tier_changes(session: Session, fresh: Subquery | CTE, now: datetime) -> Insert:
    """``citizen.tier_changed`` for every subject of ``fresh`` (``bidx``, ``tier``) whose
    stored tier differs, as one INSERT … SELECT that must run before the new scores are
    stored, in the same transaction. A subject without a stored score has no tier to change
    from (a first score is not a change). The payload is the two tiers only: the score itself
    is finer than a partner needs to hear of unasked."""
    outbox = events_table()
    old = CreditScore.__table__.alias("old_scores")
    changed = (select(_new_id(session), literal(TIER_CHANGED),
                      _tier_payload(session, old.c.tier, fresh.c.tier), fresh.c.bidx,
                      literal(now, CreditScore.computed_at.type))
               .select_from(fresh).join(old, old.c.subject_bidx == fresh.c.bidx)
               .where(old.c.tier != fresh.c.tier))
    return insert(outbox).from_select(
        ["id", "topic", "payload", "subject_bidx", "created_at"], changed)


def _emit_tier_changes(session: Session, fresh: Subquery, now: datetime) -> None:
    session.execute(_tier_changes(session, fresh, now))


_HISTORY_COLUMNS = ["id", "subject_bidx", "computed_at", "score_from", "score_to", "tier_from",
                    "tier_to", "record_points", "records_counted", "hours_bonus"]


def _history(session: Session, fresh: Subquery | CTE, now: datetime) -> Insert:
    """A ``score_history`` row for every subject of ``fresh`` (``bidx``, ``score``, ``tier``
    and the rule's inputs) whose score differs from the stored one, or who has none yet: one
    INSERT … SELECT that, like the tier events, must see the stored scores as they were."""
    old = CreditScore.__table__.alias("prior_scores")
    changed = (select(_new_id(session), fresh.c.bidx, literal(now, ScoreChange.computed_at.type),
                      old.c.score, fresh.c.score, old.c.tier, fresh.c.tier,
                      fresh.c.record_points, fresh.c.records_counted, fresh.c.hours_bonus)
               .select_from(fresh).outerjoin(old, old.c.subject_bidx == fresh.c.bidx)
               .where(or_(old.c.subject_bidx.is_(None), old.c.score != fresh.c.score)))
    return insert(ScoreChange).from_select(_HISTORY_COLUMNS, changed)


def scored_points(today: date) -> Subquery:
    """``(bidx, points, from_hours)`` of everything a score sums today: each counted record's
    points (``from_hours`` 0) and the volunteer-hours bonus of this calendar year (full hours,
    capped; ``from_hours`` 1)."""
    records = counted_points(today)
    hours = hours_points(today, rules.HOURS_BONUS_YEARLY_CAP * rules.HOURS_BONUS_POINTS_PER_HOUR)
    return union_all(select(records.c.bidx, records.c.points,
                            literal(0, Integer).label("from_hours")),
                     select(hours.c.bidx, hours.c.points,
                            literal(1, Integer).label("from_hours"))).subquery("scored")


def _inputs(counted: Subquery) -> list[ColumnElement[Any]]:
    """The rule's inputs as aggregates over ``counted`` (zero where a subject has none)."""
    of_records = counted.c.from_hours == 0
    return [func.coalesce(func.sum(case((of_records, counted.c.points), else_=0)), 0)
            .label("record_points"),
            func.coalesce(func.sum(case((of_records, 1), else_=0)), 0).label("records_counted"),
            func.coalesce(func.sum(case((counted.c.from_hours == 1, counted.c.points),
                                        else_=0)), 0).label("hours_bonus")]


def hours_this_year(session: Session, bidx: bytes, today: date) -> Decimal:
    """This calendar year's accepted volunteer hours (what the bonus is computed from)."""
    return Decimal(minutes_in_year(session, bidx, today)) / 60


def recompute_subject(session: Session, bidx: bytes, *, now: datetime, today: date) -> int:
    """Recompute one subject's score inside the caller's transaction."""
    counted = scored_points(today)
    record_points, records_counted, hours_bonus = session.execute(
        select(*_inputs(counted)).where(counted.c.bidx == bidx)).one()
    score = rules.clamp_score(rules.SCORE_BASE + int(record_points) + int(hours_bonus))
    prior = session.execute(select(CreditScore.score, CreditScore.tier)
                            .where(CreditScore.subject_bidx == bidx)).first()
    before = None if prior is None else prior.tier
    if before is not None and before != rules.tier_for(score):
        emit(session, TIER_CHANGED, {"from": before, "to": rules.tier_for(score)}, now=now,
             subject_bidx=bidx)
    if prior is None or prior.score != score:
        session.add(ScoreChange(
            subject_bidx=bidx, computed_at=now, score_from=None if prior is None else prior.score,
            score_to=score, tier_from=before, tier_to=rules.tier_for(score),
            record_points=int(record_points), records_counted=int(records_counted),
            hours_bonus=int(hours_bonus)))
        session.flush()
    upsert(session, CreditScore.__table__,  # type: ignore[arg-type]
           {"subject_bidx": bidx, "score": score, "tier": rules.tier_for(score),
            "computed_at": now},
           key=["subject_bidx"], update=["score", "tier", "computed_at"])
    return score


def recompute_all(session: Session, *, now: datetime, today: date) -> int:
    """Set-based recompute for every subject: one aggregate, one insert, in the caller's unit."""
    counted = scored_points(today)
    sums = (select(counted.c.bidx, func.sum(counted.c.points).label("total"), *_inputs(counted))
            .group_by(counted.c.bidx).subquery())
    raw = (literal(rules.SCORE_BASE, Integer) + func.coalesce(sums.c.total, 0))
    score = _clamped(raw)
    subjects = subjects_table()
    rows = (select(subjects.c.bidx, score, _tier(score),
                   literal(now, CreditScore.computed_at.type))
            .select_from(subjects).outerjoin(sums, sums.c.bidx == subjects.c.bidx))
    fresh = (select(subjects.c.bidx.label("bidx"), score.label("score"),
                    _tier(score).label("tier"),
                    *[func.coalesce(sums.c[name], 0).label(name)
                      for name in ("record_points", "records_counted", "hours_bonus")])
             .select_from(subjects).outerjoin(sums, sums.c.bidx == subjects.c.bidx)
             .subquery("fresh"))
    _emit_tier_changes(session, fresh, now)
    session.execute(_history(session, fresh, now))
    session.execute(delete(CreditScore))
    session.execute(insert(CreditScore).from_select(
        ["subject_bidx", "score", "tier", "computed_at"], rows))
    written = session.scalar(select(func.count()).select_from(CreditScore)) or 0
    return int(written)


def recompute_subjects(session: Session, bidxs: Sequence[bytes] | Select[Any], *,
                       now: datetime, today: date) -> int:
    """Set-based recompute of some subjects inside the caller's unit of work.

    One statement whatever their number; ``bidxs`` is a list of keys or a SELECT of one bidx
    column (the importer passes its staging table). It sums the same records as
    :func:`recompute_all` (a test holds them to it); returns the number of scores written.
    """
    subjects = subjects_table()
    chosen = (select(subjects.c.bidx.label("bidx"))
              .where(subjects.c.bidx.in_(bidxs if isinstance(bidxs, Select) else list(bidxs)))
              .subquery())
    counted = scored_points(today)
    score = _clamped(literal(rules.SCORE_BASE, Integer)
                     + func.coalesce(func.sum(counted.c.points), 0))
    rows = (select(chosen.c.bidx.label("bidx"), score.label("score"),
                   _tier(score).label("tier"),
                   literal(now, CreditScore.computed_at.type).label("computed_at"),
                   *_inputs(counted))
            .select_from(chosen).outerjoin(counted, counted.c.bidx == chosen.c.bidx)
            .group_by(chosen.c.bidx))
    stmt: Any = insert_for(session, CreditScore.__table__)  # type: ignore[arg-type]
    if session.get_bind().dialect.name == "postgresql":
        # One statement: the scores are computed once (a CTE used twice is materialised),
        # and the tier events and the history, data-modifying CTEs, see the stored scores
        # as they were.
        fresh: Any = rows.cte("fresh")
        stmt = stmt.from_select(["subject_bidx", "score", "tier", "computed_at"],
                                select(fresh.c.bidx, fresh.c.score, fresh.c.tier,
                                       fresh.c.computed_at))
        stmt = stmt.add_cte(_tier_changes(session, fresh, now).cte("tier_events"),
                            _history(session, fresh, now).cte("score_history_rows"))
    else:
        fresh = rows.subquery("fresh")
        _emit_tier_changes(session, fresh, now)
        session.execute(_history(session, fresh, now))
        stmt = stmt.from_select(["subject_bidx", "score", "tier", "computed_at"],
                                select(fresh.c.bidx, fresh.c.score, fresh.c.tier,
                                       fresh.c.computed_at).where(true()))
    stmt = stmt.on_conflict_do_update(
        index_elements=["subject_bidx"],
        set_={c: stmt.excluded[c] for c in ("score", "tier", "computed_at")})
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        stmt, execution_options={"preserve_rowcount": True})
    return int(result.rowcount)


def rescore_new_year(session: Session, *, now: datetime, today: date) -> int:
    """The hours bonus is a calendar year's: once a new year has begun, every stored score
    computed before it for someone who served last year still holds last year's bonus, and
    is computed again. Idempotent: a score computed this year is left alone."""
    year_start = datetime(today.year, 1, 1, tzinfo=CHINA)
    stale = (select(CreditScore.subject_bidx)
             .where(CreditScore.computed_at < year_start,
                    CreditScore.subject_bidx.in_(volunteers_in_year(date(today.year - 1, 12, 31)))))
    if session.scalar(select(stale.exists())) is not True:
        return 0
    return recompute_subjects(session, stale, now=now, today=today)


@dataclass(frozen=True)
class BenefitView:
    code: str
    qr_code: str
    partner_kind: str
    name_zh: str
    name_en: str
    min_score: int
    limits: dict[str, int]
    eligible: bool | None = None
    # Why not eligible: "below_threshold" (the rule's conditions are not met) or
    # "black_list_entry" (met, but an open black-list entry, which has a legal basis, withholds
    # it: R6 — the score alone never does).
    reason: str | None = None
    # Withheld by a black-list entry whose record is under objection (异议处理中).
    under_objection: bool = False

    @property
    def rule(self) -> rules.BenefitRule:
        return rules.BenefitRule(self.code, self.partner_kind, self.name_zh, self.name_en,
                                 self.min_score, self.limits)


def benefit_rules(session: Session) -> list[BenefitView]:
    return [BenefitView(r.code, r.qr_code, r.partner_kind, r.name_zh, r.name_en, r.min_score,
                        dict(r.limits))
            for r in session.scalars(select(BenefitRuleRow).order_by(BenefitRuleRow.code))]


def explain_subject(session: Session, bidx: bytes, *, today: date,
                    hours_this_year: Decimal = Decimal(0)) -> rules.ScoreExplanation:
    return rules.explain(active_records(session, bidx), hours_this_year, today)


def with_eligibility(benefit: BenefitView, met: bool, listed: bool,
                     disputed: bool = False) -> BenefitView:
    """The benefit as the citizen and the partners see it: only an open black-list entry
    withholds one whose conditions are met; ``disputed`` says that entry's record is under
    objection."""
    reason = None if met and not listed else ("black_list_entry" if met else "below_threshold")
    return dataclasses.replace(benefit, eligible=reason is None, reason=reason,
                               under_objection=reason == "black_list_entry" and disputed)


def benefits_for(session: Session, score: int, records: list[rules.ActiveRecord],
                 *, today: date, history_start: date, bidx: bytes) -> list[BenefitView]:
    clean = rules.years_without_negative(records, history_start, today)
    listed = bool(session.scalar(select(black_listed(bidx))))
    disputed = listed and bool(session.scalar(select(black_list_under_objection(bidx))))
    return [with_eligibility(b, rules.eligible(b.rule, score, clean_years=clean), listed,
                             disputed)
            for b in benefit_rules(session)]


@dataclass(frozen=True)
class Contribution:
    """``ContributionOut``: what one displayed record adds to the score, named."""

    record_id: str
    catalogue_code: str
    name_zh: str
    name_en: str
    points: int
    display_until: date


@dataclass(frozen=True)
class CreditReport:
    score: int
    tier: str
    base: int
    hours_bonus: int
    computed_at: datetime
    contributions: list[Contribution]
    benefits: list[BenefitView]
    next_steps: list[rules.NextStep]


def credit_report(session: Session, account_id: uuid.UUID, *, now: datetime) -> CreditReport:
    """The citizen's score with every point explained (R6): base + Σ contributions + hours."""
    today = china_today(now)
    bidx = citizen_bidx(session, account_id)
    records = active_records(session, bidx)
    explanation = rules.explain(records, hours_this_year(session, bidx, today), today)
    names = {r.record_id: r for r in records}
    known_since = min(d for d in (
        first_seen(session, bidx), registered_at(session, account_id), now) if d is not None)
    return CreditReport(
        score=explanation.score, tier=explanation.tier, base=rules.SCORE_BASE,
        hours_bonus=explanation.hours_bonus, computed_at=now,
        contributions=[Contribution(
            record_id=c.record_id, catalogue_code=c.catalogue_code,
            name_zh=names[c.record_id].name_zh, name_en=names[c.record_id].name_en,
            points=c.points, display_until=c.display_until) for c in explanation.contributions],
        benefits=benefits_for(session, explanation.score, records, today=today,
                              history_start=china_today(known_since), bidx=bidx),
        next_steps=list(explanation.next_steps))


@dataclass(frozen=True)
class ScoreChangeView:
    """One entry of a subject's score history: the score (and tier) before and after, and
    the inputs of the rule that computed it (``base + record_points + hours_bonus``, within
    the published range)."""

    id: uuid.UUID
    computed_at: datetime
    score_from: int | None
    score_to: int
    tier_from: str | None
    tier_to: str
    record_points: int
    records_counted: int
    hours_bonus: int


def _change_view(row: ScoreChange) -> ScoreChangeView:
    return ScoreChangeView(id=row.id, computed_at=row.computed_at, score_from=row.score_from,
                           score_to=row.score_to, tier_from=row.tier_from, tier_to=row.tier_to,
                           record_points=row.record_points, records_counted=row.records_counted,
                           hours_bonus=row.hours_bonus)


def score_history(session: Session, bidx: bytes) -> list[ScoreChangeView]:
    """The subject's score history, newest first (changes since the history was kept)."""
    return [_change_view(r) for r in session.scalars(
        select(ScoreChange).where(ScoreChange.subject_bidx == bidx)
        .order_by(ScoreChange.computed_at.desc(), ScoreChange.id))]


def score_change(session: Session, bidx: bytes, change_id: uuid.UUID) -> ScoreChangeView | None:
    """One entry of this subject's history; None if there is none (or it is another's)."""
    row = session.scalar(select(ScoreChange).where(ScoreChange.id == change_id,
                                                   ScoreChange.subject_bidx == bidx))
    return None if row is None else _change_view(row)


def stored_scores() -> Subquery:
    """Query piece: ``(bidx, score)`` of every subject's stored score (a subject without one
    scores :data:`rules.SCORE_BASE`)."""
    return (select(CreditScore.subject_bidx.label("bidx"), CreditScore.score)
            .subquery("stored_scores"))


class UnknownBenefitRule(NotFound):
    code = "benefit_rule_not_found"
    title = "No benefit rule has this code"


def update_benefit_rule(session: Session, code: str, *, min_score: int | None,
                        limits: Mapping[str, int] | None,
                        now: datetime) -> tuple[BenefitView, BenefitView]:
    """Change a rule's threshold and/or replace its limits (staff): ``(before, after)``.
    The rule is checked as :class:`rules.BenefitRule` checks every rule; the row is locked
    so two edits take turns. Other processes see it once their rule cache expires (10 s)."""
    row = session.scalar(select(BenefitRuleRow).where(BenefitRuleRow.code == code)
                         .with_for_update())
    if row is None:
        raise UnknownBenefitRule()
    before = BenefitView(row.code, row.qr_code, row.partner_kind, row.name_zh, row.name_en,
                         row.min_score, dict(row.limits))
    new_min = row.min_score if min_score is None else min_score
    new_limits = dict(row.limits) if limits is None else dict(limits)
    try:
        rules.BenefitRule(row.code, row.partner_kind, row.name_zh, row.name_en, new_min,
                          new_limits)
    except ValueError as exc:
        raise ValidationFailed.at("min_score" if "min_score" in str(exc) else "limits",
                                  str(exc).split(": ", 1)[-1]) from None
    row.min_score, row.limits, row.updated_at = new_min, new_limits, now
    session.flush()
    return before, dataclasses.replace(before, min_score=new_min, limits=new_limits)


def export_score_changes(session: Session, deps: Deps, account_id: uuid.UUID,
                         bidx: bytes) -> list[dict[str, Any]]:
    """The citizen's score history for their export, oldest first."""
    del deps, account_id
    return [row(c, "id", "computed_at", "score_from", "score_to", "tier_from", "tier_to",
                "record_points", "records_counted", "hours_bonus")
            for c in reversed(score_history(session, bidx))]


def export_scores(session: Session, deps: Deps, account_id: uuid.UUID,
                  bidx: bytes) -> list[dict[str, Any]]:
    """The citizen's stored score for their export: the score, tier and when (its changes
    are the ``score_changes`` section)."""
    return [row(s, "score", "tier", "computed_at")
            for s in session.scalars(select(CreditScore).where(CreditScore.subject_bidx == bidx))]
def scored_by_district(session: Session) -> dict[str | None, int]:
    """People with a stored score per district (``None``: a subject whose district is not
    recorded yet): one GROUP BY, no one named (the credit office's coverage)."""
    subjects = subjects_table()
    return {district: int(n) for district, n in session.execute(
        select(subjects.c.district, func.count()).select_from(CreditScore)
        .join(subjects, subjects.c.bidx == CreditScore.subject_bidx)
        .group_by(subjects.c.district))}
