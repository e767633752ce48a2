"""Benchmark the webhook dispatcher and the tier-change events of the set-based recompute.

    .venv/bin/python scripts/bench_dispatch.py [--subjects 50000] [--records 300000]
                                              [--events 100000] [--consents 2000] [--runs 3]

Creates a fresh PostgreSQL database (dropped first if it exists), migrates it and fills it
with set-based SQL. Two figures, each a ratio to a floor measured in the same run:

1. ``recompute_subjects`` over every subject (the importer's path) with its
   ``citizen.tier_changed`` INSERT … SELECT, against the same recompute without it. Measured
   twice: scores unchanged (the usual re-run), and a date a year later, when many records
   leave their display period and many tiers change (each run rolled back).
2. Dispatching ``--events`` ``list.entered`` outbox rows (a bulk import's) of which some
   concern citizens with a live consent, a committed unit per batch as the worker does,
   against the floor every dispatcher pays: reading the same batches in order and marking
   them published. Each run starts from the same state.

Never touches any other database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from benchlib import fresh_database  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

SUBJECTS = """
INSERT INTO subjects (bidx, id_number_enc, first_seen_at)
SELECT sha256(int4send(g)), '\\x01'::bytea || sha256(int4send(-g)), now()
FROM generate_series(1, CAST(:subjects AS integer)) g
"""
# As bench_scores.py: record g belongs to subject 1 + g % subjects, items and dates spread.
RECORDS = """
WITH cat AS (
    SELECT row_number() OVER (ORDER BY code) - 1 AS n, code, points, display_months,
           repair_after_months
    FROM catalogue_items),
size AS (SELECT count(*) AS n FROM catalogue_items),
rec AS (
    SELECT g, cat.*, current_date - ((g::bigint * 7919) % 1100)::int AS occurred_on
    FROM generate_series(1, CAST(:records AS integer)) g
    JOIN cat ON cat.n = (g * 31) % (SELECT n FROM size)),
snap AS (
    SELECT rec.*, (occurred_on + make_interval(months => display_months))::date AS until
    FROM rec)
INSERT INTO credit_records (
    id, subject_bidx, provider_id, provider_ref, content_hash, catalogue_code, occurred_on,
    summary, occupation, points, display_months, repair_after_months, display_until,
    repair_from, status, archived_reason, archived_at, created_at, updated_at)
SELECT gen_random_uuid(), sha256(int4send(1 + g % CAST(:subjects AS integer))), :provider,
       'S' || g, sha256(int8send(g::bigint)), code, occurred_on, '基准测试记录', NULL, points,
       display_months, repair_after_months, until,
       (occurred_on + make_interval(months => repair_after_months))::date,
       CASE WHEN until <= current_date THEN 'archived' ELSE 'active' END,
       CASE WHEN until <= current_date THEN 'expired' END,
       CASE WHEN until <= current_date THEN now() END, now(), now()
FROM snap
"""
# Every list.entered of a bulk import: one per event, for subject 1 + g % subjects.
EVENTS = """
INSERT INTO outbox_events (id, topic, payload, subject_bidx, created_at)
SELECT gen_random_uuid(), 'list.entered',
       json_build_object('list', 'black', 'record_id', gen_random_uuid()::text,
                         'catalogue_code', 'court.dishonest_debtor'),
       sha256(int4send(1 + g % CAST(:subjects AS integer))),
       now() - interval '1 hour' + g * interval '1 microsecond'
FROM generate_series(1, CAST(:events AS integer)) g
"""
# Partner p (of 10) holds a live consent for subjects p, p + 10, p + 20, …
CONSENTS = """
INSERT INTO consents (id, subject_bidx, partner_id, scope, purpose, granted_at, expires_at)
SELECT gen_random_uuid(), sha256(int4send(g)), (CAST(:partners AS uuid[]))[1 + g % 10],
       'report.summary', '基准测试', now() - interval '1 day', now() + interval '30 days'
FROM generate_series(1, CAST(:consents AS integer)) g
"""


def fill(url: str, args: argparse.Namespace) -> list[uuid.UUID]:
    engine = create_engine(url)
    provider, partners = uuid.uuid4(), [uuid.uuid4() for _ in range(10)]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_clients (id, type, name, created_at) "
                          "VALUES (:id, 'provider', 'bench provider', now())"), {"id": provider})
        for n, partner in enumerate(partners):
            conn.execute(text("INSERT INTO api_clients (id, type, name, kind, created_at) "
                              "VALUES (:id, 'partner', :name, 'library', now())"),
                         {"id": partner, "name": f"bench partner {n}"})
            for e in range(2):  # two endpoints each: every delivery row is written
                conn.execute(text(
                    "INSERT INTO webhook_endpoints (id, partner_id, url, event_types, "
                    "description, enabled, rate_limit_per_s, secret_enc, created_at, "
                    "updated_at) VALUES (:id, :p, 'https://hooks.example.org/x', '[]', '', "
                    ":on, 20, '\\x00', now(), now())"),
                    {"id": uuid.uuid4(), "p": partner, "on": e == 0})
        conn.execute(text(SUBJECTS), {"subjects": args.subjects})
        conn.execute(text(RECORDS), {"records": args.records, "subjects": args.subjects,
                                     "provider": provider})
        conn.execute(text(CONSENTS), {"consents": args.consents,
                                      "partners": [str(p) for p in partners]})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return partners


def deps_for(url: str, instance: str) -> Any:
    from xinyi.config import load_settings
    from xinyi.wiring import build_deps

    return build_deps(load_settings({"XINYI_ENV": "development", "XINYI_DATABASE_URL": url,
                                     "XINYI_INSTANCE_PATH": instance,
                                     "XINYI_LOG_LEVEL": "WARNING"}))


def timed(deps: Any, work: Callable[[Any], object]) -> float:
    """``work(session)`` in a transaction that is rolled back: every run starts alike."""
    with deps.db.sessions() as session:
        began = time.perf_counter()
        work(session)
        session.flush()
        took = time.perf_counter() - began
        session.rollback()
    return took


def alternate(runs: int, floor: Callable[[], float],
              measured: Callable[[], float]) -> tuple[float, float]:
    """Medians of ``runs`` alternating runs of each (after one warm-up of each)."""
    floor(), measured()
    floors, measures = [], []
    for _ in range(runs):
        floors.append(floor())
        measures.append(measured())
    return statistics.median(floors), statistics.median(measures)


def recompute_without_events(session: Any, bidxs: Any, *, now: datetime, today: Any) -> int:
    """The floor: ``recompute_subjects`` as it was before tier events (the same upsert)."""
    from sqlalchemy import Integer, func, literal, select

    from xinyi.dbutil import insert_for
    from xinyi.records.service import counted_points
    from xinyi.scoring import rules
    from xinyi.scoring import service as scoring
    from xinyi.scoring.models import CreditScore
    from xinyi.subjects.service import subjects_table

    subjects = subjects_table()
    chosen = select(subjects.c.bidx.label("bidx")).where(subjects.c.bidx.in_(bidxs)).subquery()
    counted = counted_points(today)
    score = scoring._clamped(literal(rules.SCORE_BASE, Integer)
                             + func.coalesce(func.sum(counted.c.points), 0))
    rows = (select(chosen.c.bidx, score, scoring._tier(score),
                   literal(now, CreditScore.computed_at.type))
            .select_from(chosen).outerjoin(counted, counted.c.bidx == chosen.c.bidx)
            .group_by(chosen.c.bidx))
    stmt: Any = insert_for(session, CreditScore.__table__)
    stmt = stmt.from_select(["subject_bidx", "score", "tier", "computed_at"], rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["subject_bidx"],
        set_={c: stmt.excluded[c] for c in ("score", "tier", "computed_at")})
    return int(session.execute(stmt).rowcount)


def bench_recompute(deps: Any, runs: int) -> None:
    from sqlalchemy import select

    from xinyi.scoring import service as scoring
    from xinyi.subjects.service import subjects_table
    from xinyi.timeutil import china_today

    subjects = subjects_table()
    now = datetime.now(UTC)
    with deps.db.sessions() as session:  # stored scores to compare against
        scoring.recompute_subjects(session, select(subjects.c.bidx), now=now,
                                   today=china_today(now))
        session.commit()

    def run(emit: bool, later: timedelta) -> float:
        recompute = scoring.recompute_subjects if emit else recompute_without_events
        return timed(deps, lambda s: recompute(s, select(subjects.c.bidx), now=now,
                                               today=china_today(now + later)))

    for label, later in (("scores unchanged", timedelta(0)),
                         ("a year later, many tiers change", timedelta(days=365))):
        floor, measured = alternate(runs, lambda later=later: run(False, later),
                                    lambda later=later: run(True, later))
        events = _tier_events(deps, now, later)
        print(f"recompute_subjects, {label} ({events:,} tier_changed events): "
              f"{measured:.2f} s with the events vs {floor:.2f} s without "
              f"= {measured / floor:.2f}× the floor")


def _tier_events(deps: Any, now: datetime, later: timedelta) -> int:
    from sqlalchemy import func, select

    from xinyi.outbox.models import OutboxEvent
    from xinyi.scoring import service as scoring
    from xinyi.subjects.service import subjects_table
    from xinyi.timeutil import china_today

    with deps.db.sessions() as session:
        scoring.recompute_subjects(session, select(subjects_table().c.bidx), now=now,
                                   today=china_today(now + later))
        n = session.scalar(select(func.count()).select_from(OutboxEvent)
                           .where(OutboxEvent.topic == scoring.TIER_CHANGED)) or 0
        session.rollback()
    return int(n)


RESET = ("DELETE FROM webhook_deliveries", "DELETE FROM webhook_events",
         "DELETE FROM webhook_watches", "DELETE FROM access_log",
         "UPDATE outbox_events SET published_at = NULL")


def bench_dispatch(url: str, deps: Any, args: argparse.Namespace) -> None:
    """As the worker runs it: a unit of work (committed) per batch. Before each run every
    event is handed back to the outbox and what the last run wrote is deleted (then VACUUM),
    so each run starts alike."""
    from sqlalchemy import func, select

    from xinyi.outbox import service as outbox
    from xinyi.webhooks.dispatch import dispatch_batch
    from xinyi.webhooks.models import PartnerEvent, WebhookDelivery

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM outbox_events"))
        conn.execute(text(EVENTS), {"events": args.events, "subjects": args.subjects})
    batch = args.batch

    def reset() -> None:
        with engine.begin() as conn:
            for statement in RESET:
                conn.execute(text(statement))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE outbox_events, webhook_events, "
                              "webhook_deliveries, access_log"))

    def floor(session: Any) -> int:
        events = outbox.pending(session, limit=batch)
        outbox.mark_published(session, [e.id for e in events], datetime.now(UTC))
        return len(events)

    def dispatcher(session: Any) -> int:
        return dispatch_batch(session, deps, batch=batch) or 0

    def run(work: Callable[[Any], int]) -> float:
        reset()
        began = time.perf_counter()
        while True:
            with deps.db.sessions() as session:
                handled = work(session)
                session.commit()
            if not handled:
                return time.perf_counter() - began

    low, measured = alternate(args.runs, lambda: run(floor), lambda: run(dispatcher))
    with deps.db.sessions() as session:  # what the last run wrote
        feed = session.scalar(select(func.count()).select_from(PartnerEvent)) or 0
        sent = session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0
    engine.dispose()
    print(f"dispatch of {args.events:,} list.entered events in batches of {batch} "
          f"({feed:,} feed events, {sent:,} deliveries, as many access-log entries as feed "
          f"events): {measured:.2f} s = {args.events / measured:,.0f} events/s vs the floor "
          f"(read in order, mark published, same batches) {low:.2f} s "
          f"= {measured / low:.2f}× the floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=50_000)
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--consents", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default="xinyi_bench_dispatch")
    parser.add_argument("--admin-url", default=os.environ.get(
        "XINYI_BENCH_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    started = time.perf_counter()
    url = fresh_database(args.admin_url, args.database)
    fill(url, args)
    print(f"filled {args.subjects:,} subjects, {args.records:,} records, {args.consents:,} "
          f"live consents in {time.perf_counter() - started:.0f} s; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="xinyi-bench-dispatch-") as tmp:
        deps = deps_for(url, tmp)
        bench_recompute(deps, args.runs)
        bench_dispatch(url, deps, args)
        deps.db.engine.dispose()


if __name__ == "__main__":
    main()
