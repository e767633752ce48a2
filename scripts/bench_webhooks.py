"""Webhook delivery rate: one `xinyi worker` process against a bare loop, in one run.

    .venv/bin/python scripts/bench_webhooks.py [--events 3000] [--endpoints 8]

The floor: a bare loop that POSTs the same signed bodies, with the same HTTP client
(``xinyi.webhooks.sending.HttpSender``, httpx) and the same concurrency (``webhook_concurrency``
threads, at most ``webhook_in_flight_per_endpoint`` per endpoint), to the same local receiver
(a separate process answering 204). It does no database work at all. Then one worker process
delivers the same number of deliveries (spread over ``--endpoints`` endpoints whose rate limit
is raised to 1000/s) from PostgreSQL: lease (``FOR UPDATE SKIP LOCKED``), sign, send, record
the attempt, mark it delivered. Printed: both rates, their ratio (target ≥ 0.60) and the
worker's absolute rate (figure to beat: 300/s).

Needs PostgreSQL (trust, user postgres) at 127.0.0.1:5432 and Redis at 127.0.0.1:6379;
creates and drops the database ``xinyi_bench_webhooks`` and uses Redis db 13.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

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
from xinyi.webhooks.models import PartnerEvent, WebhookDelivery, WebhookEndpoint  # noqa: E402
from xinyi.webhooks.sending import HttpSender, signed_headers  # noqa: E402
from xinyi.wiring import build_deps  # noqa: E402

BASE = "postgresql+psycopg://postgres@127.0.0.1:5432"
DB_NAME = "xinyi_bench_webhooks"
REDIS = "redis://127.0.0.1:6379/13"
XINYI = str(Path(sys.executable).with_name("xinyi"))

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--endpoints", type=int, default=8)
    args = parser.parse_args()

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
        now = datetime.now(UTC)
        with UnitOfWork(deps.db.sessions) as uow:
            events = [PartnerEvent(id=uuid.uuid4(), partner_id=partner_id, seq=i + 1,
                                   type="webhook.test", version=1,
                                   payload={"endpoint_id": str(endpoint_ids[0])},
                                   created_at=now) for i in range(args.events)]
            uow.session.add_all(events)
            uow.session.flush()
            uow.session.add_all([WebhookDelivery(
                event_id=e.id, endpoint_id=endpoint_ids[i % len(endpoint_ids)],
                status="pending", attempts=0, next_attempt_at=now, created_at=now)
                for i, e in enumerate(events)])
            uow.commit()
        started = time.perf_counter()
        while True:
            with deps.db.session() as s:
                done = s.scalar(select(func.count()).select_from(WebhookDelivery).where(
                    WebhookDelivery.status == "delivered")) or 0
            if done >= args.events:
                break
            if worker.poll() is not None:
                raise SystemExit("the worker exited")
            time.sleep(0.05)
        worker_s = time.perf_counter() - started
        worker_rate = args.events / worker_s
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
          f"{worker_s:.2f} s, {args.endpoints} endpoints)")
    print(f"ratio worker/floor: {worker_rate / floor_rate:.2f}  (target >= 0.60); "
          f"absolute {worker_rate:.0f}/s (figure to beat: 300/s)")


if __name__ == "__main__":
    main()
