"""The connection pool checks a pooled PostgreSQL connection before lending it, without a
round trip unless it sat idle: a connection the server has closed (restart, termination,
idle timeout) is replaced before a request can see it, and a busy server pays no ping."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from tests.conftest import TEST_DATABASE_URL
from xinyi import db as dbmod
from xinyi.db import make_engine


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    real = engine.dialect.do_ping

    def counted(dbapi_conn: Any) -> bool:
        seen.append(1)
        return bool(real(dbapi_conn))

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return seen


def _pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT pg_backend_pid()")) or 0)


def _terminate(pid: int) -> None:
    url = TEST_DATABASE_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # Terminated once the backend is gone (its FATAL message is then on our socket).
        for _ in range(100):
            if admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                             (pid,)).fetchone() is None:
                return
            time.sleep(0.02)
    raise AssertionError("the backend was not terminated")


def test_a_connection_the_server_closed_is_replaced_before_use(
        engine: Engine, pings: list[int]) -> None:
    first = _pid(engine)
    _terminate(first)
    # Without the check the pool would lend the dead connection and this would raise.
    second = _pid(engine)
    assert second != first
    assert pings == []  # recognised locally, not by a ping


def test_a_recently_used_connection_is_lent_without_a_ping(
        engine: Engine, pings: list[int]) -> None:
    pids = {_pid(engine) for _ in range(5)}
    assert len(pids) == 1  # the same pooled connection each time
    assert pings == []


def test_a_connection_idle_longer_than_the_limit_is_pinged(
        engine: Engine, pings: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    pid = _pid(engine)
    monkeypatch.setattr(dbmod, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _pid(engine) == pid
    assert pings == [1]


def test_a_connection_that_fails_its_ping_is_replaced_before_use(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = _pid(engine)
    monkeypatch.setattr(dbmod, "PING_AFTER_IDLE_SECONDS", 0.0)
    real, calls = engine.dialect.do_ping, []

    def first_fails(dbapi_conn: Any) -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise psycopg.OperationalError("no answer")
        return bool(real(dbapi_conn))

    monkeypatch.setattr(engine.dialect, "do_ping", first_fails)
    # The caller sees no error: the silent connection is dropped and a fresh one lent.
    assert _pid(engine) != pid
    assert len(calls) == 2
