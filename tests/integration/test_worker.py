"""`xinyi worker --once` runs every job against a real database; each job is idempotent."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import valid_id_number
from tests.integration.test_records import item, provider, push
from xinyi.worker import JOBS, run_once


def test_jobs_do_due_work_once_and_then_nothing(app: Flask, client: FlaskClient) -> None:
    push(client, provider(app, client), item(valid_id_number(777), "r"))
    deps = app.extensions["xinyi"]
    deps.clock = lambda: datetime.now(UTC) + timedelta(days=200)
    first = run_once(deps)
    assert [line.split(":")[0] for line in first] == [job.__name__ for job in JOBS]
    assert "expire_records: 1 archived" in first
    second = run_once(deps)
    assert all(set(re.findall(r"\d+", line)) <= {"0"} for line in second), second
