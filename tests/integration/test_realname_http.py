"""The http real-name verifier (实名核验) against a stub service on a local port: it answers
match or mismatch, retries what may pass, opens its breaker, fails closed, and logs neither
the ID number nor the name."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.factories import (
    CAPTURED_LOGS,
    TEST_REDIS_URL,
    count,
    make_settings,
    random_phone,
    valid_id_number,
)
from xinyi.auth.models import Account
from xinyi.citizens.models import Citizen
from xinyi.config import ConfigError, Settings
from xinyi.db import Database
from xinyi.pii import IdNumber
from xinyi.realname import CircuitBreaker, HttpRealNameVerifier, RealNameUnavailable

NAME = "欧阳娜娜"
API_KEY = "realname-key-5d1f"


@dataclass
class Stub:
    """A real-name service whose next answers the test sets: ``(status, body)`` or
    ``("sleep", seconds)``; once the script is used up it answers ``then``."""

    url: str = ""
    script: list[tuple[Any, Any]] = field(default_factory=list)
    then: tuple[Any, Any] = (200, {"result": "match"})
    seen: list[dict[str, Any]] = field(default_factory=list)

    def next(self) -> tuple[Any, Any]:
        return self.script.pop(0) if self.script else self.then


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            state.seen.append({"path": self.path, "headers": dict(self.headers),
                               "body": json.loads(raw)})
            what, value = state.next()
            if what == "sleep":
                time.sleep(value)
                what, value = 200, {"result": "match"}
            body = json.dumps(value).encode() if isinstance(value, dict) else value
            try:
                self.send_response(what)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1/realname/check?tenant=xy"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def verifier(stub: Stub, **options: Any) -> HttpRealNameVerifier:
    options.setdefault("sleep", lambda _seconds: None)
    return HttpRealNameVerifier(stub.url, API_KEY, **options)


def person() -> IdNumber:
    return IdNumber.parse(valid_id_number())


def test_a_match_is_true_and_the_request_is_as_documented(stub: Stub) -> None:
    who = person()
    assert verifier(stub).verify(who, NAME) is True
    [request] = stub.seen
    assert request["path"] == "/v1/realname/check?tenant=xy"
    assert request["body"] == {"id_number": who.value, "name": NAME}
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"


def test_a_mismatch_is_false_and_not_retried(stub: Stub) -> None:
    stub.then = (200, {"result": "mismatch"})
    assert verifier(stub).verify(person(), NAME) is False
    assert len(stub.seen) == 1


def test_a_timeout_is_a_failure_within_the_timeout(stub: Stub) -> None:
    stub.script = [("sleep", 2.0)]
    started = time.monotonic()
    with pytest.raises(RealNameUnavailable) as refused:
        verifier(stub, timeout_seconds=0.3, retries=0).verify(person(), NAME)
    assert time.monotonic() - started < 1.5
    assert refused.value.status == 503 and refused.value.code == "realname_verifier_unavailable"
    assert int(refused.value.headers["Retry-After"]) >= 1


def test_5xx_is_retried_with_backoff_until_an_answer(stub: Stub) -> None:
    stub.script = [(503, {"error": "busy"}), (502, b"<html>bad gateway</html>")]
    delays: list[float] = []
    check = verifier(stub, retries=2, sleep=delays.append)
    assert check.verify(person(), NAME) is True
    assert len(stub.seen) == 3 and delays == [0.2, 0.4]


def test_5xx_on_every_attempt_fails_closed(stub: Stub) -> None:
    stub.then = (500, {"error": "down"})
    with pytest.raises(RealNameUnavailable):
        verifier(stub, retries=2).verify(person(), NAME)
    assert len(stub.seen) == 3


@pytest.mark.parametrize("answer", [(401, {"error": "bad key"}), (302, b""),
                                    (200, {"result": "maybe"}), (200, b"not json"),
                                    (200, b"[1, 2]")])
def test_other_answers_fail_closed_without_retrying(stub: Stub, answer: tuple[Any, Any]) -> None:
    stub.then = answer
    with pytest.raises(RealNameUnavailable):
        verifier(stub, retries=2).verify(person(), NAME)
    assert len(stub.seen) == 1


def test_an_unreachable_service_fails_closed() -> None:
    dead = HttpRealNameVerifier("http://127.0.0.1:9/check", API_KEY, retries=1,
                                sleep=lambda _s: None)
    with pytest.raises(RealNameUnavailable):
        dead.verify(person(), NAME)


def test_the_breaker_opens_after_consecutive_failures_and_closes_after_a_success(
        stub: Stub) -> None:
    clock = Clock()
    check = verifier(stub, retries=0, breaker=CircuitBreaker(2, 30.0, clock=clock))
    stub.then = (503, {"error": "down"})
    for _ in range(2):
        with pytest.raises(RealNameUnavailable):
            check.verify(person(), NAME)
    assert check.breaker.state == "open" and len(stub.seen) == 2
    clock.now += 10
    with pytest.raises(RealNameUnavailable) as refused:
        check.verify(person(), NAME)
    assert len(stub.seen) == 2, "an open breaker does not call the service"
    assert refused.value.headers["Retry-After"] == "20"

    clock.now += 20  # half open: one trial, which fails and opens it again
    with pytest.raises(RealNameUnavailable):
        check.verify(person(), NAME)
    assert len(stub.seen) == 3 and check.breaker.state == "open"
    with pytest.raises(RealNameUnavailable):
        check.verify(person(), NAME)
    assert len(stub.seen) == 3

    clock.now += 30
    stub.then = (200, {"result": "match"})
    assert check.verify(person(), NAME) is True
    assert check.breaker.state == "closed"
    assert check.verify(person(), NAME) is True and len(stub.seen) == 5


def test_a_definite_mismatch_does_not_count_towards_the_breaker(stub: Stub) -> None:
    clock = Clock()
    check = verifier(stub, retries=0, breaker=CircuitBreaker(2, 30.0, clock=clock))
    stub.script = [(503, {}), (200, {"result": "mismatch"}), (503, {})]
    with pytest.raises(RealNameUnavailable):
        check.verify(person(), NAME)
    assert check.verify(person(), NAME) is False
    with pytest.raises(RealNameUnavailable):
        check.verify(person(), NAME)
    assert check.breaker.state == "closed"


def test_no_log_line_holds_the_id_number_the_name_or_the_key(
        stub: Stub, caplog: pytest.LogCaptureFixture) -> None:
    who = person()
    caplog.set_level(logging.DEBUG)
    first = len(CAPTURED_LOGS)
    clock = Clock()
    check = verifier(stub, retries=1, timeout_seconds=0.3,
                     breaker=CircuitBreaker(2, 30.0, clock=clock))
    stub.script = [(503, {"echo": who.value}), (200, {"result": "mismatch", "name": NAME}),
                   ("sleep", 1.0), (500, {"echo": NAME}), (401, {})]
    assert check.verify(who, NAME) is False
    for _ in range(3):  # timeout then 500, 401, then the open breaker
        with pytest.raises(RealNameUnavailable) as refused:
            check.verify(who, NAME)
        assert who.value not in str(refused.value.to_problem())
    logged = CAPTURED_LOGS[first:] + [r.getMessage() for r in caplog.records]
    assert any("realname_attempt_failed" in line for line in logged)
    assert any("realname_circuit_opened" in line for line in logged)
    for secret in (who.value, NAME, API_KEY, who.value[-6:]):
        assert not [line for line in logged if secret in line], secret
    assert API_KEY not in repr(check)


# --------------------------------------------------------------------------- settings


def test_the_http_verifier_is_configured_by_settings(stub: Stub) -> None:
    settings = make_settings("sqlite://", None, realname_verifier="http",
                             realname_url=stub.url, realname_api_key=API_KEY,
                             realname_timeout_seconds=1.5, realname_retries=1,
                             realname_breaker_failures=3, realname_breaker_seconds=12.0)
    assert API_KEY not in repr(settings)
    from xinyi.realname import make_verifier

    made = make_verifier(settings)
    assert isinstance(made, HttpRealNameVerifier)
    assert (made.timeout_seconds, made.retries) == (1.5, 1)
    assert (made.breaker.threshold, made.breaker.open_seconds) == (3, 12.0)


@pytest.mark.parametrize(("changes", "named"), [
    ({"realname_url": ""}, "XINYI_REALNAME_URL"),
    ({"realname_url": "ftp://realname.example.cn/check"}, "XINYI_REALNAME_URL"),
    ({"realname_url": "https://user:s3cret@realname.example.cn/"}, "XINYI_REALNAME_URL"),
    ({"realname_api_key": ""}, "XINYI_REALNAME_API_KEY"),
    ({"realname_timeout_seconds": 0.0}, "XINYI_REALNAME_TIMEOUT_SECONDS"),
    ({"realname_retries": 9}, "XINYI_REALNAME_RETRIES"),
    ({"realname_breaker_failures": 0}, "XINYI_REALNAME_BREAKER_FAILURES"),
    ({"env": "production", "realname_url": "http://realname.example.cn/check"}, "https"),
])
def test_bad_http_verifier_settings_are_refused_by_name(changes: dict[str, Any],
                                                        named: str) -> None:
    values = {"realname_verifier": "http", "realname_url": "https://realname.example.cn/check",
              "realname_api_key": "s3cret", **changes}
    with pytest.raises(ConfigError, match=named) as refused:
        make_settings("postgresql+psycopg://x@db/x", TEST_REDIS_URL, **values)
    assert "s3cret" not in str(refused.value)


# --------------------------------------------------------------------------- registration


@pytest.fixture
def settings(database: Database, stub: Stub) -> Settings:
    """The app of this module's registration tests asks the stub (conftest's `app` uses
    this `settings`)."""
    return make_settings(database.url, TEST_REDIS_URL, realname_verifier="http",
                         realname_url=stub.url, realname_api_key=API_KEY,
                         realname_timeout_seconds=0.5, realname_retries=1,
                         realname_breaker_failures=2, realname_breaker_seconds=60.0)


def register(client: FlaskClient) -> Any:
    return client.post("/v1/auth/register", json={
        "phone": random_phone(), "password": "correct-horse-42", "name": NAME,
        "id_number": valid_id_number()})


def test_registration_is_refused_with_503_when_the_verifier_is_down(
        app: Any, client: FlaskClient, stub: Stub) -> None:
    stub.then = (503, {"error": "maintenance"})
    before = (count(app, Account), count(app, Citizen))
    for _ in range(3):  # the third meets the open breaker
        resp = register(client)
        assert resp.status_code == 503 and resp.mimetype == "application/problem+json"
        assert resp.get_json()["code"] == "realname_verifier_unavailable"
        assert int(resp.headers["Retry-After"]) >= 1
    assert len(stub.seen) == 4  # two attempts each, then none
    assert (count(app, Account), count(app, Citizen)) == before


def test_registration_follows_the_verifiers_answer(app: Any, client: FlaskClient,
                                                   stub: Stub) -> None:
    stub.script = [(200, {"result": "mismatch"})]
    refused = register(client)
    assert refused.status_code == 422 and refused.get_json()["code"] == "realname_mismatch"
    assert register(client).status_code == 201
    assert stub.seen[-1]["body"]["name"] == NAME
