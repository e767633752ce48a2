"""An unexpected failure answers a bare 500 and logs what went wrong without what it was doing
it with: a failed statement's parameters or a driver message quoting a value never reach a log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.factories import SENSITIVE_VALUES, random_phone
from xinyi.db import Database
from xinyi.logs import ContextFilter

# The shape of a stored password (argon2id), the value the issue found in "unhandled error" logs.
PASSWORD_HASH = "$argon2id$v=19$m=1024,t=1,p=1$dGVzdHNhbHR0ZXN0$dGVzdGhhc2h0ZXN0aGFzaHRlc3Q"
MISSING_TABLE = "INSERT INTO no_such_table (password_hash, phone) VALUES (:hash, :phone)"
# PostgreSQL's own message quotes the value it could not cast: hiding parameters is not enough.
BAD_CAST = "SELECT CAST(:hash AS integer), CAST(:phone AS integer)"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[_Records]:
    handler = _Records()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def _rendered(record: logging.LogRecord) -> str:
    """Everything any formatter could print of the record, before redaction."""
    parts = [record.getMessage(), json.dumps({k: str(v) for k, v in vars(record).items()})]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def _fail_with(app: Flask, statement: str, phone: str) -> None:
    def fail() -> str:
        with app.extensions["xinyi"].db.session() as session:
            session.execute(text(statement), {"hash": PASSWORD_HASH, "phone": phone})
        return "unreachable"

    app.add_url_rule("/test-only/fail", "test_only_fail", fail)


@pytest.mark.parametrize("statement", [MISSING_TABLE, BAD_CAST])
def test_a_failed_statement_is_logged_by_type_and_request_id_only(
        app: Flask, client: FlaskClient, database: Database, records: _Records,
        statement: str) -> None:
    if statement == BAD_CAST and database.engine.dialect.name == "sqlite":
        pytest.skip("SQLite casts anything")
    SENSITIVE_VALUES.add(PASSWORD_HASH)
    phone = random_phone()
    _fail_with(app, statement, phone)
    resp = client.get("/test-only/fail")
    assert resp.status_code == 500 and resp.get_json()["code"] == "http_error"
    assert PASSWORD_HASH not in resp.text and phone not in resp.text
    [record] = [r for r in records.records if getattr(r, "event", None) == "unhandled"]
    logged = _rendered(record)
    assert PASSWORD_HASH not in logged and "$argon2" not in logged and phone not in logged
    assert record.request_id == resp.headers["X-Request-Id"]  # type: ignore[attr-defined]
    assert record.error_type.startswith("sqlalchemy.exc.")  # type: ignore[attr-defined]
    assert any("in fail" in frame for frame in record.frames)  # type: ignore[attr-defined]


def test_the_engine_hides_a_failed_statements_parameters(database: Database) -> None:
    phone = random_phone()
    with database.engine.connect() as conn, pytest.raises(DBAPIError) as failed:
        conn.execute(text(MISSING_TABLE), {"hash": PASSWORD_HASH, "phone": phone})
    assert "no_such_table" in str(failed.value)  # the statement stays, for diagnosis
    assert PASSWORD_HASH not in str(failed.value) and phone not in str(failed.value)
