"""Webhook delivery test helpers: a real HTTP receiver on 127.0.0.1 in a thread, a fresh
migrated PostgreSQL database with committed data (the delivery loop runs threads and other
processes, which the rolled-back test transaction cannot serve), and row factories for
endpoints, events and deliveries.

Plain functions and context managers, like tests/factories.py.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select, text
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from tests.factories import SENSITIVE_VALUES, TEST_REDIS_URL
from tests.servers import _postgres_database
from xinyi.config import Settings, load_settings
from xinyi.deps import Deps
from xinyi.uow import UnitOfWork
from xinyi.webhooks.endpoints import SECRET_CONTEXT
from xinyi.webhooks.models import PartnerEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from xinyi.wiring import build_deps

TABLES = ("webhook_attempts", "webhook_deliveries", "webhook_events", "webhook_endpoints",
          "outbox_events")


def receiver_port() -> int:
    """A free port below the ephemeral range: a client connecting to a closed ephemeral port
    on 127.0.0.1 can be handed that very port as its own and connect to itself."""
    rng = secrets.SystemRandom()
    for _ in range(100):
        port = rng.randrange(20000, 30000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


Behaviour = Callable[[Request, int], tuple[int, dict[str, str], bytes]]


def _ok(_request: Request, _n: int) -> tuple[int, dict[str, str], bytes]:
    return 204, {}, b""


@dataclass
class Receiver:
    """Records every request; ``behaviour(request, n)`` answers it (``n``: how many requests
    this receiver had before). Counts requests in flight per webhook-id."""

    behaviour: Behaviour = _ok
    delay: float = 0.0
    port: int = field(default_factory=receiver_port)
    received: list[Received] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight_per_id: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        msg_id = request.headers.get("webhook-id", "")
        body = request.get_data()
        with self._lock:
            n = len(self.received)
            self.received.append(Received(dict(request.headers), body, time.monotonic()))
            self.in_flight[msg_id] += 1
            self.max_in_flight_per_id = max(self.max_in_flight_per_id, self.in_flight[msg_id])
            self.max_in_flight = max(self.max_in_flight, sum(self.in_flight.values()))
        try:
            if self.delay:
                time.sleep(self.delay)
            status, headers, payload = self.behaviour(request, n)
        finally:
            with self._lock:
                self.in_flight[msg_id] -= 1
        return Response(payload, status=status, headers=headers)(environ, start_response)

    def start(self) -> Receiver:
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        with self._lock:
            return [r.headers.get("Webhook-Id", "") for r in self.received]

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def settings_env(database_url: str, **extra: str) -> dict[str, str]:
    """A complete environment for `xinyi` processes and in-process settings alike, so a
    worker subprocess decrypts what the test encrypted."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINYI_")}
    env.update({
        "XINYI_ENV": "test", "XINYI_DATABASE_URL": database_url,
        "XINYI_REDIS_URL": TEST_REDIS_URL,
        "XINYI_DATA_KEYS": f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
        "XINYI_BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "XINYI_JWT_PRIVATE_KEY": pem, "XINYI_WEBHOOK_ALLOW_PRIVATE": "1",
        "XINYI_INSTANCE_PATH": os.environ.get("XINYI_INSTANCE_PATH", "instance/test"),
    })
    env.update(extra)
    return env


@dataclass
class DeliveryDb:
    url: str
    env: dict[str, str]
    settings: Settings
    deps: Deps

    def fresh_deps(self, **overrides: Any) -> Deps:
        deps = build_deps(self.settings.with_overrides(**overrides))
        return deps

    def truncate(self) -> None:
        with self.deps.db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))


@contextmanager
def delivery_database(suffix: str) -> Iterator[DeliveryDb]:
    from alembic import command

    from xinyi.cli import alembic_config

    with _postgres_database(suffix) as url:
        command.upgrade(alembic_config(url), "head")
        env = settings_env(url)
        settings = load_settings(env)
        deps = build_deps(settings)
        try:
            yield DeliveryDb(url, env, settings, deps)
        finally:
            deps.db.engine.dispose()


def new_secret() -> str:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    SENSITIVE_VALUES.add(secret)
    return secret


def make_partner(deps: Deps) -> uuid.UUID:
    from xinyi.auth.models import ApiClient

    with UnitOfWork(deps.db.sessions) as uow:
        client = ApiClient(type="partner", name=f"测试 {uuid.uuid4().hex[:6]}", kind="library")
        uow.session.add(client)
        uow.session.flush()
        uow.commit()
        return client.id


def make_endpoint(deps: Deps, partner_id: uuid.UUID, url: str, *, secret: str | None = None,
                  previous_secret: str | None = None, previous_until: datetime | None = None,
                  rate_limit_per_s: int = 1000, enabled: bool = True) -> tuple[uuid.UUID, str]:
    secret = secret or new_secret()
    with UnitOfWork(deps.db.sessions) as uow:
        endpoint = WebhookEndpoint(
            partner_id=partner_id, url=url, event_types=[], description="", enabled=enabled,
            rate_limit_per_s=rate_limit_per_s,
            secret_enc=deps.cipher.encrypt(secret, context=SECRET_CONTEXT),
            previous_secret_enc=(deps.cipher.encrypt(previous_secret, context=SECRET_CONTEXT)
                                 if previous_secret else None),
            previous_secret_until=previous_until)
        uow.session.add(endpoint)
        uow.session.flush()
        uow.commit()
        return endpoint.id, secret


def make_events(deps: Deps, partner_id: uuid.UUID, endpoint_ids: list[uuid.UUID], n: int, *,
                now: datetime | None = None, status: str = "pending",
                event_type: str = "webhook.test") -> list[uuid.UUID]:
    """``n`` events in the partner's feed (continuing its seq), each with one delivery per
    endpoint due at ``now`` (the deps' clock). Returns the event ids in seq order."""
    now = now or deps.clock()
    with UnitOfWork(deps.db.sessions) as uow:
        session = uow.session
        last = session.scalar(select(func.max(PartnerEvent.seq))
                              .where(PartnerEvent.partner_id == partner_id)) or 0
        events = [PartnerEvent(partner_id=partner_id, seq=last + i + 1, type=event_type,
                               version=1, payload={"n": last + i + 1}, created_at=now)
                  for i in range(n)]
        session.add_all(events)
        session.flush()
        session.add_all([WebhookDelivery(event_id=e.id, endpoint_id=ep, seq=e.seq,
                                         status=status, attempts=0, next_attempt_at=now,
                                         created_at=now)
                         for e in events for ep in endpoint_ids])
        uow.commit()
        return [e.id for e in events]


def statuses(deps: Deps, endpoint_id: uuid.UUID | None = None) -> Counter[str]:
    with deps.db.session() as s:
        query = select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        if endpoint_id is not None:
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        return Counter({status: n for status, n in s.execute(query).all()})


def attempts(deps: Deps, delivery_id: uuid.UUID | None = None) -> list[WebhookAttempt]:
    with deps.db.session() as s:
        query = select(WebhookAttempt).order_by(WebhookAttempt.number)
        if delivery_id is not None:
            query = query.where(WebhookAttempt.delivery_id == delivery_id)
        return list(s.scalars(query))


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(every)


class Clock:
    """A controllable clock for ``deps.clock``."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
