"""The floors behind issue 4's verification target, measured in one run on this machine.

    .venv/bin/python scripts/bench_floors.py [--seconds 8] [--warmup 2] [--tries 3]

The target says: verification (with its durable access-log entry) ≥ 40 % of the same server's
``/healthz``. This script serves ``scripts/floors_app.py`` — bare Flask endpoints that do only
the unavoidable work of a verification, nothing else — under gunicorn exactly as ``xinyi
serve`` does (gthread, 2 workers × 4 threads) and loads each one with wrk (``apt-get install -y
wrk``) at 32 connections, the same generator and settings as ``scripts/bench_http.py``:

* Flask hello (the issue's "Flask hello under gunicorn");
* xinyi+'s own ``GET /healthz``, mounted in the same server (the target's denominator);
* + one Ed25519 JWT verification and one Redis GET (the issue's "≈ 0.51× of hello");
* + Redis ``SET NX`` and one single-row ``INSERT`` on PostgreSQL in autocommit mode (one
  round trip, durable when it returns);
* + one primary-key ``SELECT`` before the insert;
* the third line's work in a bare WSGI callable, without Flask;
* an issuance floor: verify the bearer token, two primary-key ``SELECT``, sign one EdDSA
  JWT, one ``INSERT``, one Redis ``SET`` (issue 4 asks for 1,000/s).

Each is printed as req/s, CPU per request and its ratios to hello and to the healthz. A real
verification must do at least the fourth line's work (and also authenticate the partner, find
the credential's holder, their stored score and list status, and extend the holder's hash
chain), so its ratio cannot exceed the fourth line's. Needs PostgreSQL (trust auth, user
postgres) at 127.0.0.1:5432 and Redis at 127.0.0.1:6379; creates and drops the database
``xinyi_bench_floors`` and uses Redis db 12 (flushed before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import jwt
import psycopg
import redis
from benchlib import (
    Load,
    Result,
    add_load_options,
    cpu_delta,
    cpu_snapshot,
    free_port,
    log,
    run_wrk,
    start_server,
    stop_server,
    until_balanced,
    worker_split,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ENDPOINTS = [
    ("GET /hello", "GET", "/hello"),
    ("GET /healthz of xinyi+ (same server)", "GET", "/xinyi/healthz"),
    ("POST /verify (+ Ed25519 verify, Redis GET)", "POST", "/verify"),
    ("POST /verify-write (+ SET NX, autocommit INSERT)", "POST", "/verify-write"),
    ("POST /verify-read-write (+ one SELECT)", "POST", "/verify-read-write"),
    ("POST /raw/verify-write (the same without Flask)", "POST", "/raw/verify-write"),
    ("POST /issue (issuance floor)", "POST", "/issue"),
]


def sample_token(key: Ed25519PrivateKey) -> str:
    """A credential-sized EdDSA JWT shaped like DESIGN §5 (``kid``, ``typ``, claims)."""
    now = datetime.now(UTC)
    claims = {"iss": "https://xinyi.example.gov.cn", "aud": "xinyi-partners",
              "sub": uuid.uuid4().hex, "jti": uuid.uuid4().hex,
              "iat": int(now.timestamp()), "exp": int((now + timedelta(hours=2)).timestamp()),
              "tier": "A", "ben": ["library.deposit_free", "bike.deposit_free"]}
    return jwt.encode(claims, key, algorithm="EdDSA",
                      headers={"kid": "0" * 43, "typ": "xinyi-credential+jwt"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_options(parser, seconds=8.0, warmup=2.0)
    parser.add_argument("--tries", type=int, default=3, help=(
        "measure again while one gunicorn worker did < 25%% of the work"))
    parser.add_argument("--database", default="xinyi_bench_floors")
    parser.add_argument("--redis-db", type=int, default=12)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk not found: apt-get install -y wrk")

    key = Ed25519PrivateKey.generate()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    token = sample_token(key)
    body = json.dumps({"credential": token, "benefit": "library.deposit_free"})
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{args.database}"')
    db_url = ADMIN_URL.rsplit("/", 1)[0] + "/" + args.database
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE floor_log (id uuid PRIMARY KEY, at timestamptz NOT NULL, "
                     "jti text NOT NULL)")
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    redis.Redis.from_url(redis_url).flushdb()

    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="xinyi-floors-"))
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    env = dict(os.environ, FLOORS_PUBLIC_KEY=public_pem, FLOORS_PRIVATE_KEY=private_pem,
               FLOORS_DATABASE_URL=db_url, FLOORS_REDIS_URL=redis_url, XINYI_ENV="development",
               XINYI_INSTANCE_PATH=str(tmp / "instance"),
               XINYI_DATABASE_URL=db_url.replace("postgresql://", "postgresql+psycopg://"),
               XINYI_REDIS_URL=redis_url,
               # as `xinyi serve` does with more than one worker
               PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"))
    (tmp / "metrics").mkdir()
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    server = start_server(
        [gunicorn, "--chdir", str(ROOT / "scripts"), "--bind", f"127.0.0.1:{port}",
         "--worker-class", "gthread", "--workers", "2",
         "--threads", str(args.server_threads),
         "--log-level", "warning", "floors_app:create()"],
        env, port, "/xinyi/healthz", tmp / "server.log")
    results: list[Result] = []

    def measure(name: str, load: Load) -> Result:
        before = cpu_snapshot(server.pid, args.database)
        raw = run_wrk(load, port, args.seconds, args.connections, args.threads, tmp)
        res = Result(name=name, cpu=cpu_delta(before, cpu_snapshot(
            server.pid, args.database)), **raw)
        log(f"{name}: {res.rps:,.0f} req/s, p99 {res.p99_ms:.1f} ms, non-2xx "
            f"{res.non2xx}, worker CPU split {worker_split(res.cpu)}")
        return res

    try:
        for name, method, path in ENDPOINTS:
            load = Load("static", path=path, method=method,
                        body=body if method == "POST" else None,
                        auth=f"Bearer {token}" if path == "/issue" else None)
            run_wrk(load, port, args.warmup, args.connections, args.threads, tmp)
            results.append(until_balanced(partial(measure, name, load), args.tries))
        with psycopg.connect(db_url) as conn:
            written = conn.execute("SELECT count(*) FROM floor_log").fetchone()
    finally:
        stop_server(server)

    hello, healthz = results[0].rps, results[1].rps
    print()
    print(f"floors of issue 4 — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
          f"wrk -t{args.threads} -c{args.connections}, gunicorn gthread 2 workers × "
          f"{args.server_threads} threads, "
          f"{args.seconds:g} s per endpoint")
    print()
    print("| endpoint | req/s | × hello | × xinyi+ healthz | p99 ms "
          "| CPU ms/req: server / pg / redis / wrk | non-2xx |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        k = 1000 / r.requests if r.requests else 0.0
        cpu = " / ".join(f"{r.cpu.get(x, 0) * k:.2f}"
                         for x in ("server", "postgres", "redis", "generator"))
        print(f"| {r.name} | {r.rps:,.0f} | {r.rps / hello:.2f} | {r.rps / healthz:.2f} "
              f"| {r.p99_ms:.1f} | {cpu} "
              f"| {r.non2xx + r.socket_errors} |")
    print()
    print(f"rows written: {written[0] if written else 0}")
    errors = sum(r.errors for r in results)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    redis.Redis.from_url(redis_url).flushdb()
    if errors == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"errors: see {tmp / 'server.log'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
