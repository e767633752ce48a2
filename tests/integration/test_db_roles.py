"""The production shape of the database: migrations as the owner, the app as a least-privilege
role (the compose stack's migrate step runs ``xinyi db upgrade --apply-roles``).

Each test gets a scratch PostgreSQL database and an app role of its own (roles are shared by
the whole server), both dropped afterwards. The owner here is the test server's superuser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import ProgrammingError

from tests.factories import (
    SENSITIVE_VALUES,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    api_client_headers,
    bearer,
    login,
    random_phone,
    register_citizen,
)
from xinyi.app import create_app
from xinyi.audit.service import Access, append
from xinyi.cli import main
from xinyi.config import load_settings
from xinyi.db import make_engine
from xinyi.pii import IdNumber
from xinyi.subjects.service import subject_bidx
from xinyi.uow import UnitOfWork
from xinyi.wiring import build_deps
from xinyi.worker import seal_access_log

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL.startswith("postgresql"),
                                reason="database roles are a PostgreSQL feature")


@dataclass(frozen=True)
class Scratch:
    owner_url: str  # the owner's (here the test server's superuser)
    app_url: str  # the same database, as the app role
    role: str
    password: str
    sealer_url: str  # the same database, as the sealer's role


def _admin() -> Engine:
    base = TEST_DATABASE_URL.rpartition("/")[0]
    return make_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT", poolclass=None)


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Scratch]:
    suffix = secrets.token_hex(4)
    name, role = f"xinyi_roles_{suffix}", f"xinyi_app_{suffix}"
    sealer, sealer_password = f"xinyi_sealer_{suffix}", secrets.token_urlsafe(24)
    password = secrets.token_urlsafe(24)
    SENSITIVE_VALUES.update((password, sealer_password))
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    owner_url = TEST_DATABASE_URL.rpartition("/")[0] + f"/{name}"
    app_url = make_url(owner_url).set(username=role, password=password)
    sealer_url = make_url(owner_url).set(username=sealer, password=sealer_password)
    for var, value in (("XINYI_DATABASE_URL", owner_url), ("XINYI_ENV", "development"),
                       ("XINYI_INSTANCE_PATH", str(tmp_path)), ("XINYI_APP_DB_ROLE", role),
                       ("XINYI_APP_DB_PASSWORD", password), ("XINYI_SEALER_DB_ROLE", sealer),
                       ("XINYI_SEALER_DB_PASSWORD", sealer_password)):
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("XINYI_REDIS_URL", raising=False)
    try:
        yield Scratch(owner_url, app_url.render_as_string(hide_password=False), role, password,
                      sealer_url.render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{sealer}"'))
        admin.dispose()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def migrate(scratch: Scratch) -> str:
    code, out = run("db", "upgrade", "--apply-roles")
    assert code == 0, out
    assert scratch.password not in out
    return out


def test_migrate_step_creates_a_role_that_appends_to_the_access_log_and_nothing_more(
        scratch: Scratch) -> None:
    out = migrate(scratch)
    assert f"role {scratch.role} created" in out
    app = make_engine(scratch.app_url, poolclass=None)
    try:
        with app.begin() as conn:
            assert conn.scalar(text("SELECT current_user")) == scratch.role
            conn.execute(text("INSERT INTO subjects (bidx, id_number_enc, first_seen_at) "
                              "VALUES (:b, :e, now())"), {"b": b"\1" * 32, "e": b"x" * 40})
            conn.execute(text(
                "INSERT INTO access_log (id, subject_bidx, actor_type, actor_id, "
                "actor_name, action, scope, purpose, created_at) VALUES "
                "(gen_random_uuid(), :b, 'staff', 's-1', '复核员', 'review', 'report.full',"
                " '异议复核', now())"), {"b": b"\1" * 32})
            assert conn.scalar(text("SELECT count(*) FROM access_log")) == 1
            conn.execute(text(
                "INSERT INTO shredded_subjects (id, subject_bidx, account_id, shredded_at) "
                "VALUES (gen_random_uuid(), :b, gen_random_uuid(), now())"), {"b": b"\1" * 32})
            conn.execute(text("UPDATE subjects SET first_seen_at = now()"))  # rows: allowed
        for forbidden in ("UPDATE access_log SET purpose = 'x'", "DELETE FROM access_log",
                          "TRUNCATE access_log", "DELETE FROM audit_checkpoints",
                          "UPDATE audit_checkpoints SET entries = 0",
                          # A closed account's tombstone is append-only too.
                          "DELETE FROM shredded_subjects",
                          "UPDATE shredded_subjects SET shredded_at = now()",
                          "INSERT INTO access_log_seals SELECT id, subject_bidx, 1, 0, "
                          "'\\x00', '\\x00', now() FROM access_log",
                          "INSERT INTO tree_heads VALUES (1, '\\x00', 0, 'k', '\\x00')",
                          "DELETE FROM merkle_nodes",
                          "CREATE TABLE evil (id int)", "CREATE TABLE public.evil (id int)",
                          "ALTER TABLE accounts ADD COLUMN evil int", "DROP TABLE outbox_events",
                          "CREATE INDEX evil ON accounts (created_at)", "CREATE SCHEMA evil"):
            with pytest.raises(ProgrammingError, match=r"permission denied|must be owner"), \
                    app.begin() as conn:
                conn.execute(text(forbidden))
        with app.begin() as conn:
            assert conn.scalar(text("SELECT count(*) FROM access_log")) == 1
            conn.execute(text("CREATE TEMPORARY TABLE staged (id int)"))  # the import's way
    finally:
        app.dispose()
    assert "sealer role xinyi_sealer_" in out and " created" in out, out
    sealer = make_engine(scratch.sealer_url, poolclass=None)
    try:
        with sealer.begin() as conn:  # it reads the log and writes seals, nothing else
            conn.execute(text(
                "INSERT INTO access_log_seals SELECT id, subject_bidx, 1, 0, :z, :z, now() "
                "FROM access_log"), {"z": b"\0" * 32})
        for forbidden in ("UPDATE access_log SET purpose = 'x'", "DELETE FROM access_log",
                          "UPDATE access_log_seals SET seq = 2", "DELETE FROM access_log_seals",
                          "TRUNCATE merkle_nodes", "SELECT * FROM accounts",
                          "INSERT INTO subjects (bidx, id_number_enc) VALUES ('\\x01', '')"):
            with pytest.raises(ProgrammingError, match=r"permission denied"), \
                    sealer.begin() as conn:
                conn.execute(text(forbidden))
    finally:
        sealer.dispose()


def test_the_role_gets_the_password_as_a_scram_verifier_only(scratch: Scratch) -> None:
    migrate(scratch)
    owner = make_engine(scratch.owner_url, poolclass=None)
    with owner.connect() as conn:
        stored = conn.scalar(text("SELECT rolpassword FROM pg_authid WHERE rolname = :r"),
                             {"r": scratch.role})
    owner.dispose()
    assert stored.startswith("SCRAM-SHA-256$") and scratch.password not in stored
    # RFC 5802: the stored key is H(HMAC(SaltedPassword, "Client Key")) for this password.
    iterations, salt, stored_key, _server_key = stored.removeprefix(
        "SCRAM-SHA-256$").replace("$", ":").split(":")
    salted = hashlib.pbkdf2_hmac("sha256", scratch.password.encode(), base64.b64decode(salt),
                                 int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    assert base64.b64decode(stored_key) == hashlib.sha256(client_key).digest()


def test_roles_can_be_applied_again_and_grant_what_is_new(scratch: Scratch) -> None:
    migrate(scratch)
    owner = make_engine(scratch.owner_url, poolclass=None)
    with owner.begin() as conn:  # what a later migration might add
        conn.execute(text("CREATE TABLE later_table (id int)"))
    code, out = run("db", "roles")
    assert code == 0 and f"role {scratch.role} updated" in out, out
    app = make_engine(scratch.app_url, poolclass=None)
    with app.begin() as conn:
        conn.execute(text("INSERT INTO later_table VALUES (1)"))
    app.dispose()
    with pytest.MonkeyPatch.context() as env:
        env.delenv("XINYI_APP_DB_PASSWORD")  # a role the DBA manages: privileges only
        code, out = run("db", "roles")
    assert code == 0 and f"role {scratch.role} kept" in out, out
    with owner.begin() as conn:
        conn.execute(text(f'ALTER TABLE later_table OWNER TO "{scratch.role}"'))
    code, out = run("db", "roles")
    assert code == 1 and "owns 1 relations" in out, out
    owner.dispose()


@pytest.mark.parametrize(("change", "refusal"), [
    ({"XINYI_APP_DB_PASSWORD": "short"}, "at least 16 characters"),
    ({"XINYI_APP_DB_PASSWORD": None}, "set XINYI_APP_DB_PASSWORD to create it"),
    ({"XINYI_APP_DB_ROLE": "Robert'); DROP"}, "lower-case identifier"),
])
def test_roles_refuse_what_is_not_least_privilege_naming_why(
        scratch: Scratch, monkeypatch: pytest.MonkeyPatch, change: dict[str, str | None],
        refusal: str) -> None:
    for var, value in change.items():
        if value is None:
            monkeypatch.delenv(var)
        else:
            monkeypatch.setenv(var, value)
    code, out = run("db", "upgrade", "--apply-roles")
    assert code == 1 and refusal in out, out
    assert scratch.password not in out


def test_the_app_runs_as_the_app_role(scratch: Scratch) -> None:
    """Registration, login, a provider's push, a partner's report, a checkpoint: every write
    the app makes is one its role may make. The first staff login is made as the README
    says, with `xinyi staff create` connecting as the app role."""
    migrate(scratch)
    operator_phone = random_phone()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XINYI_DATABASE_URL", scratch.app_url)
        code, out = run("staff", "create", "--phone", operator_phone, "--password",
                        "operator-pass-1", "--role", "operator")
    assert code == 0, out
    # The keys the command used (development keys under the instance path), so the staff
    # login it made is found.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XINYI_DATABASE_URL", scratch.app_url)
        settings = load_settings().with_overrides(redis_url=TEST_REDIS_URL)
    deps = build_deps(settings)
    try:
        client = create_app(settings, deps).test_client()
        operator = bearer(login(client, operator_phone, "operator-pass-1")["access_token"])
        provider, _ = api_client_headers(client, operator, "providers",
                                         catalogue_codes=("blood.donation",))
        citizen = register_citizen(client)
        pushed = client.post("/v1/provider/records:batch", headers=provider, json={"records": [
            {"ref": "r-1", "id_number": citizen["id_number"], "catalogue_code": "blood.donation",
             "occurred_at": datetime.now(UTC).date().isoformat(), "summary": "无偿献血"}]})
        assert pushed.get_json()["results"][0]["status"] == "created", pushed.get_json()
        me = bearer(login(client, citizen["phone"])["access_token"])
        assert client.get("/v1/me/credit", headers=me).status_code == 200
        assert client.post("/v1/me/credentials", headers=me, json={}).status_code == 201
        bidx = subject_bidx(deps, IdNumber.parse(citizen["id_number"]))
        with UnitOfWork(deps.db.sessions) as uow:  # a staff read; later the worker seals it
            append(uow.session, Access(bidx, "staff", "s-1", "复核员", "review", "report.full",
                                       "异议复核"), now=datetime.now(UTC) - timedelta(hours=1))
            uow.commit()
        with pytest.raises(ProgrammingError, match="permission denied"):
            seal_access_log(deps)  # the app role may not seal
        sealing = build_deps(settings.with_overrides(sealer_database_url=scratch.sealer_url))
        try:
            sealed = seal_access_log(sealing)
            assert sealed.startswith("seal_access_log: ") and " 0 sealed" not in sealed
            assert "tree head" in sealed and "signed" in sealed, sealed
        finally:
            sealing.db.engine.dispose()
    finally:
        deps.db.engine.dispose()
