"""The unit of work: the one place that commits or rolls back.

An entry point (a request, a worker job, a CLI command) opens one unit, hands its ``session``
to services and calls :meth:`UnitOfWork.commit`; leaving the block without a commit rolls
back. Services and helpers never commit or roll back their caller's work. What they need
around the transaction they ask of this module:

* :func:`after_commit` — work whose loss is harmless (waking a worker, clearing a cache),
  run only once the commit succeeded;
* :func:`after_rollback` — compensation for a Redis write made *before* the commit (a short
  code, a credential mark), run when the unit ends without committing;
* :func:`unique_or` — the unique-constraint race: the block runs in a savepoint, and a lost
  race rolls back that savepoint only and raises the caller's domain error;
* :func:`restart_reading` — a unit that has only read starts over with a fresh snapshot.

Redis writes that guard correctness happen before the commit, with the database's unique
constraint as the last guard, and are compensated by :func:`after_rollback`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

T = TypeVar("T")
Hook = Callable[[], object]
ConflictFactory = Callable[[], BaseException]
_AFTER_COMMIT = "xinyi.after_commit"
_AFTER_ROLLBACK = "xinyi.after_rollback"


def after_commit(session: Session, hook: Hook) -> None:
    """Run ``hook`` once the unit owning ``session`` has committed; dropped on rollback."""
    session.info.setdefault(_AFTER_COMMIT, []).append(hook)


def after_rollback(session: Session, hook: Hook) -> None:
    """Run ``hook`` if the unit owning ``session`` ends without committing (compensation)."""
    session.info.setdefault(_AFTER_ROLLBACK, []).append(hook)


def _run(hooks: list[Hook], when: str) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception as exc:  # a hook's failure must not undo or mask the outcome
            log.warning("%s hook failed (%s)", when, type(exc).__name__,
                        extra={"event": "uow_hook_failed"})


def _conflict(conflict: BaseException | ConflictFactory) -> BaseException:
    return conflict if isinstance(conflict, BaseException) else conflict()


@contextmanager
def unique_or(session: Session,
              conflict: BaseException | ConflictFactory) -> Iterator[None]:
    """Run the block in a savepoint and flush it; a unique (or other integrity) violation
    rolls back the savepoint only and raises ``conflict`` (an exception, or a callable that
    builds one — it may query: the session is usable again).

    On PostgreSQL an insert that meets a concurrent uncommitted duplicate waits for it, so
    the loser of a race is caught here, not at the commit."""
    try:
        with session.begin_nested():
            yield
    except IntegrityError:
        raise _conflict(conflict) from None


def restart_reading(session: Session) -> None:
    """End a unit that has only read, so the next statement sees what others committed since
    (SQLite keeps one snapshot per transaction, and its write lock). Refuses a unit holding
    changes: those belong to the entry point."""
    if session.new or session.dirty or session.deleted or session.info.get(_AFTER_ROLLBACK):
        raise RuntimeError("restart_reading on a unit that has written")
    session.rollback()


class UnitOfWork:
    """``with UnitOfWork(sessions) as uow: …; uow.commit()``. The session (and its database
    connection) is made on first use, so a unit that never touches the database costs
    nothing."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._open = False
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if not self._open:
            raise RuntimeError("the unit of work is not open")
        if self._session is None:
            self._session = self._sessions()
        return self._session

    def __enter__(self) -> UnitOfWork:
        if self._open:
            raise RuntimeError("a unit of work is opened once at a time")
        self._open = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.rollback()
        finally:
            if self._session is not None:
                self._session.close()
            self._session, self._open = None, False

    def commit(self) -> None:
        session = self._session
        if session is None:
            return
        session.commit()  # if this fails, the rollback that follows drops the commit hooks
        session.info.pop(_AFTER_ROLLBACK, None)
        _run(session.info.pop(_AFTER_COMMIT, []), "after_commit")

    def commit_or(self, conflict: BaseException | ConflictFactory) -> None:
        """Commit; a constraint violation at the commit rolls back and raises ``conflict``."""
        try:
            self.commit()
        except IntegrityError:
            self.rollback()
            raise _conflict(conflict) from None

    def rollback(self) -> None:
        """Undo everything since the last commit (leaving the block does this itself)."""
        session = self._session
        if session is None:
            return
        session.info.pop(_AFTER_COMMIT, None)
        hooks: list[Hook] = session.info.pop(_AFTER_ROLLBACK, [])
        session.rollback()
        _run(hooks, "after_rollback")


def run_in_unit(sessions: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """``work(session)`` in a unit of its own, committed if it returns."""
    with UnitOfWork(sessions) as uow:
        result = work(uow.session)
        uow.commit()
        return result
