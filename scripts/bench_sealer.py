"""Sealing lag of the access log (issue 16): entries written at a steady rate while the
worker's sealer runs, as in production.

    .venv/bin/python scripts/bench_sealer.py [--rate 1000] [--seconds 20] [--writers 8]
                                             [--prefill 100000] [--subjects 20000]

Creates a fresh PostgreSQL database (dropped first if it exists), migrates it, fills
``--subjects`` citizens and, unless ``--prefill 0``, an access log of ``--prefill`` entries
that it seals first (so the sealer works on a tree of that size, not an empty one). Then
``--writers`` processes insert entries at ``--rate`` per second in all for ``--seconds``,
each entry in a transaction of its own as the request path writes it (one INSERT, commit),
while this process runs :class:`xinyi.audit.sealer.SealLoop` exactly as ``xinyi worker``
does. It prints the lag of each entry written in the run (its seal's ``sealed_at`` minus its
``created_at``: written to sealed) as p50, p99 and max, the rate actually written and the
rate sealed, and checks the tree (``xinyi audit verify``'s checks) at the end.

The target (issue 16): keep up with twice the verification bench's rate (~1,000 entries/s
here) with lag p99 < 2 s. Never touches any other database.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from benchlib import fresh_database, log  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

SUBJECTS = """
INSERT INTO subjects (bidx, id_number_enc, first_seen_at)
SELECT sha256(int4send(g)), '\\x01'::bytea || sha256(int4send(-g)), now()
FROM generate_series(1, CAST(:subjects AS integer)) g
"""
PREFILL = """
INSERT INTO access_log (id, subject_bidx, actor_type, actor_id, actor_name, action, scope,
                        purpose, created_at)
SELECT gen_random_uuid(), sha256(int4send(1 + g % CAST(:subjects AS integer))), 'partner',
       'p-1', '市图书馆', 'verification', 'benefit:library.deposit_free',
       'verify library.deposit_free', now() - interval '1 day' + g * interval '1 millisecond'
FROM generate_series(1, CAST(:n AS integer)) g
"""
INSERT = ("INSERT INTO access_log (id, subject_bidx, actor_type, actor_id, actor_name, action, "
          "scope, purpose, created_at) VALUES (%s, %s, 'partner', 'p-1', '市图书馆', "
          "'verification', 'benefit:library.deposit_free', 'verify library.deposit_free', %s)")


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def writer(url: str, rate: float, seconds: float, subjects: int, start_at: float,
           seed: int) -> None:
    """Insert at ``rate`` per second, paced against the clock, one transaction each."""
    import hashlib

    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        time.sleep(max(0.0, start_at - time.time()))
        n, began = 0, time.monotonic()
        while (elapsed := time.monotonic() - began) < seconds:
            due = int(elapsed * rate) + 1
            while n < due:
                bidx = hashlib.sha256((1 + (seed * 7919 + n) % subjects).to_bytes(
                    4, "big", signed=True)).digest()
                conn.execute(INSERT, (uuid.uuid4(), bidx, datetime.now(UTC)))
                n += 1
            time.sleep(max(0.0, (n / rate) - (time.monotonic() - began)))


def deps_for(url: str, instance: str) -> Any:
    from xinyi.config import load_settings
    from xinyi.wiring import build_deps

    return build_deps(load_settings({"XINYI_ENV": "development", "XINYI_DATABASE_URL": url,
                                     "XINYI_INSTANCE_PATH": instance,
                                     "XINYI_LOG_LEVEL": "WARNING"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="entries per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--prefill", type=int, default=100_000)
    parser.add_argument("--database", default="xinyi_bench_sealer")
    parser.add_argument("--admin-url", default=os.environ.get(
        "XINYI_BENCH_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    from xinyi.audit.checkpoints import verify_all
    from xinyi.audit.sealer import SealLoop, seal_all

    url = fresh_database(args.admin_url, args.database)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(SUBJECTS), {"subjects": args.subjects})
        if args.prefill:
            conn.execute(text(PREFILL), {"subjects": args.subjects, "n": args.prefill})
    with tempfile.TemporaryDirectory() as instance:
        deps = deps_for(url, instance)
        if args.prefill:
            began = time.perf_counter()
            sealed, _ = seal_all(deps)
            took = time.perf_counter() - began
            log(f"prefill: {sealed:,} entries sealed in {took:.1f} s "
                f"({sealed / took:,.0f}/s, batches of 5,000)")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            run_from = conn.scalar(text("SELECT now()"))
        loop = SealLoop(deps)
        stop = threading.Event()
        sealing = threading.Thread(target=loop.run, args=(stop,), name="sealer")
        sealing.start()
        start_at = time.time() + 1.0
        per = args.rate / args.writers
        procs = [multiprocessing.Process(target=writer, args=(
            url, per, args.seconds, args.subjects, start_at, i)) for i in range(args.writers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        wrote_until = time.time()
        with engine.connect() as conn:  # wait until the sealer caught up (bounded)
            deadline = time.monotonic() + 60
            while conn.scalar(text(
                    "SELECT count(*) FROM access_log a WHERE NOT EXISTS (SELECT 1 FROM "
                    "access_log_seals s WHERE s.entry_id = a.id)")) and \
                    time.monotonic() < deadline:
                time.sleep(0.1)
                conn.rollback()
        stop.set()
        sealing.join(timeout=30)
        with engine.connect() as conn:
            row = conn.execute(text(
                "SELECT count(*), "
                "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM "
                "s.sealed_at - a.created_at)), "
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM "
                "s.sealed_at - a.created_at)), "
                "max(extract(epoch FROM s.sealed_at - a.created_at)), "
                "min(a.created_at), max(a.created_at), max(s.sealed_at) "
                "FROM access_log a JOIN access_log_seals s ON s.entry_id = a.id "
                "WHERE a.created_at >= :since"), {"since": run_from}).one()
            unsealed = conn.scalar(text(
                "SELECT count(*) FROM access_log a WHERE NOT EXISTS (SELECT 1 FROM "
                "access_log_seals s WHERE s.entry_id = a.id)"))
            heads = conn.scalar(text("SELECT count(*) FROM tree_heads"))
        count, p50, p99, worst, first, last, sealed_last = row
        written_s = (last - first).total_seconds() or 1.0
        sealed_s = (sealed_last - first).total_seconds() or 1.0
        print(f"entries written in the run: {count:,} over {written_s:.1f} s "
              f"({count / written_s:,.0f}/s, target {args.rate:,.0f}/s); "
              f"tree before the run: {args.prefill:,} leaves")
        print(f"sealing lag (written → sealed): p50 {float(p50) * 1000:,.0f} ms, "
              f"p99 {float(p99) * 1000:,.0f} ms, max {float(worst) * 1000:,.0f} ms "
              f"(target p99 < 2,000 ms)")
        print(f"sealed: {count / sealed_s:,.0f}/s over the run; {unsealed} left unsealed; "
              f"{heads} tree heads signed; writers ended {time.time() - wrote_until:.1f} s "
              "before this line")
        with deps.db.sessions() as session:
            began = time.perf_counter()
            report = verify_all(session, deps)
            took = time.perf_counter() - began
        print(f"audit verify: {report.entries_checked:,} entries, {report.heads_checked} heads "
              f"in {took:.1f} s: {report.problem or 'intact'}")
        deps.db.engine.dispose()
    engine.dispose()


if __name__ == "__main__":
    main()
