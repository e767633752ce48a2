"""Benchmark ``GET /v1/me/credit`` in-process (Flask test client) for a citizen with 200 records.

    .venv/bin/python scripts/bench_credit.py [--records 200] [--requests 500]

Creates a fresh PostgreSQL database (dropped first if it exists), migrates it, registers a
citizen and pushes the records through the provider API (all inside their display period, so
all 200 are scored and explained), then times the requests one after another and prints the
median, p90, p99 and the slowest. No HTTP server: this measures the app and the database.
Never touches any other database.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from benchlib import fresh_database  # noqa: E402
from stdnum.cn import ric  # noqa: E402

# Items that stay displayed for 12+ months, both polarities, a few with list entries.
CODES = ["blood.donation", "charity.donation", "utility.on_time", "traffic.safe_driver",
         "volunteer.star_rated", "commitment.broken", "public_order.penalty",
         "tourism.uncivil_conduct", "tax.grade_a", "library.good_reader"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--database", default="xinyi_bench_credit")
    parser.add_argument("--admin-url", default=os.environ.get(
        "XINYI_BENCH_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    url = fresh_database(args.admin_url, args.database)
    with tempfile.TemporaryDirectory(prefix="xinyi-bench-credit-") as tmp:
        os.environ.update({"XINYI_DATABASE_URL": url, "XINYI_INSTANCE_PATH": tmp,
                           "XINYI_ENV": "development", "XINYI_LOG_LEVEL": "WARNING"})
        os.environ.pop("XINYI_REDIS_URL", None)
        from xinyi.app import create_app
        from xinyi.auth.accounts import create_staff

        app = create_app()
        logging.getLogger().setLevel(logging.WARNING)
        deps = app.extensions["xinyi"]
        client = app.test_client()
        password = "bench-password-42"

        def login(phone: str) -> dict[str, str]:
            resp = client.post("/v1/auth/login", json={"phone": phone, "password": password})
            assert resp.status_code == 200, resp.get_json()
            return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}

        with deps.db.session() as session:
            create_staff(session, deps, phone="13900000001", password=password, role="operator")
        operator = login("13900000001")
        created = client.post("/v1/admin/providers", headers=operator, json={
            "name": "基准数据源", "catalogue_codes": ["*"]}).get_json()
        provider = {"Authorization": f"Bearer {created['api_key']['api_key']}"}

        body = "11010119850615123"
        id_number = body + ric.calc_check_digit(body + "0")
        resp = client.post("/v1/auth/register", json={
            "phone": "13900000002", "password": password, "name": "基准公民",
            "id_number": id_number})
        assert resp.status_code == 201, resp.get_json()
        rng = random.Random(3)
        items = [{"ref": f"c-{n}", "id_number": id_number, "catalogue_code": rng.choice(CODES),
                  "occurred_at": (date.today() - timedelta(days=1 + rng.randrange(80))).isoformat(),
                  "summary": f"基准记录 {n}"} for n in range(args.records)]
        results = client.post("/v1/provider/records:batch", json={"records": items},
                              headers=provider).get_json()["results"]
        assert all(r["status"] == "created" for r in results), results[:3]
        citizen = login("13900000002")

        for _ in range(20):  # warm up: connections, caches
            client.get("/v1/me/credit", headers=citizen)
        first = client.get("/v1/me/credit", headers=citizen).get_json()
        assert len(first["contributions"]) == args.records, len(first["contributions"])
        took = []
        for _ in range(args.requests):
            began = time.perf_counter()
            resp = client.get("/v1/me/credit", headers=citizen)
            took.append((time.perf_counter() - began) * 1000)
            assert resp.status_code == 200
    took.sort()
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"GET /v1/me/credit, {args.records} records, {args.requests} requests: "
          f"median {statistics.median(took):.1f} ms, p90 {took[int(len(took) * 0.9)]:.1f} ms, "
          f"p99 {took[int(len(took) * 0.99)]:.1f} ms, max {took[-1]:.1f} ms "
          f"(target: median < 20 ms); score {first['score']}")


if __name__ == "__main__":
    main()
