"""Shared test wiring: real PostgreSQL and Redis (and the embedded SQLite path), no mocks.

Integration tests run once per database backend. Each test gets an app whose sessions live
inside one outer transaction that is rolled back afterwards, and a flushed Redis database.
Every log record of the whole run is kept so the last test can prove no personal data leaked.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from xinyi.app import create_app
from xinyi.config import Settings
from xinyi.db import Database
from xinyi.deps import build_deps
from xinyi.uow import UnitOfWork

ROOT = Path(__file__).resolve().parents[1]
TEST_DATABASE_URL = os.environ.get(
    "XINYI_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("XINYI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# Every sensitive value a test hands the app; the final log scan looks for each one.
SENSITIVE_VALUES: set[str] = set()
CAPTURED_LOGS: list[str] = []


class _CaptureAll(logging.Handler):
    """Keeps each record as rendered *before* any redaction: code must not log PII at all."""

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.getMessage(), json.dumps(
            {k: str(v) for k, v in record.__dict__.items()
             if k not in ("msg", "args", "exc_info", "exc_text", "stack_info")},
            ensure_ascii=False)]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        CAPTURED_LOGS.append("\n".join(parts))


def pytest_configure(config: pytest.Config) -> None:
    handler = _CaptureAll(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The log scan must see every other test's logs: run it last.
    last = [i for i in items if "no_personal_data_in_logs" in i.nodeid]
    items[:] = [i for i in items if i not in last] + last


def make_settings(database_url: str, redis_url: str | None, **overrides: Any) -> Settings:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    base = Settings(
        env="test",
        database_url=database_url,
        redis_url=redis_url,
        data_keys={1: secrets.token_bytes(32)},
        data_key_current=1,
        blind_index_key=secrets.token_bytes(32),
        jwt_private_key_pem=pem,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        webhook_allow_private=True,
        log_level="INFO",
    )
    settings = dataclasses.replace(base, **overrides)
    settings.validate()
    return settings


def _migrate(url: str) -> None:
    from alembic import command

    from xinyi.cli import alembic_config

    command.upgrade(alembic_config(url), "head")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    db = Database(TEST_DATABASE_URL)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.engine.dispose()
    _migrate(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/xinyi.db"
    _migrate(url)
    return url


@pytest.fixture(scope="session", params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    url = request.getfixturevalue("postgres_url" if request.param == "postgresql"
                                  else "sqlite_url")
    db = Database(url)
    yield db
    db.engine.dispose()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


class BoundDatabase:
    """The app's Database, but every session joins one outer transaction that we roll back."""

    def __init__(self, database: Database, connection: Any) -> None:
        self.url = database.url
        self.engine = database.engine
        self.sessions = sessionmaker(bind=connection, expire_on_commit=False,
                                     join_transaction_mode="create_savepoint")
        self._connection = connection

    def session(self) -> Any:
        return self.sessions()

    def ping(self) -> None:
        self._connection.exec_driver_sql("SELECT 1")


@pytest.fixture
def settings(database: Database) -> Settings:
    return make_settings(database.url, TEST_REDIS_URL)


@pytest.fixture
def app(database: Database, settings: Settings, redis_client: redis.Redis) -> Iterator[Flask]:
    deps = build_deps(settings)
    deps.db.engine.dispose()
    with database.engine.connect() as connection:
        outer = connection.begin()
        deps.db = BoundDatabase(database, connection)  # type: ignore[assignment]
        application = create_app(settings, deps)
        application.config["TESTING"] = True
        yield application
        if outer.is_active:
            outer.rollback()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# ---- small factories: each test says what it depends on ---------------------------------

def valid_id_number(seed: int | None = None) -> str:
    """A valid ID number: fixed for a seed (under 10,000; region 110101), otherwise random
    and never equal to a seeded one (another region). Two random ones collide once in
    132,000 (one in 1,000 before: a test registering two citizens failed once in a while)."""
    from stdnum.cn import ric

    if seed is None:
        region = _RANDOM_REGIONS[secrets.randbelow(len(_RANDOM_REGIONS))]
        n = secrets.randbelow(21_000)  # the fields below repeat every 21,000 values of n
    else:
        region, n = "110101", seed
    body = f"{region}{1960 + n % 50:04d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    number = body + ric.calc_check_digit(body + "0")
    SENSITIVE_VALUES.add(number)
    return number


# Districts that existed for every birth year above (checked with xinyi.pii.IdNumber.parse).
_RANDOM_REGIONS = ("110102", "110105", "110108", "310104", "310105", "120101")


def random_phone() -> str:
    phone = f"13{secrets.randbelow(10)}{secrets.randbelow(10**8):08d}"
    SENSITIVE_VALUES.add(phone)
    return phone


PASSWORD = "correct-horse-42"


def register_citizen(client: FlaskClient, **overrides: str) -> dict[str, Any]:
    body = {"phone": random_phone(), "password": PASSWORD, "name": "测试公民",
            "id_number": valid_id_number()}
    body.update(overrides)
    resp = client.post("/v1/auth/register", json=body)
    assert resp.status_code == 201, resp.get_json()
    return {**body, "id": resp.get_json()["id"]}


def login(client: FlaskClient, phone: str, password: str = PASSWORD) -> dict[str, Any]:
    resp = client.post("/v1/auth/login", json={"phone": phone, "password": password})
    assert resp.status_code == 200, resp.get_json()
    tokens: dict[str, Any] = resp.get_json()
    SENSITIVE_VALUES.update([tokens["access_token"], tokens["refresh_token"]])
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def citizen_headers(client: FlaskClient) -> dict[str, str]:
    citizen = register_citizen(client)
    return bearer(login(client, citizen["phone"])["access_token"])


def staff_headers(app: Flask, client: FlaskClient, role: str) -> dict[str, str]:
    from xinyi.admin.service import create_staff

    deps = app.extensions["xinyi"]
    phone = random_phone()
    with UnitOfWork(deps.db.sessions) as uow:
        create_staff(uow.session, deps, phone=phone, password=PASSWORD, role=role)
        uow.commit()
    return bearer(login(client, phone)["access_token"])


def api_client_headers(client: FlaskClient, operator: dict[str, str], collection: str,
                       kind: str | None = "library") -> tuple[dict[str, str], dict[str, Any]]:
    body: dict[str, Any] = {"name": f"测试 {uuid.uuid4().hex[:6]}"}
    if collection == "partners":
        body["kind"] = kind
    resp = client.post(f"/v1/admin/{collection}", json=body, headers=operator)
    assert resp.status_code == 201, resp.get_json()
    created: dict[str, Any] = resp.get_json()
    SENSITIVE_VALUES.add(created["api_key"]["api_key"])
    return bearer(created["api_key"]["api_key"]), created


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
