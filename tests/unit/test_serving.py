"""gunicorn's logger class keeps query strings and credentials out of its error and access logs
(tests/e2e/test_http_edges.py sees it do so in a real server)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from tests.factories import SENSITIVE_VALUES, random_phone
from xinyi.serving import RedactingLogger

TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1bml0In0.c2lnbmF0dXJlLXVuaXQtdGVzdA"


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter().format(record))


@pytest.fixture
def logger() -> Iterator[tuple[RedactingLogger, _Keep]]:
    SENSITIVE_VALUES.add(TOKEN)
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", '%(h)s "%(r)s" %(s)s q=%(q)s f=%(f)s %({authorization}i)s '
                                 '%({raw_uri}e)s')
    log = RedactingLogger(cfg)
    keep = _Keep()
    log.error_log.addHandler(keep)
    log.access_log.addHandler(keep)
    yield log, keep
    log.error_log.removeHandler(keep)
    log.access_log.removeHandler(keep)


def test_the_access_log_keeps_the_path_and_drops_query_and_credentials(
        logger: tuple[RedactingLogger, _Keep]) -> None:
    log, keep = logger
    phone = random_phone()
    query = f"access_token={TOKEN}&phone={phone}"
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/v1/me?{query}", "PATH_INFO": "/v1/me",
               "QUERY_STRING": query, "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.1",
               "HTTP_REFERER": f"https://app.example/?phone={phone}",
               "HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    req = SimpleNamespace(headers=[("AUTHORIZATION", f"Bearer {TOKEN}")])
    resp = SimpleNamespace(status="200 OK", headers=[], sent=2)
    log.access(resp, req, environ, timedelta(milliseconds=3))
    [line] = keep.lines
    assert '"GET /v1/me?[query] HTTP/1.1" 200' in line
    assert "q=[query] f=https://app.example/?[query] [redacted] /v1/me?[query]" in line
    assert TOKEN not in line and phone not in line and "eyJ" not in line


def test_the_error_log_redacts_messages_arguments_and_tracebacks(
        logger: tuple[RedactingLogger, _Keep]) -> None:
    log, keep = logger
    phone = random_phone()
    try:
        raise ValueError(f"while reading /v1/me?phone={phone}")
    except ValueError:
        log.exception("Error handling request %s %s", "GET", f"/v1/me?access_token={TOKEN}")
    log.warning(f"Invalid request from ip=10.0.0.1: Invalid HTTP request line: "
                f"'GET /v1/me?phone={phone} HTTP/1.1'")
    text = "\n".join(keep.lines)
    assert "Error handling request GET /v1/me?[query]" in text
    assert "ValueError: while reading /v1/me?[query]" in text
    assert "'GET /v1/me?[query]'" in text
    assert TOKEN not in text and phone not in text
