"""A killed Redis: every endpoint that needs it answers 503 and writes nothing, then recovers.

The test runs a ``redis-server`` of its own on a free port (the shared test Redis must stay
up for everyone else), kills it in the middle of the test and starts it again on that port.
Each refusal is one log line without a traceback, and is quick: a dead store must not hold a
request (and a gunicorn worker) for seconds of retries.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import (
    PASSWORD,
    SENSITIVE_VALUES,
    api_client_headers,
    bearer,
    count,
    login,
    make_settings,
    random_phone,
    register_citizen,
    staff_headers,
    valid_id_number,
)
from xinyi.audit.models import AccessLogEntry
from xinyi.auth.models import Account, AuthSession
from xinyi.config import Settings
from xinyi.credentials.models import Credential, Verification
from xinyi.db import Database

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="needs redis-server on PATH")


class OwnRedis:
    """A throwaway ``redis-server`` without persistence on a port of its own."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def settings(database: Database, own_redis: OwnRedis) -> Settings:
    """Overrides conftest's: the app of this module talks to the Redis the test kills."""
    return make_settings(database.url, own_redis.url)


def _issue(client: FlaskClient, headers: dict[str, str]) -> dict[str, Any]:
    resp = client.post("/v1/me/credentials", json={"count": 1}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    [item] = resp.get_json()["items"]
    SENSITIVE_VALUES.update([item["qr_payload"], item["short_code"]])
    return dict(item)


def _verify(client: FlaskClient, partner: dict[str, str], credential: str) -> Any:
    return client.post("/v1/partner/verifications",
                       json={"credential": credential, "benefit": "library.deposit_free"},
                       headers=partner)


def _rows(app: Flask) -> dict[str, int]:
    return {model.__name__: count(app, model)
            for model in (Account, AuthSession, Credential, Verification, AccessLogEntry)}


def _refused_quickly_with_one_line(caplog: pytest.LogCaptureFixture, send: Any) -> Any:
    caplog.clear()
    started = time.monotonic()
    resp = send()
    elapsed = time.monotonic() - started
    assert resp.status_code == 503, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["code"] == "service_unavailable"
    assert int(resp.headers["Retry-After"]) > 0
    assert elapsed < 1.0, f"a dead Redis held the request for {elapsed:.2f} s"
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert all(r.exc_info is None and not r.exc_text for r in caplog.records)
    return resp


def test_redis_down_answers_503_writes_nothing_and_recovers(
        app: Flask, client: FlaskClient, own_redis: OwnRedis,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    partner, _ = api_client_headers(client, staff_headers(app, client, "operator"), "partners")
    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    assert _verify(client, partner, _issue(client, me)["qr_payload"]).status_code == 200
    by_qr, by_code = _issue(client, me), _issue(client, me)

    own_redis.kill()
    before = _rows(app)
    _refused_quickly_with_one_line(caplog, lambda: client.post(
        "/v1/auth/login", json={"phone": person["phone"], "password": PASSWORD}))
    _refused_quickly_with_one_line(caplog, lambda: client.post(
        "/v1/me/credentials", json={"count": 3}, headers=me))
    _refused_quickly_with_one_line(caplog, lambda: _verify(client, partner, by_qr["qr_payload"]))
    _refused_quickly_with_one_line(caplog, lambda: _verify(client, partner,
                                                           by_code["short_code"]))
    _refused_quickly_with_one_line(caplog, lambda: client.post("/v1/auth/register", json={
        "phone": random_phone(), "password": PASSWORD, "name": "李四",
        "id_number": valid_id_number()}))
    assert _rows(app) == before

    own_redis.start()  # empty: what the dead one held (the short codes) is gone with it
    assert login(client, person["phone"])["access_token"]
    assert _verify(client, partner, by_qr["qr_payload"]).status_code == 200
    assert _verify(client, partner, _issue(client, me)["short_code"]).status_code == 200


def test_the_ports_fail_closed_and_fast(own_redis: OwnRedis) -> None:
    """What every caller relies on, login's and registration's rate limits included: no
    Redis is no permission, never unlimited attempts."""
    from xinyi.auth.ratelimit import RateLimiter
    from xinyi.errors import ServiceUnavailable
    from xinyi.kv import RedisKeyValue

    store, limiter = RedisKeyValue(own_redis.url), RateLimiter(own_redis.url)
    limiter.hit("5/minute", "outage")
    assert store.set("outage", b"1", ttl=60) and store.get("outage") == b"1"
    own_redis.kill()
    calls = [lambda: store.get("outage"), lambda: store.set("outage", b"2", ttl=60),
             lambda: store.set_many([("outage", b"2", 60)]), lambda: store.delete("outage"),
             store.ping, lambda: limiter.hit("5/minute", "outage"),
             lambda: limiter.clear("5/minute", "outage")]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as refused:
            call()
        assert time.monotonic() - started < 0.5
        assert int(refused.value.headers["Retry-After"]) > 0


def test_statistics_are_answered_while_redis_is_down(
        app: Flask, client: FlaskClient, own_redis: OwnRedis) -> None:
    """The statistics' cache is only a cache: without Redis they are computed and answered,
    and a population set meanwhile is committed (the old cache entry dies with its TTL)."""
    operator = staff_headers(app, client, "operator")
    register_citizen(client)
    cached = client.get("/v1/admin/stats", headers=operator).get_json()
    own_redis.kill()
    down = client.get("/v1/admin/stats", headers=operator)
    assert down.status_code == 200, down.get_json()
    assert down.get_json()["citizens_covered"] == cached["citizens_covered"] == 1
    put = client.put("/v1/admin/districts/110101", headers=operator,
                     json={"name": "东城区", "resident_population": 10})
    assert put.status_code == 200, put.get_json()
    districts = client.get("/v1/admin/stats?refresh=true", headers=operator).get_json()[
        "coverage"]["districts"]
    assert {"code": "110101", "name": "东城区", "resident_population": 10, "scored": 0,
            "coverage": 0.0, "meets_target": False} in districts
