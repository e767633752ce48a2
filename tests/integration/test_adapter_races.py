"""Adapters under concurrency, on PostgreSQL with separate committing connections: the last
books of a loan returned twice at once close the loan (and its session) once."""

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

from xinyi.adapters import base, library
from xinyi.adapters.models import AdapterRecord
from xinyi.auth.models import ApiClient
from xinyi.auth.principal import Principal
from xinyi.benefits.models import BenefitSession, Exposure
from xinyi.benefits.service import open_session
from xinyi.credentials.models import Verification
from xinyi.errors import DomainError
from xinyi.idempotency import IdempotentRequest
from xinyi.outbox.models import OutboxEvent
from xinyi.subjects.models import Subject
from xinyi.uow import UnitOfWork


@pytest.fixture
def engine(app: Flask) -> Engine:
    deps = app.extensions["xinyi"]
    if not deps.db.url.startswith("postgresql"):
        pytest.skip("SQLite has a single writer: returns cannot race")
    real: Engine = deps.db.engine
    return real


class Loan:
    """A library partner, a citizen and an open two-book loan, committed for real (other
    connections must see them); everything is deleted afterwards."""

    def __init__(self, app: Flask, engine: Engine) -> None:
        self.engine, self.deps = engine, app.extensions["xinyi"]
        self.bidx, self.now = os.urandom(32), datetime.now(UTC)
        self.partner = Principal("partner", uuid.uuid4(), client_kind="library",
                                 client_name="race library")
        verification = uuid.uuid4()
        with engine.begin() as conn:
            conn.execute(insert(Subject).values(bidx=self.bidx, id_number_enc=b"x",
                                                first_seen_at=self.now))
            conn.execute(insert(ApiClient).values(id=self.partner.id, type="partner",
                                                  name="race library", kind="library",
                                                  created_at=self.now))
            conn.execute(insert(Verification).values(
                id=verification, partner_id=self.partner.id, idempotency_key=None,
                credential_jti=uuid.uuid4().hex, subject_bidx=self.bidx,
                benefit_code="library.deposit_free", decision="eligible", created_at=self.now,
                response={"tier": "A", "decision": "eligible", "benefit": {
                    "code": "library.deposit_free",
                    "limits": {"max_books": 5, "deposit_waived_fen": 10000}}}))
        with UnitOfWork(sessionmaker(engine, expire_on_commit=False)) as uow:
            view = open_session(uow.session, self.deps, self.partner,
                                verification_id=verification, amount_fen=6000,
                                due_at=self.now + timedelta(days=7), reference="race")
            self.record = uuid.uuid4()
            books = [{"barcode": f"B{i}", "title": "书", "deposit_fen": 3000, "price_fen": 1,
                      "waived_fen": 3000, "status": "lent", "back_at": None} for i in (1, 2)]
            uow.session.add(AdapterRecord(
                id=self.record, kind="library", partner_id=self.partner.id,
                verification_id=verification, decision="eligible", session_id=view.id,
                status="open", reference="race", amount_fen=6000, waived_fen=6000,
                charge_normally_fen=0, due_at=view.due_at, details={"books": books},
                created_at=self.now, updated_at=self.now))
            uow.commit()
        self.session_id = view.id

    def remove(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(AdapterRecord).where(AdapterRecord.partner_id == self.partner.id))
            conn.execute(delete(OutboxEvent).where(OutboxEvent.partner_id == self.partner.id))
            conn.execute(delete(IdempotentRequest).where(
                IdempotentRequest.owner_id == self.partner.id))
            conn.execute(delete(BenefitSession).where(BenefitSession.subject_bidx == self.bidx))
            conn.execute(delete(Exposure).where(Exposure.subject_bidx == self.bidx))
            conn.execute(delete(Verification).where(Verification.subject_bidx == self.bidx))
            conn.execute(delete(ApiClient).where(ApiClient.id == self.partner.id))
            conn.execute(delete(Subject).where(Subject.bidx == self.bidx))

    def scalar(self, stmt: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.scalar(stmt)


@pytest.fixture
def loan(app: Flask, engine: Engine) -> Iterator[Loan]:
    made = Loan(app, engine)
    yield made
    made.remove()


def race(engine: Engine, calls: list[Callable[[Session], Any]]) -> list[Any]:
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


def test_parallel_returns_of_the_same_books_close_the_loan_once(app: Flask, engine: Engine,
                                                               loan: Loan) -> None:
    returns = next(op for op in library.KIND.operations if op.name == "returns")

    def give_back(session: Session) -> Any:
        call = base.Call(session, loan.deps, loan.partner)
        return base.write(call, library.KIND, returns, {"barcodes": ["B1", "B2"]},
                          loan.record)

    outcomes = race(engine, [give_back] * 4)
    answers = [o for o in outcomes if isinstance(o, dict)]
    assert len(answers) == 1, outcomes
    # The others waited for the row lock and found the loan closed.
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["adapter_record_closed"] * 3
    assert answers[0]["state"] == "fulfilled" and answers[0]["books_out"] == 0
    closed = loan.scalar(select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.partner_id == loan.partner.id,
        OutboxEvent.topic == "benefit_session.closed"))
    assert closed == 1
    assert loan.scalar(select(Exposure.open_fen).where(Exposure.subject_bidx == loan.bidx)) == 0
