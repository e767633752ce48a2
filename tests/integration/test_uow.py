"""The unit of work: the one place that commits, on the real databases."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from xinyi.auth.models import ApiClient
from xinyi.errors import Conflict
from xinyi.uow import UnitOfWork, after_commit, after_rollback, restart_reading, unique_or


class NameTaken(Conflict):
    code = "name_taken"


def _client(name: str = "uow") -> ApiClient:
    return ApiClient(id=uuid.uuid4(), type="partner", name=name, kind="library",
                     created_at=datetime.now(UTC))


def _count(sessions: sessionmaker[Session], *where: object) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(ApiClient).where(*where)) or 0)


def _insert_twin(session: Session, client_id: uuid.UUID) -> None:
    """Another row with the same primary key (a Core insert: the identity map stays clean)."""
    session.execute(insert(ApiClient).values(
        id=client_id, type="partner", name="twin", kind="library", created_at=datetime.now(UTC)))


@pytest.fixture
def sessions(app: Flask) -> sessionmaker[Session]:
    return app.extensions["xinyi"].db.sessions  # type: ignore[no-any-return]


def test_leaving_the_block_without_a_commit_rolls_back(sessions: sessionmaker[Session]) -> None:
    client = _client()
    with UnitOfWork(sessions) as uow:
        uow.session.add(client)
        uow.session.flush()
    assert _count(sessions, ApiClient.id == client.id) == 0


def test_an_exception_rolls_back_and_propagates(sessions: sessionmaker[Session]) -> None:
    client = _client()
    with pytest.raises(ZeroDivisionError), UnitOfWork(sessions) as uow:
        uow.session.add(client)
        uow.session.flush()
        _ = 1 / 0
    assert _count(sessions, ApiClient.id == client.id) == 0


def test_a_commit_keeps_the_work(sessions: sessionmaker[Session]) -> None:
    client = _client()
    with UnitOfWork(sessions) as uow:
        uow.session.add(client)
        uow.commit()
    assert _count(sessions, ApiClient.id == client.id) == 1


def test_after_commit_hooks_run_only_after_a_commit(sessions: sessionmaker[Session]) -> None:
    ran: list[str] = []
    with UnitOfWork(sessions) as uow:
        uow.session.add(_client())
        after_commit(uow.session, lambda: ran.append("dropped"))
        uow.rollback()
        after_commit(uow.session, lambda: ran.append("kept"))
        assert ran == []  # not before the commit
        uow.commit()
    assert ran == ["kept"]
    with UnitOfWork(sessions) as uow:
        after_commit(uow.session, lambda: ran.append("never"))
    assert ran == ["kept"]


def test_after_rollback_hooks_compensate_only_when_nothing_is_committed(
        sessions: sessionmaker[Session]) -> None:
    taken_back: list[str] = []
    with UnitOfWork(sessions) as uow:
        after_rollback(uow.session, lambda: taken_back.append("committed"))
        uow.commit()
    with UnitOfWork(sessions) as uow:
        after_rollback(uow.session, lambda: taken_back.append("rolled back"))
    assert taken_back == ["rolled back"]


def test_a_failing_hook_does_not_undo_the_commit(sessions: sessionmaker[Session]) -> None:
    client = _client()
    with UnitOfWork(sessions) as uow:
        uow.session.add(client)
        after_commit(uow.session, lambda: 1 / 0)
        uow.commit()
    assert _count(sessions, ApiClient.id == client.id) == 1


def test_unique_or_rolls_back_only_its_savepoint_and_raises_the_domain_error(
        sessions: sessionmaker[Session]) -> None:
    first, kept = _client(), _client()
    with UnitOfWork(sessions) as uow:
        uow.session.add(first)
        uow.session.add(kept)
        uow.session.flush()
        with pytest.raises(NameTaken), unique_or(uow.session, NameTaken):
            _insert_twin(uow.session, first.id)  # the primary key: a unique constraint
        # The unit is usable and what came before the savepoint is still there.
        assert uow.session.get(ApiClient, kept.id) is not None
        uow.commit()
    assert _count(sessions, ApiClient.id.in_([first.id, kept.id])) == 2


def test_commit_or_maps_a_violation_at_commit_to_the_domain_error(
        sessions: sessionmaker[Session]) -> None:
    client = _client()
    with UnitOfWork(sessions) as uow:
        uow.session.add(client)
        uow.commit()
    with UnitOfWork(sessions) as uow:
        twin = _client()
        twin.id = client.id  # another session's row: flushed only by the commit
        uow.session.add(twin)
        with pytest.raises(NameTaken):
            uow.commit_or(NameTaken)
    assert _count(sessions, ApiClient.id == client.id) == 1


def test_restart_reading_refuses_a_unit_that_has_written(
        sessions: sessionmaker[Session]) -> None:
    with UnitOfWork(sessions) as uow:
        uow.session.add(_client())
        with pytest.raises(RuntimeError):
            restart_reading(uow.session)


@pytest.fixture
def committed_engine(app: Flask) -> Iterator[Engine]:
    """A real engine on the test database: the race needs separate, committing connections."""
    deps = app.extensions["xinyi"]
    if not deps.db.url.startswith("postgresql"):
        pytest.skip("SQLite has a single writer: registrations cannot race")
    engine = deps.db.engine
    yield engine
    with engine.begin() as conn:
        conn.execute(delete(ApiClient).where(ApiClient.name == "race"))


def test_the_loser_of_a_unique_race_gets_the_domain_error(committed_engine: Engine) -> None:
    """Six units insert the same key at once: one commits, five get the conflict, none a
    database error."""
    sessions = sessionmaker(committed_engine, expire_on_commit=False)
    key = uuid.uuid4()
    start = threading.Barrier(6)
    outcomes: list[str] = []
    lock = threading.Lock()

    def contender() -> None:
        with UnitOfWork(sessions) as uow:
            start.wait(timeout=10)
            try:
                with unique_or(uow.session, NameTaken):
                    racer = _client("race")
                    racer.id = key
                    uow.session.add(racer)
                uow.commit()
                outcome = "committed"
            except NameTaken:
                outcome = "conflict"
            except Exception as exc:  # pragma: no cover - the failure this test is for
                outcome = type(exc).__name__
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=contender) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["committed"] + ["conflict"] * 5
    assert _count(sessions, ApiClient.id == key) == 1
