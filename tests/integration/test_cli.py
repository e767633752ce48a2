"""The operators' commands end to end, on a migrated database of their own (SQLite file)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text, update

from tests.factories import valid_id_number
from xinyi.audit.models import AccessLogEntry
from xinyi.audit.service import Access, append
from xinyi.cli import alembic_config, main
from xinyi.config import load_settings
from xinyi.pii import IdNumber
from xinyi.signing.models import SigningKeyRow
from xinyi.subjects.models import Subject
from xinyi.subjects.service import ensure_subject
from xinyi.wiring import build_deps


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from alembic import command

    url = f"sqlite:///{tmp_path}/ops.db"
    command.upgrade(alembic_config(url), "head")
    for name, value in (("XINYI_DATABASE_URL", url), ("XINYI_INSTANCE_PATH", str(tmp_path)),
                        ("XINYI_ENV", "development")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("XINYI_REDIS_URL", raising=False)
    return url


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_scores_recompute_keys_rotate_and_audit_verify(database: str, tmp_path: Path) -> None:
    engine = create_engine(database)
    provider = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_clients (id, type, name, created_at) "
                          "VALUES (:id, 'provider', 'p', '2026-01-01 00:00:00')"),
                     {"id": provider.hex})
        conn.execute(text("INSERT INTO provider_catalogue_grants (client_id, catalogue_code, "
                          "granted_at) VALUES (:id, '*', '2026-01-01 00:00:00')"),
                     {"id": provider.hex})
    idn = valid_id_number(5901)
    day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    path = tmp_path / "r.csv"
    path.write_text("ref,id_number,catalogue_code,occurred_at,summary\n"
                    f"k-1,{idn},utility.unpaid_bill,{day},欠费\n", encoding="utf-8")
    assert run("import-records", str(path), "--provider", str(provider))[0] == 0

    code, out = run("scores", "recompute")
    assert code == 0 and out.startswith("recomputed 1 scores"), out

    code, out = run("keys", "rotate", "--purpose", "credential")
    assert code == 0 and out.startswith("new credential key "), out
    kid = out.split()[-1]
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(SigningKeyRow)
                           .where(SigningKeyRow.kid == kid)) == 1

    code, out = run("audit", "verify")
    assert code == 0 and "access log intact" in out, out
    deps = build_deps(load_settings())
    with deps.db.session() as s:
        bidx = s.scalars(select(Subject.bidx)).one()
        entry = append(s, Access(bidx, "staff", "s-1", "复核员", "review", "report.full",
                                 "异议复核"), now=datetime.now(UTC))
        s.commit()
    code, out = run("audit", "seal")
    assert code == 0 and "1 entries sealed; tree head" in out, out
    with engine.begin() as conn:
        conn.execute(update(AccessLogEntry).values(purpose="篡改"))
    code, out = run("audit", "verify")
    assert code == 1 and "ALTERED" in out and str(entry.id) in out, out
    assert idn not in out
    deps.db.engine.dispose()
    engine.dispose()


def test_backfill_records_the_district_of_subjects_stored_without_one(database: str) -> None:
    deps = build_deps(load_settings())
    ids = [valid_id_number(5950 + n, region=region)
           for n, region in enumerate(("110102", "310104", "120101"))]
    shredded = b"\x01" * 32  # a subject whose ID number no longer decrypts
    with deps.db.session() as s:
        keys = [ensure_subject(s, deps, IdNumber.parse(idn), datetime.now(UTC)) for idn in ids]
        s.execute(update(Subject).values(district=None))  # as stored before the column
        s.add(Subject(bidx=shredded, id_number_enc=b"\x09" * 40))
        s.commit()
    code, out = run("subjects", "backfill-districts", "--batch", "2")
    assert (code, out.strip()) == (
        0, "districts recorded for 3 subjects; 1 ID numbers no longer decrypt"), out
    with deps.db.session() as s:
        assert {bidx: district for bidx, district in s.execute(
            select(Subject.bidx, Subject.district))} == {
            **{key: idn[:6] for key, idn in zip(keys, ids, strict=True)}, shredded: None}
    code, out = run("subjects", "backfill-districts")  # again: nothing left to do
    assert (code, out.strip()) == (
        0, "districts recorded for 0 subjects; 1 ID numbers no longer decrypt"), out
    assert not any(idn in out or idn[:6] in out for idn in ids)
    deps.db.engine.dispose()


def test_seed_demo_prints_each_login_and_its_keys_only_once(database: str) -> None:
    code, first = run("seed-demo")
    assert code == 0, first
    code, second = run("seed-demo")
    assert code == 0, second
    logins = [line for line in first.splitlines() if "password" in line]
    assert len(logins) == 6
    assert logins == [line for line in second.splitlines() if "password" in line]
    assert "xyk_" in first and "xyk_" not in second
    assert second.count("printed at first seeding") == first.count("(shown once)") == 10
