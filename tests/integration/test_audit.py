"""The access log is hash-chained, checkpoint-signed, verifiable and append-only in production."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import text, update

from tests.conftest import ROOT
from xinyi.audit.checkpoints import make_checkpoint, verify_all
from xinyi.audit.models import AccessLogEntry
from xinyi.audit.service import Access, append, entry_hash
from xinyi.records.models import Subject


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
        last = s.get(AccessLogEntry, entries[2].id)
        assert last is not None
        last.purpose = "篡改"
        last.hash = entry_hash(last.prev_hash, last)
        s.commit()
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
