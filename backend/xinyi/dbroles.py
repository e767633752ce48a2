"""The least-privilege database role the API and worker connect as (PostgreSQL only).

Migrations run as the owner role, which owns every table. ``xinyi db roles`` (or
``xinyi db upgrade --apply-roles``), run as that owner, then creates or updates the app role
and applies ``docs/sql/production_roles.sql`` to it: reads and writes of rows, but no DDL and
no UPDATE, DELETE or TRUNCATE of the access log (查询使用登记) or its checkpoints, and no write
of its seals, Merkle tree or tree heads. The same function applies ``docs/sql/sealer_role.sql``
to the sealer's role, the only one that may write those. Safe to run again after every
upgrade: it also grants the tables a new migration added.

The password is never printed nor sent in the clear: libpq turns it into a SCRAM-SHA-256
verifier on this side (as psql's ``\\password`` does), so not even the server's statement log
can hold it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MIN_PASSWORD = 16
# Attributes that would make the role more than an app's: each is refused.
POWERS = ("rolsuper", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls")
_POWERS_OF = text("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
                  "FROM pg_roles WHERE rolname = :r")


class RolesError(RuntimeError):
    """The app role cannot be set up as asked; the message names why, never a secret."""


@dataclass(frozen=True)
class Applied:
    role: str
    created: bool
    password_set: bool
    statements: int


def statements(sql: str) -> list[str]:
    """The SQL file's statements: ``--`` comments dropped, split at each ``;``."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in " ".join(lines).split(";") if s.strip()]


def _verifier(conn: Connection, role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password``, computed by libpq on this side."""
    driver: Any = conn.connection.driver_connection
    pgconn = driver.pgconn
    verifier: bytes = pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    return verifier.decode("ascii")


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def apply_roles(conn: Connection, sql: str, *, role: str, password: str | None) -> Applied:
    """Create or update the app ``role`` (with ``password``, if given) and apply ``sql`` to it.

    Refuses, naming the reason: a database that is not PostgreSQL, a role name that is not a
    plain identifier, a short password, a role that would be created without one, the current
    user as the app role, and an app role with powers (superuser, CREATEROLE, ...) or owning
    any table (it could then alter or drop it).
    """
    if conn.dialect.name != "postgresql":
        raise RolesError("database roles are applied on PostgreSQL only")
    if not ROLE_NAME.fullmatch(role):
        raise RolesError("the app role's name must be a lower-case identifier")
    if password is not None and len(password) < MIN_PASSWORD:
        raise RolesError(f"XINYI_APP_DB_PASSWORD must be at least {MIN_PASSWORD} characters")
    if conn.scalar(text("SELECT current_user")) == role:
        raise RolesError(f"connect as the owner role to apply roles, not as {role}")
    ident = conn.dialect.identifier_preparer.quote(role)
    exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}) == 1
    if not exists and not password:
        raise RolesError(f"role {role} does not exist: set XINYI_APP_DB_PASSWORD to create it")
    if password:
        verb = "ALTER ROLE" if exists else "CREATE ROLE"
        statement = f"{verb} {ident} WITH LOGIN PASSWORD {_quoted(_verifier(conn, role, password))}"
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(statement)
        except DBAPIError as exc:  # the message names the role, never the statement
            reason = (str(exc.orig).strip().splitlines() or ["refused"])[0]
            raise RolesError(f"cannot {verb.lower()} {role}: {reason}") from None
    powers = conn.execute(_POWERS_OF, {"r": role}).one()
    held = [name.removeprefix("rol") for name, on in zip(POWERS, powers, strict=True) if on]
    if held:
        raise RolesError(f"role {role} has {', '.join(held)}: the app role must have none")
    owned = conn.scalar(text(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relowner = (SELECT oid FROM pg_roles "
        "WHERE rolname = :r)"), {"r": role})
    if owned:
        raise RolesError(f"role {role} owns {owned} relations in schema public: migrations must"
                         " run as the owner role (reassign them with REASSIGN OWNED)")
    done = statements(sql)
    for statement in done:
        conn.exec_driver_sql(statement.replace(":app_role", ident))
    return Applied(role, not exists, bool(password), len(done))
