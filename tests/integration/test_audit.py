"""The access log is hash-chained, checkpoint-signed, verifiable and append-only in production."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import ROOT
from xinyi.audit.checkpoints import make_checkpoint, verify_all
from xinyi.audit.models import AccessLogEntry
from xinyi.audit.service import EMPTY, GENESIS, Access, ChainBusy, append, entry_hash
from xinyi.subjects.models import Subject
from xinyi.uow import UnitOfWork


def _subject(session, n: int) -> bytes:  # type: ignore[no-untyped-def]
    bidx = bytes([n]) * 32
    session.add(Subject(bidx=bidx, id_number_enc=b"x" * 40, first_seen_at=datetime.now(UTC)))
    session.flush()
    return bidx


def _log(session, bidx: bytes, when: datetime, n: int = 3) -> list[AccessLogEntry]:  # type: ignore[no-untyped-def]
    entries = [append(session, Access(bidx, "partner", str(uuid.uuid4()), "图书馆", "report",
                                      "report.summary", "借书押金"), now=when + timedelta(
                                          seconds=i)) for i in range(n)]
    session.commit()
    return entries


def _rewrite_and_rehash(session, entry_id: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    """What a careful forger does: alter an entry and give it the hash of its new content."""
    entry = session.get(AccessLogEntry, entry_id)
    assert entry is not None
    entry.purpose = "篡改"
    entry.hash = entry_hash(entry.prev_hash, entry)
    session.commit()


def test_chains_link_each_entry_to_the_previous(app: Flask) -> None:
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        a, b = _subject(s, 1), _subject(s, 2)
        first = _log(s, a, datetime.now(UTC))
        _log(s, b, datetime.now(UTC), n=2)
        assert [e.seq for e in first] == [1, 2, 3]
        assert first[1].prev_hash == first[0].hash
        assert first[2].hash == entry_hash(first[1].hash, first[2])
        report = verify_all(s)
    assert report.problem is None and report.entries_checked == 5


def test_verify_names_the_first_altered_entry(app: Flask) -> None:
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        bidx = _subject(s, 3)
        entries = _log(s, bidx, datetime.now(UTC))
        s.execute(update(AccessLogEntry).where(AccessLogEntry.id == entries[1].id)
                  .values(purpose="篡改"))
        s.commit()
        report = verify_all(s)
    assert report.problem is not None and str(entries[1].id) in report.problem


def test_verify_names_an_entry_rewritten_with_a_new_hash_not_the_one_after_it(
        app: Flask) -> None:
    """Whoever rewrites an entry and recomputes its hash passes its own check; the next entry
    still links to the old hash. The rewritten entry is the one named."""
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        bidx = _subject(s, 9)
        entries = _log(s, bidx, datetime.now(UTC))
        _rewrite_and_rehash(s, entries[1].id)
        report = verify_all(s)
        assert report.problem is not None and str(entries[1].id) in report.problem
        assert str(entries[2].id) not in report.problem
        # The next entry's link itself altered (not rehashed): that entry is named.
        s.execute(update(AccessLogEntry).where(AccessLogEntry.id == entries[1].id)
                  .values(purpose=entries[1].purpose, hash=entries[1].hash))
        s.execute(update(AccessLogEntry).where(AccessLogEntry.id == entries[2].id)
                  .values(prev_hash=b"\x00" * 32))
        s.commit()
        report = verify_all(s)
        assert report.problem is not None and str(entries[2].id) in report.problem


def test_rehashed_chain_is_caught_by_the_signed_checkpoint(app: Flask) -> None:
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        bidx = _subject(s, 4)
        entries = _log(s, bidx, datetime.now(UTC) - timedelta(minutes=10))
        checkpoint = make_checkpoint(s, deps)
        assert checkpoint is not None and checkpoint.entries == 3
        assert make_checkpoint(s, deps) is None  # nothing new to sign
        assert verify_all(s).problem is None
        # Rewrite the last entry and recompute its hash: the chain alone would look fine.
        _rewrite_and_rehash(s, entries[2].id)
        report = verify_all(s)
    assert report.problem is not None and f"checkpoint {checkpoint.id}" in report.problem


def test_dropping_the_tail_of_a_chain_is_caught(app: Flask) -> None:
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        bidx = _subject(s, 5)
        entries = _log(s, bidx, datetime.now(UTC) - timedelta(minutes=10))
        make_checkpoint(s, deps)
        s.delete(s.get(AccessLogEntry, entries[2].id))
        s.commit()
        assert verify_all(s).problem is not None


def test_app_role_cannot_update_or_delete_log_rows(app: Flask) -> None:
    deps = app.extensions["xinyi"]
    if not deps.db.url.startswith("postgresql"):
        pytest.skip("database roles are a PostgreSQL feature")
    sql = (ROOT / "docs" / "sql" / "production_roles.sql").read_text()
    statements = [line for line in sql.splitlines() if line and not line.startswith("--")]
    with deps.db.session() as s:
        bidx = _subject(s, 6)
        _log(s, bidx, datetime.now(UTC), n=1)
        s.execute(text("CREATE ROLE xinyi_app_test NOLOGIN"))
        for statement in statements:
            s.execute(text(statement.replace(":app_role", "xinyi_app_test")))
        s.execute(text("SET LOCAL ROLE xinyi_app_test"))
        with s.begin_nested():
            s.execute(text("SELECT count(*) FROM access_log"))
        for forbidden in ("UPDATE access_log SET purpose = 'x'", "DELETE FROM access_log",
                          "TRUNCATE access_log", "DELETE FROM audit_checkpoints"):
            with pytest.raises(Exception, match="permission denied"), s.begin_nested():
                s.execute(text(forbidden))


def test_append_from_a_stale_head_moves_on_to_the_real_one(app: Flask) -> None:
    """Another transaction appended after this one read the head: the entry still lands right
    after the real head, linked to it, and the chain verifies."""
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        bidx = _subject(s, 7)
        _log(s, bidx, datetime.now(UTC) - timedelta(minutes=5), n=2)
        review = Access(bidx, "staff", "s-1", "复核员", "review", "report.full", "异议复核")
        late = append(s, review, now=datetime.now(UTC), head=EMPTY)
        s.commit()
        rows = s.scalars(select(AccessLogEntry).where(AccessLogEntry.subject_bidx == bidx)
                         .order_by(AccessLogEntry.seq)).all()
        assert [r.seq for r in rows] == [1, 2, 3]
        assert late.seq == 3 and late.prev_hash == rows[1].hash
        assert verify_all(s).problem is None


def test_a_chain_that_never_settles_is_refused_and_records_nothing(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from xinyi.audit import service

    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        bidx = _subject(s, 8)
        _log(s, bidx, datetime.now(UTC), n=1)
        monkeypatch.setattr(service, "read_head", lambda *_: EMPTY)  # always out of date
        with pytest.raises(ChainBusy) as busy:
            append(s, Access(bidx, "partner", "p-1", "图书馆", "report", "report.summary", "x"),
                   now=datetime.now(UTC))
        assert busy.value.status == 503 and busy.value.headers["Retry-After"] == "1"
        count = s.scalar(select(func.count()).select_from(AccessLogEntry)
                         .where(AccessLogEntry.subject_bidx == bidx))
        assert count == 1


def _run_together(work: Callable[..., None], args: list[tuple[Any, ...]], *,
                  timeout: float) -> None:
    """``work`` in one thread per argument tuple, at once; any exception fails the test."""
    errors: list[BaseException] = []

    def guarded(*arguments: Any) -> None:
        try:
            work(*arguments)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=a) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not errors, errors


@contextlib.contextmanager
def _committed_subject(deps: Any, *, pool_size: int) -> Iterator[tuple[Engine, bytes]]:
    """A subject committed through an engine of its own, for tests of real concurrent
    transactions; removed with its log entries afterwards."""
    engine = create_engine(deps.db.url, pool_size=pool_size)
    bidx = uuid.uuid4().bytes * 2
    try:
        with Session(engine) as s:
            s.add(Subject(bidx=bidx, id_number_enc=b"x" * 40, first_seen_at=datetime.now(UTC)))
            s.commit()
        yield engine, bidx
    finally:
        with engine.begin() as conn:
            conn.execute(delete(AccessLogEntry).where(AccessLogEntry.subject_bidx == bidx))
            conn.execute(delete(Subject).where(Subject.bidx == bidx))
        engine.dispose()


def test_concurrent_appends_for_one_citizen_never_fork_the_chain(app: Flask) -> None:
    """Real transactions on separate PostgreSQL connections, committed: no lock is taken, the
    unique (subject, seq) position decides, and every append lands exactly once."""
    deps = app.extensions["xinyi"]
    if not deps.db.url.startswith("postgresql"):
        pytest.skip("SQLite has a single writer: appends cannot interleave")
    start = threading.Barrier(6)

    def worker(n: int) -> None:
        start.wait(timeout=10)
        for i in range(5):
            with Session(engine) as s:
                append(s, Access(bidx, "partner", f"p-{n}", "图书馆", "verification",
                                 "benefit:x", f"{n}-{i}"), now=datetime.now(UTC))
                s.commit()

    with _committed_subject(deps, pool_size=8) as (engine, bidx):
        _run_together(worker, [(n,) for n in range(6)], timeout=60)
        with Session(engine) as s:
            rows = s.scalars(select(AccessLogEntry).where(AccessLogEntry.subject_bidx == bidx)
                             .order_by(AccessLogEntry.seq)).all()
            assert [r.seq for r in rows] == list(range(1, 31))
            assert sorted(r.purpose for r in rows) == sorted(
                f"{n}-{i}" for n in range(6) for i in range(5))
            prev = GENESIS
            for r in rows:
                assert r.prev_hash == prev and r.hash == entry_hash(prev, r)
                prev = r.hash


def test_two_workers_signing_at_once_leave_one_verifiable_chain_of_checkpoints(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers run ``make_checkpoint`` at the same moment on separate connections: the
    checkpoints must still form one chain (never two signed from the same predecessor), or
    ``xinyi audit verify`` reports tampering that never happened."""
    from xinyi.audit import checkpoints
    from xinyi.audit.models import AuditCheckpoint
    from xinyi.signing.models import SigningKeyRow

    deps = app.extensions["xinyi"]
    if not deps.db.url.startswith("postgresql"):
        pytest.skip("SQLite has a single writer: two checkpoints cannot interleave")
    both_read = threading.Barrier(2)
    heads_digest = checkpoints._heads_digest

    def slow_heads_digest(*args: Any) -> tuple[bytes, int]:
        # Both workers have read the last checkpoint, unless one has to wait for the other.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait(timeout=2)
        return heads_digest(*args)

    def worker(engine: Engine) -> None:
        with UnitOfWork(sessionmaker(engine)) as uow:
            make_checkpoint(uow.session, deps)
            uow.commit()

    with _committed_subject(deps, pool_size=4) as (engine, bidx):
        try:
            with Session(engine) as s:
                assert s.scalar(select(func.count()).select_from(AuditCheckpoint)) == 0
                _log(s, bidx, datetime.now(UTC) - timedelta(minutes=10))
            monkeypatch.setattr(checkpoints, "_heads_digest", slow_heads_digest)
            _run_together(worker, [(engine,)] * 2, timeout=30)
            with Session(engine) as s:
                report = verify_all(s)
                assert report.problem is None, report.problem
                assert s.scalar(select(func.count()).select_from(AuditCheckpoint)) == 1
        finally:
            with engine.begin() as conn:
                conn.execute(delete(AuditCheckpoint))
                conn.execute(delete(SigningKeyRow).where(SigningKeyRow.purpose == "audit"))
            deps.cache.clear()
