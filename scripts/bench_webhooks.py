"""Webhook delivery rate: one `xinyi worker` process against a bare loop, in one run.

    .venv/bin/python scripts/bench_webhooks.py [--events 10000] [--endpoints 8]

The floor: a bare loop that POSTs the same signed bodies, with the same HTTP client
(``xinyi.webhooks.sending.HttpSender``, httpx) and the same concurrency (``webhook_concurrency``
threads, at most ``webhook_in_flight_per_endpoint`` per endpoint), to the same local receiver
(a separate process answering 204). It does no database work at all. Then one worker process
delivers the same number of deliveries (spread over ``--endpoints`` endpoints whose rate limit
is raised to 1000/s) from PostgreSQL: lease (``FOR UPDATE SKIP LOCKED``), sign, send, record
the attempt, mark it delivered. Printed: both rates, their ratio (target ≥ 0.60) and the
worker's absolute rate (figure to beat: 300/s).

The second figure (``--figure latency``, or ``both``, the default): the median latency of
``POST /v1/me/consent-requests/{id}/approve`` over HTTP against a live ``xinyi serve`` (one
gunicorn worker), for a partner with no webhook endpoint (the floor) and for a partner with an
endpoint subscribed to ``consent.granted``, alternating between the two for each citizen, while
one ``xinyi worker`` dispatches and delivers to a local receiver. The approval writes its outbox
event in its own transaction either way; the endpoint decides whether the worker then sends it.
Printed: both medians (and p90), their ratio (target <= 1.10).

Needs PostgreSQL (trust, user postgres) at 127.0.0.1:5432 and Redis at 127.0.0.1:6379;
creates and drops the database ``xinyi_bench_webhooks`` and uses Redis db 13.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from xinyi.config import load_settings  # noqa: E402
from xinyi.db import make_engine  # noqa: E402
from xinyi.uow import UnitOfWork  # noqa: E402
from xinyi.webhooks.endpoints import SECRET_CONTEXT  # noqa: E402
from xinyi.webhooks.feed import message_body, message_id  # noqa: E402
from xinyi.webhooks.models import (  # noqa: E402
    PartnerEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from xinyi.webhooks.sending import HttpSender, signed_headers  # noqa: E402
from xinyi.wiring import build_deps  # noqa: E402

BASE = "postgresql+psycopg://postgres@127.0.0.1:5432"
DB_NAME = "xinyi_bench_webhooks"
REDIS = "redis://127.0.0.1:6379/13"
XINYI = str(Path(sys.executable).with_name("xinyi"))
CITIZENS = 10
WARM_UP = 10  # approvals of each kind not counted

RECEIVER = textwrap.dedent("""
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
""")


def _env(url: str) -> dict[str, str]:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINYI_")}
    env.update({"XINYI_ENV": "development", "XINYI_DATABASE_URL": url, "XINYI_REDIS_URL": REDIS,
                "XINYI_DATA_KEYS": f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
                "XINYI_BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                "XINYI_JWT_PRIVATE_KEY": pem, "XINYI_WEBHOOK_ALLOW_PRIVATE": "1",
                "XINYI_LOG_LEVEL": "WARNING",
                "PYTHONPATH": f"{ROOT / 'backend'}:{env.get('PYTHONPATH', '')}"})
    return env


def _database() -> str:
    admin = make_engine(f"{BASE}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    return f"{BASE}/{DB_NAME}"


def _drop() -> None:
    admin = make_engine(f"{BASE}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
    admin.dispose()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _id_numbers(n: int) -> list[str]:
    """``n`` distinct valid resident ID numbers (region 110101, made-up birth dates)."""
    from stdnum.cn import ric

    found = []
    for i in range(n):
        birth = date(1970, 1, 1) + timedelta(days=i // 500)
        base = f"110101{birth:%Y%m%d}{i % 500 + 100:03d}"
        found.append(base + ric.calc_check_digit(base + "0"))  # it drops the last digit
    return found


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def _p90_ms(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] * 1000


def consent_latency(approvals: int) -> tuple[float, float, float, float]:
    """Median and p90 (ms) of approving, without and with a subscribed endpoint."""
    import requests

    url = _database()
    env = _env(url)
    subprocess.run([XINYI, "db", "upgrade"], env=env, check=True, capture_output=True)
    deps = build_deps(load_settings(env))
    redis.Redis.from_url(REDIS).flushdb()  # the bench's own db: rate limits start afresh
    port, hook_port = _free_port(), _free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(hook_port)])
    log_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    with (log_dir / "bench_webhooks_server.log").open("wb") as log:
        server = subprocess.Popen([XINYI, "serve", "--port", str(port), "--workers", "1"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=log)
    worker: subprocess.Popen[bytes] | None = None
    base = f"http://127.0.0.1:{port}"
    http = requests.Session()
    try:
        for _ in range(150):
            try:
                if http.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit("the server did not become ready")
        operator_phone = "13900000001"
        subprocess.run([XINYI, "staff", "create", "--phone", operator_phone, "--password",
                        "operator-pass-1", "--role", "operator"], env=env, check=True,
                       capture_output=True)

        def login(phone: str, password: str) -> dict[str, str]:
            answer = http.post(f"{base}/v1/auth/login",
                               json={"phone": phone, "password": password})
            answer.raise_for_status()
            return {"Authorization": f"Bearer {answer.json()['access_token']}"}

        operator = login(operator_phone, "operator-pass-1")
        # Ten citizens (logins are rate limited per address) and a pair of partners for every
        # ten approvals: one without an endpoint, one with an endpoint for consent.granted.
        pairs: list[tuple[tuple[uuid.UUID, dict[str, str]], ...]] = []
        for k in range(-(-approvals // CITIZENS)):
            made = []
            for name in (f"无订阅馆{k}", f"订阅馆{k}"):
                answer = http.post(f"{base}/v1/admin/partners", headers=operator,
                                   json={"name": name, "kind": "library"})
                answer.raise_for_status()
                made.append((uuid.UUID(answer.json()["id"]), {
                    "Authorization": f"Bearer {answer.json()['api_key']['api_key']}"}))
            http.post(f"{base}/v1/partner/webhook-endpoints", headers=made[1][1], json={
                "url": f"http://127.0.0.1:{hook_port}/hook",
                "event_types": ["consent.granted"]}).raise_for_status()
            pairs.append(tuple(made))

        from xinyi.citizens.service import register
        from xinyi.pii import IdNumber
        from xinyi.subjects.service import ensure_subject, remember

        citizens = []
        for i, idn in enumerate(_id_numbers(CITIZENS)):
            phone = f"137{i:08d}"
            # Registered in-process (the route allows ten sign-ups an hour per address);
            # everything measured below goes over HTTP.
            with UnitOfWork(deps.db.sessions) as uow:
                register(uow.session, deps, phone=phone, password="citizen-pass-1",
                         name="测试公民", id_number=idn, client_address=f"203.0.113.{i + 1}")
                uow.commit()
            with deps.db.session() as session:  # what a credential scan would have recorded
                bidx = ensure_subject(session, deps, IdNumber.parse(idn), deps.clock())
                names = {pid: remember(session, deps, pid, bidx)
                         for pair in pairs for pid, _h in pair}
                session.commit()
            citizens.append((login(phone, "citizen-pass-1"), names))

        with (log_dir / "bench_webhooks_worker.log").open("wb") as log:
            worker = subprocess.Popen([XINYI, "worker", "--interval", "3600"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=log)
        time.sleep(3)
        timings: tuple[list[float], list[float]] = ([], [])
        n = 0
        for pair in pairs:
            for me, names in citizens:
                if n >= approvals:
                    break
                order = (0, 1) if n % 2 == 0 else (1, 0)  # alternate who goes first
                for which in order:
                    partner_id, partner = pair[which]
                    asked = http.post(f"{base}/v1/partner/consent-requests", headers=partner,
                                      json={"subject": names[partner_id],
                                            "scope": "report.summary",
                                            "purpose": "免押金借阅资格核验", "expires_in": 86400})
                    asked.raise_for_status()
                    started = time.perf_counter()
                    approved = http.post(
                        f"{base}/v1/me/consent-requests/{asked.json()['id']}/approve",
                        headers=me)
                    elapsed = time.perf_counter() - started
                    if approved.status_code != 201:
                        raise SystemExit(f"approve answered {approved.status_code}")
                    if n >= WARM_UP:
                        timings[which].append(elapsed)
                n += 1
        with deps.db.session() as session:
            delivered = session.scalar(select(func.count()).select_from(WebhookDelivery).where(
                WebhookDelivery.status == "delivered")) or 0
        print(f"(the worker had delivered {delivered} consent.granted webhooks meanwhile)")
    finally:
        for proc in (worker, server, receiver):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
        deps.db.engine.dispose()
        _drop()
    plain, hooked = timings
    return _median_ms(plain), _p90_ms(plain), _median_ms(hooked), _p90_ms(hooked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--endpoints", type=int, default=8)
    parser.add_argument("--approvals", type=int, default=200,
                        help="citizens, each approving one request of each partner")
    parser.add_argument("--figure", choices=("rate", "latency", "both"), default="both")
    args = parser.parse_args()
    if args.figure != "latency":
        delivery_rate(args)
    if args.figure != "rate":
        plain, plain90, hooked, hooked90 = consent_latency(args.approvals)
        print(f"consent approval, no endpoint (floor): median {plain:6.1f} ms, p90 "
              f"{plain90:6.1f} ms  ({args.approvals - WARM_UP} approvals of each)")
        print(f"consent approval, subscribed endpoint: median {hooked:6.1f} ms, p90 "
              f"{hooked90:6.1f} ms")
        print(f"ratio with/without: {hooked / plain:.2f}  (target <= 1.10)")


def delivery_rate(args: argparse.Namespace) -> None:
    url = _database()
    env = _env(url)
    subprocess.run([XINYI, "db", "upgrade"], env=env, check=True, capture_output=True)
    settings = load_settings(env)
    deps = build_deps(settings)
    port = _free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    worker: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(0.5)
        hook = f"http://127.0.0.1:{port}/hook"
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        from xinyi.auth.models import ApiClient

        with UnitOfWork(deps.db.sessions) as uow:
            partner = ApiClient(type="partner", name="bench", kind="library")
            uow.session.add(partner)
            uow.session.flush()
            endpoints = [WebhookEndpoint(
                partner_id=partner.id, url=hook, event_types=[], description="",
                rate_limit_per_s=1000, enabled=True,
                secret_enc=deps.cipher.encrypt(secret, context=SECRET_CONTEXT))
                for _ in range(args.endpoints)]
            uow.session.add_all(endpoints)
            uow.session.flush()
            partner_id, endpoint_ids = partner.id, [e.id for e in endpoints]
            uow.commit()

        # -- the floor: the bare loop ----------------------------------------------------
        concurrency = settings.webhook_concurrency
        sender = HttpSender(allow_private=True, require_https=False,
                            max_connections_per_host=settings.webhook_in_flight_per_endpoint)
        samples = [PartnerEvent(id=uuid.uuid4(), partner_id=partner_id, seq=i + 1,
                                type="webhook.test", version=1,
                                payload={"endpoint_id": str(endpoint_ids[0])},
                                created_at=datetime.now(UTC)) for i in range(args.events)]
        # The client pools per host; the worker's endpoints share one host here, so the floor
        # gets the same per-host connection limit the worker has.

        failures: list[str] = []

        def bare(event: PartnerEvent) -> bool:
            body = message_body(event)
            headers = signed_headers([secret], message_id(event.id), datetime.now(UTC), body)
            outcome = sender.send(hook, headers, body)
            if not outcome.ok:
                failures.append(f"{outcome.status_code} {outcome.error}")
            return outcome.ok

        for e in samples[:50]:
            bare(e)  # warm up connections
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            ok = sum(pool.map(bare, samples))
        del ok  # failures are listed below
        floor_s = time.perf_counter() - started
        sender.close()
        if failures:
            print(f"bare loop: {len(failures)} failed ({sorted(set(failures))})")
        floor_rate = args.events / floor_s

        # -- one worker process -----------------------------------------------------------
        with (Path(os.environ.get("TMPDIR", "/tmp")) / "bench_webhooks_worker.log").open(
                "wb") as log:
            worker = subprocess.Popen([XINYI, "worker", "--interval", "3600"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=log)
        time.sleep(3)  # booted and idle

        def enqueue(count: int, first_seq: int) -> None:
            now = datetime.now(UTC)
            with UnitOfWork(deps.db.sessions) as uow:
                events = [PartnerEvent(id=uuid.uuid4(), partner_id=partner_id,
                                       seq=first_seq + i, type="webhook.test", version=1,
                                       payload={"endpoint_id": str(endpoint_ids[0])},
                                       created_at=now) for i in range(count)]
                uow.session.add_all(events)
                uow.session.flush()
                uow.session.add_all([WebhookDelivery(
                    event_id=e.id, endpoint_id=endpoint_ids[i % len(endpoint_ids)], seq=e.seq,
                    status="pending", attempts=0, next_attempt_at=now, created_at=now)
                    for i, e in enumerate(events)])
                uow.commit()

        def wait_delivered(total: int) -> None:
            while True:
                with deps.db.session() as s:
                    done = s.scalar(select(func.count()).select_from(WebhookDelivery).where(
                        WebhookDelivery.status == "delivered")) or 0
                if done >= total:
                    return
                if worker.poll() is not None:
                    raise SystemExit("the worker exited")
                time.sleep(0.05)

        # Warmed up as the floor is (its first 50 sends are not timed): the worker opens its
        # connections to the receiver and the database on a first batch of 50 deliveries,
        # then goes idle again; the timed batch includes its noticing the new rows.
        warm = 50
        enqueue(warm, args.events + 1)
        wait_delivered(warm)
        enqueue(args.events, 1)
        started = time.perf_counter()
        wait_delivered(warm + args.events)
        worker_s = time.perf_counter() - started
        worker_rate = args.events / worker_s
        with deps.db.session() as s:  # a failed attempt is retried 5 s later: say so
            failed_attempts = s.scalar(select(func.count()).select_from(WebhookAttempt).where(
                WebhookAttempt.error.is_not(None))) or 0
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        receiver.terminate()
        receiver.wait(timeout=10)
        deps.db.engine.dispose()
        _drop()
    print(f"bare loop (floor): {floor_rate:8.0f} POST/s  ({args.events} in {floor_s:.2f} s, "
          f"{concurrency} threads)")
    print(f"one worker:        {worker_rate:8.0f} deliveries/s  ({args.events} in "
          f"{worker_s:.2f} s, {args.endpoints} endpoints, {failed_attempts} failed attempts)")
    print(f"ratio worker/floor: {worker_rate / floor_rate:.2f}  (target >= 0.60); "
          f"absolute {worker_rate:.0f}/s (figure to beat: 300/s)")


if __name__ == "__main__":
    main()
