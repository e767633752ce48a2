"""Benchmark ``xinyi import-records`` on PostgreSQL: rows per second and peak memory.

    .venv/bin/python scripts/bench_import.py [--rows 1000000] [--people 200000] [--rerun]

Generates a CSV of realistic valid rows (real region codes and check digits, ~1 in 5 people
recurring five times, a mix of catalogue items including black- and red-list ones, some
already past display) into a temporary directory, creates a fresh database (dropped first if it
exists), migrates it, creates a provider, then runs the import in a subprocess and reports wall
time, rows/s and the child's peak RSS. ``--rerun`` imports the same file a second time
(restartability: nothing new is created). Never touches any other database.

``--floor`` then measures what the database alone can do with the imported rows, with no
importer at all: the ``credit_records`` rows are dumped (binary ``COPY TO``) and loaded back
with ``COPY FROM`` into an empty copy of the table (same columns, checks, four indexes and
three foreign keys), once over one connection, once split over two connections in parallel,
and once over one connection without the foreign keys (only to size them). No importer can
be faster than the first two; it also has to parse and validate the file, write subjects,
list entries and events.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from benchlib import fresh_database  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from stdnum.cn import ric  # noqa: E402
from stdnum.exceptions import ValidationError  # noqa: E402

# Real 6-digit region codes (districts of large cities); validity per birth year is checked.
REGIONS = ["110101", "110102", "110105", "110106", "110108", "120101", "120103", "310101",
           "310104", "310105", "310106", "310107", "310110", "320102", "320104", "330102",
           "330105", "330106", "340102", "350102", "370102", "370202", "410102", "420102",
           "420106", "430102", "440103", "440104", "440106", "440304", "440305", "500103",
           "510104", "510107", "610102", "610103"]
# (catalogue code, weight): mostly minor items, a few serious (black list) and red-list ones.
ITEMS = [("traffic.violation_minor", 22), ("traffic.pedestrian_violation", 8),
         ("utility.unpaid_bill", 8), ("library.overdue_default", 5), ("bike.default", 6),
         ("transport.fare_evasion", 5), ("environment.waste_sorting", 4),
         ("blood.donation", 8), ("charity.donation", 6), ("utility.on_time", 6),
         ("traffic.safe_driver", 6), ("volunteer.star_rated", 4), ("commitment.broken", 3),
         ("public_order.penalty", 2), ("court.dishonest_debtor", 1), ("telecom.fraud", 0.5),
         ("volunteer.model", 1), ("redlist.moral_model", 0.5), ("tax.grade_a", 2)]
SUMMARIES = ["{d}在{p}路口闯红灯，已处罚", "{d}水费逾期未缴，经催告仍未缴纳", "{d}在{p}献血400毫升",
             "{d}向{p}慈善会捐款", "{d}借阅图书逾期未还（{p}分馆）", "{d}乘坐地铁{p}号线逃票",
             "{d}未按规定分类投放生活垃圾（{p}社区）", "{d}法院认定为失信被执行人，案号（{p}）"]
PLACES = ["人民", "解放", "中山", "建设", "和平", "胜利", "长江", "黄河", "1", "2", "3", "4"]
OCCUPATIONS = ["teacher", "doctor", "nurse", "engineer", "accountant", "other"]


def people(count: int, rng: random.Random) -> list[str]:
    valid: dict[tuple[str, int], bool] = {}
    out: list[str] = []
    while len(out) < count:
        region = rng.choice(REGIONS)
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
        key = (region, born.year)
        if key not in valid:
            try:
                ric.get_birth_place(region + born.strftime("%Y%m%d") + "0000")
                valid[key] = True
            except ValidationError:
                valid[key] = False
        if not valid[key]:
            continue
        body = f"{region}{born:%Y%m%d}{rng.randrange(1000):03d}"
        out.append(body + ric.calc_check_digit(body + "0"))
    return out


def generate(path: Path, rows: int, distinct: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    ids = people(distinct, rng)
    codes, weights = zip(*ITEMS, strict=True)
    today = date.today()
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["ref", "id_number", "catalogue_code", "occurred_at", "summary",
                      "occupation"])
        for n in range(rows):
            occurred = today - timedelta(days=rng.randrange(1, 1100))
            text_ = rng.choice(SUMMARIES).format(d=occurred.isoformat(), p=rng.choice(PLACES))
            out.writerow([f"B{n:09d}", ids[n % distinct] if n < distinct else rng.choice(ids),
                          rng.choices(codes, weights)[0], occurred.isoformat(), text_,
                          rng.choice(OCCUPATIONS) if rng.random() < 0.2 else ""])


def create_provider(url: str) -> uuid.UUID:
    provider = uuid.uuid4()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_clients (id, type, name, created_at) "
                          "VALUES (:id, 'provider', 'bench provider', now())"), {"id": provider})
        conn.execute(text("INSERT INTO provider_catalogue_grants (client_id, catalogue_code, "
                          "granted_at) VALUES (:id, '*', now())"), {"id": provider})
    engine.dispose()
    return provider


def backend_cpu(url: str, app_name: str, stop: threading.Event, seen: dict[str, float]
                ) -> None:
    """Poll the import's PostgreSQL backend (same host only) for its CPU seconds so far."""
    engine = create_engine(url, pool_size=1)
    tick = os.sysconf("SC_CLK_TCK")
    with engine.connect() as conn:
        while not stop.wait(0.25):
            pid = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name "
                                    "= :name"), {"name": app_name}).scalar()
            conn.rollback()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                seen["pg"] = (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                continue
    engine.dispose()


def run_import(env: dict[str, str], url: str, csv_path: Path, provider: uuid.UUID,
               workdir: Path, batch: int) -> dict[str, Any]:
    """Wall seconds, CPU seconds (importer; its PostgreSQL backend when local), peak RSS of
    the importer process alone (``wait4``) and its summary line."""
    out, err = workdir / "stdout.txt", workdir / "stderr.txt"
    app_name = f"xinyi-bench-{uuid.uuid4().hex[:8]}"
    seen: dict[str, float] = {}
    stop = threading.Event()
    poller = threading.Thread(target=backend_cpu, args=(url, app_name, stop, seen))
    poller.start()
    started = time.perf_counter()
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/xinyi"), "import-records", str(csv_path), "--provider",
             str(provider), "--reject-file", str(workdir / "rejects.csv"), "--batch-size",
             str(batch)],
            env={**env, "XINYI_DATABASE_URL": f"{url}?application_name={app_name}"},
            stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stop.set()
    poller.join()
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"import failed:\n{err.read_text()}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "pg_cpu": seen.get("pg"),
            "rss_mb": usage.ru_maxrss / 1024, "summary": out.read_text().strip()}


def _backend_seconds(conn: Any) -> float:
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_floor(url: str, workdir: Path) -> None:
    """``COPY FROM`` of the imported ``credit_records`` into an empty copy of the table."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        total = conn.execute("SELECT count(*) FROM credit_records").fetchone()[0]
        half = total // 2
        parts = {"all": "", "first": f"LIMIT {half}", "second": f"OFFSET {half}"}
        for name, clause in parts.items():
            with (workdir / f"floor-{name}.bin").open("wb") as f, conn.cursor().copy(
                    f"COPY (SELECT * FROM credit_records ORDER BY id {clause}) "
                    "TO STDOUT (FORMAT binary)") as copy:
                for chunk in copy:
                    f.write(chunk)
        foreign_keys = [row[0] for row in conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'credit_records'::regclass AND contype = 'f'")]

    def fresh_table(with_fks: bool) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS floor_records")
            conn.execute("CREATE TABLE floor_records (LIKE credit_records INCLUDING ALL)")
            for fk in foreign_keys if with_fks else []:
                conn.execute(f"ALTER TABLE floor_records ADD {fk}")
            conn.execute("CHECKPOINT")

    def load(part: str, out: dict[str, float]) -> None:
        with psycopg.connect(dsn) as conn:
            before = _backend_seconds(conn)
            with (workdir / f"floor-{part}.bin").open("rb") as f, conn.cursor().copy(
                    "COPY floor_records FROM STDIN (FORMAT binary)") as copy:
                while data := f.read(1 << 20):
                    copy.write(data)
            conn.commit()
            out[part] = _backend_seconds(conn) - before

    print(f"database floor: COPY FROM of the {total:,} imported credit_records rows into an "
          "empty copy of the table (no importer)")
    for label, with_fks, part_names in [
            ("one connection, with the 3 foreign keys", True, ["all"]),
            ("two connections in parallel, with the foreign keys", True, ["first", "second"]),
            ("one connection, without the foreign keys (sizing only)", False, ["all"])]:
        fresh_table(with_fks)
        cpu: dict[str, float] = {}
        threads = [threading.Thread(target=load, args=(p, cpu)) for p in part_names]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        print(f"  {label}: {wall:.1f} s, {total / wall:,.0f} rows/s; backend CPU "
              f"{sum(cpu.values()):.1f} s ({1e6 * sum(cpu.values()) / total:.0f} µs/row)")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE floor_records")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--database", default="xinyi_bench_import")
    parser.add_argument("--admin-url", default=os.environ.get(
        "XINYI_BENCH_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--rerun", action="store_true", help="import the same file again")
    parser.add_argument("--floor", action="store_true", help=(
        "then time COPY FROM of the imported rows into an empty copy of credit_records"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="xinyi-bench-import-") as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "records.csv"
        started = time.perf_counter()
        generate(csv_path, args.rows, args.people)
        size = csv_path.stat().st_size / 2**20
        print(f"generated {args.rows:,} rows, {args.people:,} people, {size:.0f} MiB "
              f"in {time.perf_counter() - started:.0f} s")
        url = fresh_database(args.admin_url, args.database)
        provider = create_provider(url)
        env = {**os.environ, "XINYI_INSTANCE_PATH": str(workdir), "XINYI_ENV": "development",
               "XINYI_LOG_LEVEL": "WARNING"}
        env.pop("XINYI_REDIS_URL", None)
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        runs = ["first import", "same file again"] if args.rerun else ["first import"]
        for label in runs:
            run = run_import(env, url, csv_path, provider, workdir, args.batch_size)
            print(f"{label}: {run['summary']}")
            pg = f", its PostgreSQL backend {run['pg_cpu']:.1f} s" if run["pg_cpu"] else ""
            print(f"  wall {run['wall']:.1f} s (process start included): "
                  f"{args.rows / run['wall']:,.0f} rows/s; peak RSS {run['rss_mb']:.0f} MB; "
                  f"CPU: importer {run['cpu']:.1f} s{pg}")
        if args.floor:
            database_floor(url, workdir)


if __name__ == "__main__":
    main()
