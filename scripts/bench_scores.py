"""Benchmark ``xinyi scores recompute`` on PostgreSQL: 200,000 subjects, 2,000,000 records.

    .venv/bin/python scripts/bench_scores.py [--subjects 200000] [--records 2000000] [--runs 3]

Creates a fresh database (dropped first if it exists), migrates it and fills it with set-based
SQL (``generate_series``, not the API): subjects with stand-in ciphertexts and records spread
over the whole catalogue and the last three years, those past display archived as the daily
sweep would. Then times the command in a subprocess, ``--runs`` times. Never touches any
other database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from benchlib import fresh_database  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

SUBJECTS = """
INSERT INTO subjects (bidx, id_number_enc, first_seen_at)
SELECT sha256(int4send(g)), '\\x01'::bytea || sha256(int4send(-g)), now()
FROM generate_series(1, CAST(:subjects AS integer)) g
"""
# Record g belongs to subject 1 + g % subjects; its item and date are spread by the hash-like
# multipliers. Snapshots follow the catalogue as _snapshot does (same month arithmetic: PostgreSQL
# clamps Jan 31 + 1 month to the month's end too).
RECORDS = """
WITH cat AS (
    SELECT row_number() OVER (ORDER BY code) - 1 AS n, code, points, display_months,
           repair_after_months
    FROM catalogue_items),
size AS (SELECT count(*) AS n FROM catalogue_items),
rec AS (
    SELECT g, cat.*, current_date - ((g::bigint * 7919) % 1100)::int AS occurred_on
    FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) g
    JOIN cat ON cat.n = (g * 31) % (SELECT n FROM size)),
snap AS (
    SELECT rec.*, (occurred_on + make_interval(months => display_months))::date AS until
    FROM rec)
INSERT INTO credit_records (
    id, subject_bidx, provider_id, provider_ref, content_hash, catalogue_code, occurred_on,
    summary, occupation, points, display_months, repair_after_months, display_until,
    repair_from, status, archived_reason, archived_at, created_at, updated_at)
SELECT gen_random_uuid(), sha256(int4send(1 + g % CAST(:subjects AS integer))), :provider, 'S' || g,
       sha256(int8send(g::bigint)), code, occurred_on, '基准测试记录', NULL, points, display_months,
       repair_after_months, until,
       (occurred_on + make_interval(months => repair_after_months))::date,
       CASE WHEN until <= current_date THEN 'archived' ELSE 'active' END,
       CASE WHEN until <= current_date THEN 'expired' END,
       CASE WHEN until <= current_date THEN now() END, now(), now()
FROM snap
"""


def fill(url: str, subjects: int, records: int) -> None:
    engine = create_engine(url)
    provider = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_clients (id, type, name, created_at) "
                          "VALUES (:id, 'provider', 'bench provider', now())"), {"id": provider})
        conn.execute(text(SUBJECTS), {"subjects": subjects})
    step = 250_000
    for first in range(1, records + 1, step):
        with engine.begin() as conn:
            conn.execute(text(RECORDS), {"first": first, "last": min(first + step - 1, records),
                                         "subjects": subjects, "provider": provider})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        active = conn.execute(text(
            "SELECT count(*) FROM credit_records WHERE status = 'active'")).scalar()
    engine.dispose()
    print(f"  {active:,} of the records active")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=200_000)
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default="xinyi_bench_scores")
    parser.add_argument("--admin-url", default=os.environ.get(
        "XINYI_BENCH_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    started = time.perf_counter()
    url = fresh_database(args.admin_url, args.database)
    fill(url, args.subjects, args.records)
    print(f"filled {args.subjects:,} subjects and {args.records:,} records "
          f"in {time.perf_counter() - started:.0f} s")
    with tempfile.TemporaryDirectory(prefix="xinyi-bench-scores-") as tmp:
        env = {**os.environ, "XINYI_DATABASE_URL": url, "XINYI_INSTANCE_PATH": tmp,
               "XINYI_ENV": "development", "XINYI_LOG_LEVEL": "WARNING"}
        env.pop("XINYI_REDIS_URL", None)
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        walls = []
        for n in range(args.runs):
            began = time.perf_counter()
            done = subprocess.run([str(ROOT / ".venv/bin/xinyi"), "scores", "recompute"],
                                  env=env, capture_output=True, text=True, check=True)
            walls.append(time.perf_counter() - began)
            print(f"run {n + 1}: {done.stdout.strip()} (wall {walls[-1]:.1f} s with start-up)")
    print(f"median wall {statistics.median(walls):.1f} s, best {min(walls):.1f} s "
          f"(target < 60 s)")
    print(f"importer's path, recompute_subjects over every subject: {subset(url):.1f} s")


def subset(url: str) -> float:
    """``recompute_subjects`` (what the importer runs) for all subjects, from a temp table."""
    from datetime import UTC, datetime

    from sqlalchemy import Column, LargeBinary, MetaData, Table, select
    from sqlalchemy.orm import Session

    from xinyi.scoring.service import recompute_subjects
    from xinyi.subjects.models import Subject
    from xinyi.timeutil import china_today

    touched = Table("bench_touched", MetaData(), Column("bidx", LargeBinary),
                    prefixes=["TEMPORARY"])
    engine = create_engine(url)
    with engine.connect() as conn, Session(bind=conn) as session:
        touched.create(conn)
        conn.execute(touched.insert().from_select(["bidx"], select(Subject.bidx)))
        conn.exec_driver_sql("ANALYZE bench_touched")
        now = datetime.now(UTC)
        began = time.perf_counter()
        recompute_subjects(session, select(touched.c.bidx), now=now, today=china_today(now))
        session.commit()
        took = time.perf_counter() - began
    engine.dispose()
    return took


if __name__ == "__main__":
    main()
