"""Benchmark the benefit-session sweeps on PostgreSQL against one bare UPDATE of the same rows.

    .venv/bin/python scripts/bench_sessions.py [--sessions 100000] [--runs 3]

Creates a fresh database ``xinyi_bench_sessions`` (dropped first if it exists), migrates it and
fills it with set-based SQL: one library partner, ``--sessions`` citizens (subjects), one
eligible verification and one session each, all past due, with their exposure held. Then,
``--runs`` times, in the same run and on the same rows:

* the floor: one bare ``UPDATE benefit_sessions SET state = 'overdue' … WHERE state = 'open'
  AND due_at <= now`` (rolled back, so the rows stay due);
* the overdue sweep (:func:`xinyi.benefits.sweeps.mark_overdue`, in its batches, each a unit
  of work: state, inbox notices with dedupe keys, outbox events), committed;
* the same pair for the default sweep (overdue 30 days → ``defaulted``: exposure released,
  notices, events) against a bare UPDATE to ``defaulted``.

Between runs the rows are put back (state, notices and events deleted, VACUUM ANALYZE). It
prints each time and the ratio sweep / bare UPDATE (the issue's bound: at most 3×). Never
touches any other database; drops its own at the end unless ``--keep-db``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from benchlib import fresh_database  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

FILL = [
    """INSERT INTO subjects (bidx, id_number_enc, first_seen_at)
       SELECT sha256(int4send(g)), '\\x01'::bytea, now()
       FROM generate_series(1, CAST(:n AS integer)) g""",
    """INSERT INTO verifications (id, partner_id, idempotency_key, credential_jti, subject_bidx,
                                  benefit_code, decision, response, created_at)
       SELECT md5('v' || g)::uuid, :partner, NULL, 'j' || g, sha256(int4send(g)),
              'library.deposit_free', 'eligible', '{}'::json, now() - interval '40 days'
       FROM generate_series(1, CAST(:n AS integer)) g""",
    """INSERT INTO benefit_sessions (id, verification_id, partner_id, subject_bidx, benefit_code,
              kind, state, amount_fen, waived_fen, charge_normally_fen, amount_owed_fen, due_at,
              original_due_at, reference, extended, created_at, updated_at)
       SELECT md5('s' || g)::uuid, md5('v' || g)::uuid, :partner, sha256(int4send(g)),
              'library.deposit_free', 'library', 'open', 8000, 5000, 3000, NULL,
              now() - interval '31 days', now() - interval '31 days', 'r' || g, false,
              now() - interval '40 days', now() - interval '40 days'
       FROM generate_series(1, CAST(:n AS integer)) g""",
    """INSERT INTO benefit_exposure (subject_bidx, open_fen, cap_fen, updated_at)
       SELECT sha256(int4send(g)), 5000, 100000, now()
       FROM generate_series(1, CAST(:n AS integer)) g""",
]
BARE_OVERDUE = """UPDATE benefit_sessions SET state = 'overdue', overdue_at = :now,
                  updated_at = :now WHERE state = 'open' AND due_at <= :now"""
BARE_DEFAULT = """UPDATE benefit_sessions SET state = 'defaulted', defaulted_at = :now,
                  closed_at = :now, amount_owed_fen = waived_fen, grace_until = :grace,
                  updated_at = :now WHERE state = 'overdue' AND due_at <= :cut"""
RESET = [
    "DELETE FROM notifications",
    "DELETE FROM outbox_events",
    """UPDATE benefit_sessions SET state = :state, overdue_at = NULL, defaulted_at = NULL,
              closed_at = NULL, grace_until = NULL, amount_owed_fen = NULL""",
    "UPDATE benefit_exposure SET open_fen = 5000",
]


def fill(url: str, n: int) -> None:
    engine = create_engine(url)
    partner = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_clients (id, type, name, kind, created_at) "
                          "VALUES (:id, 'partner', '基准图书馆', 'library', now())"),
                     {"id": partner})
        for stmt in FILL:
            conn.execute(text(stmt), {"n": n, "partner": partner})
    engine.dispose()


def vacuum(engine: Any) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def reset(engine: Any, state: str) -> None:
    with engine.begin() as conn:
        for stmt in RESET:
            conn.execute(text(stmt), {"state": state})
    vacuum(engine)


def bare(engine: Any, stmt: str, now: datetime) -> tuple[float, int]:
    with engine.connect() as conn:
        began = time.perf_counter()
        done = conn.execute(text(stmt), {"now": now, "grace": now + timedelta(days=7),
                                         "cut": now - timedelta(days=30)})
        took = time.perf_counter() - began
        conn.rollback()
    return took, int(done.rowcount)


def sweep(engine: Any, step: Any, now: datetime) -> tuple[float, int]:
    from xinyi.uow import run_in_unit

    deps: Any = types.SimpleNamespace(clock=lambda: now)
    sessions = sessionmaker(engine, expire_on_commit=False)
    total = 0
    began = time.perf_counter()
    while moved := run_in_unit(sessions, lambda s: step(s, deps)):
        total += moved
    return time.perf_counter() - began, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default="xinyi_bench_sessions")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--pg-batch", type=int, default=None, help=(
        "rows per batch of the sweeps (default: benefits.sweeps.PG_BATCH)"))
    parser.add_argument("--admin-url", default=os.environ.get(
        "XINYI_BENCH_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    from xinyi.benefits import sweeps

    batch = args.pg_batch or sweeps.PG_BATCH

    def overdue(s: Any, deps: Any) -> int:
        return sweeps.mark_overdue(s, deps, pg_batch=batch)

    def default(s: Any, deps: Any) -> int:
        return sweeps.default_unclosed(s, deps, pg_batch=batch)

    url = fresh_database(args.admin_url, args.database)
    began = time.perf_counter()
    fill(url, args.sessions)
    engine = create_engine(url)
    vacuum(engine)
    print(f"filled {args.sessions:,} due sessions in {time.perf_counter() - began:.0f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"{batch:,} rows per sweep batch")
    now = datetime.now(UTC)
    ratios: dict[str, list[float]] = {"overdue": [], "default": []}
    failed = False
    for run in range(1, args.runs + 1):
        reset(engine, "open")
        print(f"run {run}: load average {os.getloadavg()[0]:.1f}")
        floor, rows = bare(engine, BARE_OVERDUE, now)
        vacuum(engine)
        took, moved = sweep(engine, overdue, now)
        ratios["overdue"].append(took / floor)
        print(f"run {run} overdue: bare UPDATE {floor:.2f} s ({rows:,} rows), sweep "
              f"{took:.2f} s ({moved:,} sessions, notices and events) = {took / floor:.2f}×")
        reset(engine, "overdue")
        floor, rows = bare(engine, BARE_DEFAULT, now)
        vacuum(engine)
        took, moved = sweep(engine, default, now)
        ratios["default"].append(took / floor)
        print(f"run {run} default: bare UPDATE {floor:.2f} s ({rows:,} rows), sweep "
              f"{took:.2f} s ({moved:,} sessions, exposure, notices, events) = "
              f"{took / floor:.2f}×")
        failed |= moved != args.sessions or rows != args.sessions
    for name, values in ratios.items():
        median = statistics.median(values)
        print(f"{name} sweep / bare UPDATE: median {median:.2f}× (target ≤ 3×) — "
              f"{'met' if median <= 3 else 'missed'}")
    engine.dispose()
    if not args.keep_db and not failed:
        admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)'))
        admin.dispose()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
