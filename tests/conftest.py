"""Shared test wiring: real PostgreSQL and Redis (and the embedded SQLite path), no mocks.

Integration tests run once per database backend. Each test gets an app whose sessions live
inside one outer transaction that is rolled back afterwards, and a flushed Redis database.
Every log record of the whole run is kept so the last test can prove no personal data leaked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from tests.factories import CAPTURED_LOGS, TEST_DATABASE_URL, TEST_REDIS_URL, make_settings
from xinyi.app import create_app
from xinyi.config import Settings
from xinyi.db import Database
from xinyi.wiring import build_deps


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
