"""The credit office's statistics (R13) and the districts' resident populations.

Every figure is a count (or a sum) that its own domain computes in one set-based statement
(GROUP BY in SQL); this module only asks and assembles, and never sees a row about a person.
The answer is cached in the key-value store for five minutes: when the store is down it is
computed and answered anyway (the statistics never depend on Redis).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xinyi.adapters.registry import sessionless_uses
from xinyi.audit.service import log_staff_action, reads_per_day
from xinyi.auth.principal import Principal
from xinyi.benefits import service as benefits
from xinyi.citizens.service import registered_count
from xinyi.credentials.service import verifications_per_day
from xinyi.dbutil import upsert
from xinyi.decisions import service as decisions
from xinyi.deps import Deps
from xinyi.disputes import service as disputes
from xinyi.errors import ServiceUnavailable, ValidationFailed
from xinyi.records.reading import record_counts
from xinyi.repairs import service as repairs
from xinyi.scoring.service import scored_by_district
from xinyi.stats import codec
from xinyi.stats.models import District
from xinyi.stats.views import (
    BenefitUse,
    Coverage,
    DayQueries,
    DayVerifications,
    DeadlineCompliance,
    DefaultCounts,
    DistrictCoverage,
    DistrictView,
    ObjectionCounts,
    RecordCount,
    RepairCounts,
    Statistics,
)
from xinyi.subjects.service import subject_count
from xinyi.timeutil import CHINA, china_today
from xinyi.uow import after_commit
from xinyi.workdays.service import DeadlineCounts

log = logging.getLogger(__name__)

CACHE_KEY = "xinyi:stats:v1"
CACHE_SECONDS = 300
DAYS = 30
# The policy's target: at least 70 % of residents have a score (compared in integers).
TARGET_PERCENT = 70
# A six-digit administrative division code (GB/T 2260) whose first two digits name a
# province-level division (ASCII digits only); the OpenAPI document states it for the path.
DISTRICT_CODE = re.compile(r"(1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[12])[0-9]{4}")
MAX_POPULATION = 200_000_000

# The kinds of case with a working-day deadline, each counted by its own domain: another kind
# is one more entry.
DEADLINES: tuple[tuple[str, Callable[[Session, date], DeadlineCounts]], ...] = (
    ("repairs", repairs.deadline_compliance),
    ("disputes", disputes.deadline_compliance),
    ("decision_reviews", decisions.deadline_compliance),
)


# ---- the statistics ------------------------------------------------------------------------

def statistics(session: Session, deps: Deps, *, refresh: bool = False) -> Statistics:
    """The figures as of at most five minutes ago (``refresh``: computed now)."""
    if not refresh:
        cached = _cached(deps)
        if cached is not None:
            return cached
    fresh = compute(session, now=deps.clock())
    with contextlib.suppress(ServiceUnavailable):  # answered uncached; the store logged it
        deps.kv.set(CACHE_KEY, codec.dumps(fresh), ttl=CACHE_SECONDS)
    return fresh


def _cached(deps: Deps) -> Statistics | None:
    try:
        raw = deps.kv.get(CACHE_KEY)
    except ServiceUnavailable:
        return None
    if raw is None:
        return None
    try:
        return codec.loads(Statistics, raw)
    except (ValueError, KeyError, TypeError):
        # Written by another version of these figures: computed again and replaced.
        log.info("statistics cache entry unreadable", extra={"event": "stats_cache_stale"})
        return None


def forget(deps: Deps) -> None:
    """Drop the cached figures (a district's population changed)."""
    with contextlib.suppress(ServiceUnavailable):  # it expires by itself within 5 minutes
        deps.kv.delete(CACHE_KEY)


def compute(session: Session, *, now: datetime, days: int = DAYS) -> Statistics:
    today = china_today(now)
    # Whole days in Asia/Shanghai: the oldest day shown is never cut at this time of day.
    since = datetime.combine(today - timedelta(days=days - 1), time(), tzinfo=CHINA)
    defaults = benefits.default_counts(session)
    repair_status = repairs.status_counts(session)
    outcomes = disputes.outcome_counts(session)
    return Statistics(
        as_of=now,
        citizens_covered=subject_count(session),
        registered_citizens=registered_count(session),
        records_by_domain_and_severity=tuple(
            RecordCount(domain=d, severity=s, polarity=p, records=n)
            for d, s, p, n in record_counts(session)),
        queries_per_day=tuple(DayQueries(date=str(d), queries=n)
                              for d, n in reads_per_day(session, since)),
        verifications_per_day=tuple(
            DayVerifications(date=str(d), decision=decision, verifications=n)
            for d, decision, n in verifications_per_day(session, since)),
        coverage=coverage(session),
        benefits=_benefits(session),
        defaults=DefaultCounts(defaulted=defaults.defaulted, in_grace=defaults.in_grace,
                               settled=defaults.settled, recorded=defaults.recorded),
        repairs=RepairCounts(
            requested=sum(repair_status.values()), pending=repair_status.get("pending", 0),
            approved=repair_status.get("approved", 0),
            rejected=repair_status.get("rejected", 0)),
        objections=ObjectionCounts(
            filed=sum(outcomes.values()), open=outcomes.get("open", 0),
            corrected=outcomes.get("corrected", 0), deleted=outcomes.get("deleted", 0),
            upheld=outcomes.get("upheld", 0)),
        deadlines=tuple(_compliance(kind, counts(session, today))
                        for kind, counts in DEADLINES),
    )


def _benefits(session: Session) -> tuple[BenefitUse, ...]:
    """Sessions per benefit and partner kind, and the benefits granted without a session
    (scenic entries: each discounted entry is used and fulfilled at once)."""
    rows = [BenefitUse(benefit_code=u.benefit_code, partner_kind=u.partner_kind,
                       opened=u.opened, fulfilled=u.fulfilled, cancelled=u.cancelled,
                       amount_fen=u.amount_fen, waived_fen=u.waived_fen)
            for u in benefits.usage_counts(session)]
    rows += [BenefitUse(benefit_code=code, partner_kind=kind, opened=n, fulfilled=n,
                        cancelled=0, amount_fen=amount, waived_fen=waived)
             for code, kind, n, amount, waived in sessionless_uses(session)]
    return tuple(sorted(rows, key=lambda u: (u.benefit_code, u.partner_kind)))


def _share(part: int, whole: int | None) -> float | None:
    return round(part / whole, 4) if whole else None


def _meets(scored: int, population: int | None) -> bool | None:
    return scored * 100 >= population * TARGET_PERCENT if population else None


def _compliance(kind: str, counts: DeadlineCounts) -> DeadlineCompliance:
    return DeadlineCompliance(
        kind=kind, decided=counts.decided, decided_on_time=counts.decided_on_time,
        on_time_share=_share(counts.decided_on_time, counts.decided), open=counts.open,
        open_past_due=counts.open_past_due)


def coverage(session: Session) -> Coverage:
    """People with a score ÷ the resident population staff set, per district and in total.

    The total counts only the districts with a population; people scored elsewhere (a
    district with none set, or a subject whose district is not recorded yet) are reported
    next to it, never divided by anything.
    """
    by_district = scored_by_district(session)
    unknown = by_district.pop(None, 0)
    scored = {code: n for code, n in by_district.items() if code is not None}
    known = {d.code: d for d in session.scalars(select(District))}
    rows = []
    for code in sorted(set(scored) | set(known)):
        district = known.get(code)
        population = district.resident_population if district else None
        n = scored.get(code, 0)
        rows.append(DistrictCoverage(
            code=code, name=district.name if district else None,
            resident_population=population, scored=n, coverage=_share(n, population),
            meets_target=_meets(n, population)))
    counted = [r for r in rows if r.resident_population]
    population_total = sum(r.resident_population or 0 for r in counted) or None
    scored_total = sum(r.scored for r in counted)
    return Coverage(
        target=TARGET_PERCENT / 100, resident_population=population_total,
        scored=scored_total, coverage=_share(scored_total, population_total),
        meets_target=_meets(scored_total, population_total),
        scored_without_population=sum(r.scored for r in rows if not r.resident_population),
        scored_district_unknown=unknown, districts=tuple(rows))


# ---- the districts' resident populations ---------------------------------------------------

def _view(d: District) -> DistrictView:
    return DistrictView(code=d.code, name=d.name, resident_population=d.resident_population,
                        updated_at=d.updated_at)


def districts(session: Session, *, page: int, page_size: int) -> tuple[list[DistrictView], int]:
    total = int(session.scalar(select(func.count()).select_from(District)) or 0)
    rows = session.scalars(select(District).order_by(District.code)
                           .limit(page_size).offset((page - 1) * page_size))
    return [_view(d) for d in rows], total


def set_district(session: Session, deps: Deps, staff: Principal, code: str, *, name: str,
                 resident_population: int | None) -> DistrictView:
    """Create or replace a district's name and resident population (``None``: not known);
    logged with before and after in ``staff_actions``; the cached figures are dropped once
    the change is committed."""
    if not DISTRICT_CODE.fullmatch(code):
        raise ValidationFailed.at("code", "must be a six-digit administrative division code",
                                  location="path")
    if resident_population is not None and not 1 <= resident_population <= MAX_POPULATION:
        raise ValidationFailed.at("resident_population",
                                  f"must be 1 to {MAX_POPULATION:,}, or null when not known")
    now = deps.clock()
    current = session.execute(select(District.name, District.resident_population)
                              .where(District.code == code).with_for_update()).one_or_none()
    after = {"name": name, "resident_population": resident_population}
    # An upsert: two first settings of one district at once both succeed, the last one wins.
    upsert(session, District.__table__,  # type: ignore[arg-type]
           {"code": code, **after, "updated_at": now, "updated_by": staff.id},
           key=["code"], update=["name", "resident_population", "updated_at", "updated_by"])
    log_staff_action(session, actor_id=staff.id, actor_role=staff.kind,
                     action="district.set", target=f"district:{code}",
                     before=None if current is None else dict(current._mapping), after=after,
                     now=now)
    after_commit(session, lambda: forget(deps))
    return DistrictView(code=code, name=name, resident_population=resident_population,
                        updated_at=now)
