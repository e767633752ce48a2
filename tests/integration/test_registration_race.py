"""Concurrent registrations of one phone or one ID number: one wins, the others get the same
409 as a sequential duplicate (the account, citizen and subject writes share one guard)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import sessionmaker

from tests.factories import PASSWORD, random_phone, recording_sender, valid_id_number
from xinyi.auth.models import Account
from xinyi.citizens.models import Citizen
from xinyi.citizens.service import register
from xinyi.errors import Conflict
from xinyi.scoring.models import CreditScore, ScoreChange
from xinyi.subjects.models import PersonalKey, Subject
from xinyi.uow import UnitOfWork


@pytest.fixture
def committed_engine(app: Flask) -> Iterator[Engine]:
    """The race needs separate, committing connections; what they commit is removed after."""
    deps = app.extensions["xinyi"]
    if not deps.db.url.startswith("postgresql"):
        pytest.skip("SQLite has a single writer: registrations cannot race")
    yield deps.db.engine


def _race(app: Flask, engine: Engine, bodies: list[dict[str, str]]) -> list[str]:
    deps = app.extensions["xinyi"]
    sessions = sessionmaker(engine, expire_on_commit=False)
    start = threading.Barrier(len(bodies))
    outcomes: list[str] = []
    lock = threading.Lock()

    def contender(body: dict[str, str]) -> None:
        with UnitOfWork(sessions) as uow:
            start.wait(timeout=10)
            try:
                register(uow.session, deps, password=PASSWORD, name="测试公民",
                         client_address="race", **body)
                uow.commit()
                outcome = "answered"
            except Conflict as exc:
                outcome = exc.code
            except Exception as exc:  # pragma: no cover - the failure this test is for
                outcome = type(exc).__name__
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=contender, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return sorted(outcomes)


def _remove(app: Flask, engine: Engine, bodies: list[dict[str, str]]) -> tuple[int, int]:
    """Delete what the winner committed; returns the (accounts, citizens) that were there."""
    deps = app.extensions["xinyi"]
    phones = [deps.bidx(b["phone"], kind="phone") for b in bodies]
    subjects = [deps.bidx(b["id_number"], kind="id_number") for b in bodies]
    with engine.begin() as conn:
        ids = list(conn.scalars(select(Account.id).where(Account.phone_bidx.in_(phones))))
        citizens = conn.scalar(select(func.count()).select_from(Citizen)
                               .where(Citizen.account_id.in_(ids))) or 0
        conn.execute(delete(CreditScore).where(CreditScore.subject_bidx.in_(subjects)))
        conn.execute(delete(ScoreChange).where(ScoreChange.subject_bidx.in_(subjects)))
        conn.execute(delete(Citizen).where(Citizen.account_id.in_(ids)))
        conn.execute(delete(PersonalKey).where(PersonalKey.subject_bidx.in_(subjects)))
        conn.execute(delete(Subject).where(Subject.bidx.in_(subjects)))
        conn.execute(delete(Account).where(Account.id.in_(ids)))
    return len(ids), int(citizens)


def test_one_phone_registered_at_once_by_six(app: Flask, committed_engine: Engine) -> None:
    phone = random_phone()
    bodies = [{"phone": phone, "id_number": valid_id_number()} for _ in range(6)]
    try:
        # Every contender gets a new account's answer (a phone in use is never revealed),
        # one account is made, and the phone's owner is told five times.
        sent = recording_sender(app)
        assert _race(app, committed_engine, bodies) == ["answered"] * 6
        assert len(sent) == 5
    finally:
        assert _remove(app, committed_engine, bodies) == (1, 1)


def test_one_id_number_registered_at_once_by_six(app: Flask, committed_engine: Engine) -> None:
    id_number = valid_id_number()
    bodies = [{"phone": random_phone(), "id_number": id_number} for _ in range(6)]
    try:
        assert _race(app, committed_engine, bodies) == ["answered"] + ["id_number_taken"] * 5
    finally:
        assert _remove(app, committed_engine, bodies) == (1, 1)
