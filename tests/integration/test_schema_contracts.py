"""The committed OpenAPI file and the migrations must match what the code says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from tests.factories import ROOT, TEST_DATABASE_URL
from xinyi.cli import alembic_config, build_openapi
from xinyi.db import make_engine


def test_committed_openapi_matches_the_code() -> None:
    committed = json.loads((ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8"))
    assert committed == build_openapi(), "run `xinyi openapi export` and commit the result"


def test_every_operation_documents_problem_errors() -> None:
    spec = build_openapi()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            assert "default" in op["responses"], f"{method} {path}"


def test_a_body_is_documented_as_required_only_when_the_server_requires_one() -> None:
    """A body whose fields are all optional loads from nothing (webargs reads a missing body
    as {}), so the server accepts a request without one unless the body must hold something
    (minProperties): otherwise the document must not say it is required (schemathesis:
    "schema-violating request accepted")."""
    spec = build_openapi()
    schemas = spec["components"]["schemas"]
    wrong = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody") if isinstance(op, dict) else None
            if not body or "application/json" not in body["content"]:
                continue  # a multipart upload: its file part is required by the server
            schema = body["content"]["application/json"]["schema"]
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
            if body.get("required") and not (schema.get("required")
                                             or schema.get("minProperties")):
                wrong.append(f"{method.upper()} {path}")
    assert not wrong, wrong


@pytest.fixture
def empty_postgres() -> str:
    base, _, name = TEST_DATABASE_URL.rpartition("/")
    check = f"{name.split('?')[0]}_migration_check"  # next to the test database: runs in
    url = f"{base}/{check}"                           # parallel on other databases never meet
    admin = make_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT", poolclass=None)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {check} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {check}"))
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {check} WITH (FORCE)"))
    admin.dispose()


def test_migrations_on_empty_postgres_leave_no_drift(empty_postgres: str) -> None:
    cfg = alembic_config(empty_postgres)
    command.upgrade(cfg, "head")
    command.check(cfg)  # raises if the models and the migrated schema differ
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")


def test_migrations_on_empty_sqlite_leave_no_drift(tmp_path: Path) -> None:
    cfg = alembic_config(f"sqlite:///{tmp_path}/check.db")
    command.upgrade(cfg, "head")
    command.check(cfg)
