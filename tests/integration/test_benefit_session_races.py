"""Benefit sessions under concurrency, on PostgreSQL with separate committing connections:
parallel opens by several partners never pass the citizen's exposure cap; parallel closes of
one session write once; parallel retries under one Idempotency-Key open one session."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from xinyi.auth.models import ApiClient
from xinyi.auth.principal import Principal
from xinyi.benefits.models import BenefitSession, Exposure
from xinyi.benefits.service import close_session, open_session
from xinyi.credentials.models import Verification
from xinyi.errors import DomainError
from xinyi.idempotency import IdempotentRequest
from xinyi.notifications.models import Notification
from xinyi.outbox.models import OutboxEvent
from xinyi.subjects.models import Subject
from xinyi.uow import UnitOfWork

CAP_A = 100_000  # the default exposure cap of tier A


class Committed:
    """A citizen, partners and their eligible verifications, committed for real (the race
    needs other connections to see them); everything is deleted afterwards."""

    def __init__(self, engine: Engine, partners: int, *, limit: int) -> None:
        self.engine = engine
        self.bidx = os.urandom(32)
        self.now = datetime.now(UTC)
        self.partners = [uuid.uuid4() for _ in range(partners)]
        self.verifications = [uuid.uuid4() for _ in range(partners)]
        with engine.begin() as conn:
            conn.execute(insert(Subject).values(bidx=self.bidx, id_number_enc=b"x",
                                                first_seen_at=self.now))
            conn.execute(insert(ApiClient), [
                {"id": p, "type": "partner", "name": f"race {i}", "kind": "library",
                 "created_at": self.now} for i, p in enumerate(self.partners)])
            conn.execute(insert(Verification), [
                {"id": v, "partner_id": p, "idempotency_key": None,
                 "credential_jti": uuid.uuid4().hex, "subject_bidx": self.bidx,
                 "benefit_code": "library.deposit_free", "decision": "eligible",
                 "created_at": self.now,
                 "response": {"tier": "A", "decision": "eligible",
                              "benefit": {"code": "library.deposit_free",
                                          "limits": {"deposit_waived_fen": limit}}}}
                for p, v in zip(self.partners, self.verifications, strict=True)])

    def principal(self, i: int) -> Principal:
        return Principal("partner", self.partners[i], client_kind="library",
                         client_name=f"race {i}")

    def remove(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(OutboxEvent).where(OutboxEvent.partner_id.in_(self.partners)))
            conn.execute(delete(IdempotentRequest).where(
                IdempotentRequest.owner_id.in_(self.partners)))
            conn.execute(delete(Notification).where(Notification.subject_bidx == self.bidx))
            conn.execute(delete(BenefitSession).where(BenefitSession.subject_bidx == self.bidx))
            conn.execute(delete(Exposure).where(Exposure.subject_bidx == self.bidx))
            conn.execute(delete(Verification).where(Verification.subject_bidx == self.bidx))
            conn.execute(delete(ApiClient).where(ApiClient.id.in_(self.partners)))
            conn.execute(delete(Subject).where(Subject.bidx == self.bidx))

    def scalar(self, stmt: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.scalar(stmt)


@pytest.fixture
def engine(app: Flask) -> Engine:
    deps = app.extensions["xinyi"]
    if not deps.db.url.startswith("postgresql"):
        pytest.skip("SQLite has a single writer: sessions cannot race")
    real: Engine = deps.db.engine
    return real


@pytest.fixture
def world(engine: Engine) -> Iterator[Callable[..., Committed]]:
    made: list[Committed] = []

    def make(partners: int, *, limit: int) -> Committed:
        made.append(Committed(engine, partners, limit=limit))
        return made[-1]

    yield make
    for w in made:
        w.remove()


def race(engine: Engine, calls: list[Callable[[Session], Any]]) -> list[Any]:
    """Run every call at once, each in its own committing unit; each outcome is the call's
    answer or the refusal's code (any other exception is kept, to fail the test)."""
    sessions = sessionmaker(engine, expire_on_commit=False)
    start = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        with UnitOfWork(sessions) as uow:
            start.wait(timeout=10)
            try:
                outcomes[i] = calls[i](uow.session)
                uow.commit()
            except DomainError as exc:
                outcomes[i] = exc.code
            except Exception as exc:  # pragma: no cover - what this test is for
                outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def test_parallel_opens_by_many_partners_never_pass_the_cap(app: Flask, engine: Engine,
                                                            world: Any) -> None:
    deps = app.extensions["xinyi"]
    w = world(8, limit=30_000)
    due = w.now + timedelta(days=7)

    def opener(i: int) -> Callable[[Session], Any]:
        return lambda s: open_session(s, deps, w.principal(i),
                                      verification_id=w.verifications[i], amount_fen=30_000,
                                      due_at=due, reference=f"race-{i}")

    outcomes = race(engine, [opener(i) for i in range(8)])
    assert all(hasattr(o, "waived_fen") for o in outcomes), outcomes  # none refused
    waived = sorted(o.waived_fen for o in outcomes)
    assert sum(waived) == CAP_A  # 30000 × 3 + 10000, and nothing for the rest
    assert waived == [0, 0, 0, 0, 10_000, 30_000, 30_000, 30_000]
    assert all(o.waived_fen + o.charge_normally_fen == 30_000 for o in outcomes)
    assert w.scalar(select(Exposure.open_fen).where(Exposure.subject_bidx == w.bidx)) == CAP_A
    stored = w.scalar(select(func.sum(BenefitSession.waived_fen))
                      .where(BenefitSession.subject_bidx == w.bidx))
    assert stored == CAP_A


def test_parallel_closes_of_one_session_write_once(app: Flask, engine: Engine,
                                                   world: Any) -> None:
    deps = app.extensions["xinyi"]
    w = world(1, limit=30_000)
    partner = w.principal(0)
    [opened] = race(engine, [lambda s: open_session(
        s, deps, partner, verification_id=w.verifications[0], amount_fen=20_000,
        due_at=w.now + timedelta(days=3), reference="one")])
    assert opened.waived_fen == 20_000

    def closer(i: int) -> Callable[[Session], Any]:
        outcome, owed = ("fulfilled", 0) if i % 2 else ("defaulted", 500)
        return lambda s: close_session(s, deps, partner, opened.id, outcome=outcome,
                                       amount_owed_fen=owed)

    outcomes = race(engine, [closer(i) for i in range(6)])
    answered = [o for o in outcomes if hasattr(o, "state")]
    assert len(answered) == 1, outcomes
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["benefit_session_closed"] * 5
    assert w.scalar(select(Exposure.open_fen).where(Exposure.subject_bidx == w.bidx)) == 0
    assert w.scalar(select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.partner_id == partner.id,
        OutboxEvent.topic == "benefit_session.closed")) == 1
    assert w.scalar(select(BenefitSession.state).where(
        BenefitSession.id == opened.id)) == answered[0].state


def test_parallel_retries_under_one_idempotency_key_open_one_session(
        app: Flask, engine: Engine, world: Any) -> None:
    deps = app.extensions["xinyi"]
    w = world(1, limit=30_000)
    due = w.now + timedelta(days=3)
    outcomes = race(engine, [lambda s: open_session(
        s, deps, w.principal(0), verification_id=w.verifications[0], amount_fen=9_000,
        due_at=due, reference="retry", idempotency_key="same-key")] * 5)
    assert all(hasattr(o, "id") for o in outcomes), outcomes
    assert len({o.id for o in outcomes}) == 1
    assert w.scalar(select(func.count()).select_from(BenefitSession).where(
        BenefitSession.subject_bidx == w.bidx)) == 1
    assert w.scalar(select(Exposure.open_fen).where(Exposure.subject_bidx == w.bidx)) == 9_000
