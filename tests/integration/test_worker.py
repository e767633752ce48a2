"""`xinyi worker --once` runs every job against a real database; each job is idempotent."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import valid_id_number
from tests.integration.test_records import item, provider, push
from xinyi.uow import UnitOfWork
from xinyi.worker import JOBS, run_once


def test_jobs_do_due_work_once_and_then_nothing(app: Flask, client: FlaskClient) -> None:
    from xinyi.audit.service import Access, append
    from xinyi.subjects.models import Subject

    push(client, provider(app, client), item(valid_id_number(777), "r"))
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:  # one read of the citizen's data: the sealer seals it
        bidx = s.scalars(select(Subject.bidx)).one()
        append(s, Access(bidx, "staff", "s-1", "复核员", "review", "report.full", "异议复核"),
               now=datetime.now(UTC))
        s.commit()
    deps.clock = lambda: datetime.now(UTC) + timedelta(days=200)
    first = run_once(deps)
    assert [line.split(":")[0] for line in first] == [
        "purge_expired_logins", "expire_records", "seal_access_log",
        "purge_expired_credentials", "lapse_consent_requests", "benefit_session_sweeps",
        "record_commitment_breaches", "purge_idempotency_keys", "rescore_new_year",
        "flag_overdue_cases", "recompute_deadlines", "backfill_personal_keys",
        "dispatch_webhook_events", "purge_webhook_events", "build_exports",
    ] == [j.__name__ for j in JOBS]
    assert "expire_records: 1 archived" in first
    assert "seal_access_log: 1 sealed, tree head 1 signed" in first
    second = run_once(deps)
    assert all(set(re.findall(r"\d+", line)) <= {"0"} for line in second), second


def test_two_workers_sweeping_at_once_archive_each_record_once(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second worker starts its sweep while the first has archived a record but not yet
    committed: the record is archived once (one worker counts it, its archive time stays the
    first one's), not archived again over the first worker's work."""
    from xinyi.records import service
    from xinyi.records.models import CreditRecord
    from xinyi.scoring.models import CreditScore, ScoreChange
    from xinyi.subjects.models import Subject

    deps = app.extensions["xinyi"]
    if not deps.db.url.startswith("postgresql"):
        pytest.skip("SQLite has a single writer: two sweeps cannot interleave")
    engine = create_engine(deps.db.url, pool_size=4)
    bidx, provider_id = uuid.uuid4().bytes * 2, uuid.uuid4()
    past = date.today() - timedelta(days=400)
    first_flushed, release = threading.Event(), threading.Event()
    recompute = deps.rescore

    def slow_recompute(session: Session, *args: Any, **kwargs: Any) -> int:
        if threading.current_thread().name == "first":
            first_flushed.set()
            release.wait(timeout=5)  # archived and flushed, not committed yet
        return recompute(session, *args, **kwargs)

    counts: dict[str, int] = {}
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            with UnitOfWork(sessionmaker(engine)) as uow:
                counts[threading.current_thread().name] = service.archive_expired(uow.session,
                                                                                  deps)
                uow.commit()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO api_clients (id, type, name, created_at) "
                              "VALUES (:id, 'provider', 'p', now())"), {"id": provider_id})
        with Session(engine) as s:
            s.add(Subject(bidx=bidx, id_number_enc=b"x" * 40, first_seen_at=datetime.now(UTC)))
            s.flush()
            record = CreditRecord(
                subject_bidx=bidx, provider_id=provider_id, provider_ref="r-1",
                content_hash=b"h" * 32, catalogue_code="traffic.violation_minor",
                occurred_on=past, summary="测试记录", points=-5, display_months=3,
                display_until=past + timedelta(days=90))
            s.add(record)
            s.commit()
        monkeypatch.setattr(deps, "rescore", slow_recompute)
        first = threading.Thread(target=sweep, name="first")
        second = threading.Thread(target=sweep, name="second")
        first.start()
        assert first_flushed.wait(timeout=10)
        second.start()
        second.join(timeout=1)  # the second sweep either finishes or waits on the first
        release.set()
        first.join(timeout=30)
        second.join(timeout=30)
        assert not errors, errors
        assert counts == {"first": 1, "second": 0}
    finally:
        with engine.begin() as conn:
            conn.execute(delete(CreditScore).where(CreditScore.subject_bidx == bidx))
            conn.execute(delete(ScoreChange).where(ScoreChange.subject_bidx == bidx))
            conn.execute(delete(CreditRecord).where(CreditRecord.subject_bidx == bidx))
            conn.execute(delete(Subject).where(Subject.bidx == bidx))
            conn.execute(text("DELETE FROM api_clients WHERE id = :id"), {"id": provider_id})
        engine.dispose()


@pytest.mark.parametrize("interval", ["0", "-5"])
def test_worker_refuses_an_interval_that_would_spin_without_pause(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interval: str) -> None:
    from xinyi import worker
    from xinyi.cli import main

    started: list[int] = []
    monkeypatch.setattr(worker, "run_forever", lambda _deps, every: started.append(every))
    monkeypatch.setenv("XINYI_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("XINYI_DATABASE_URL", f"sqlite:///{tmp_path}/w.db")
    result = CliRunner().invoke(main, ["worker", "--interval", interval])
    assert result.exit_code == 2 and "--interval" in result.output, result.output
    assert started == []
