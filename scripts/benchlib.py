"""Shared set-up for the benchmark scripts (run as `python scripts/bench_*.py`)."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def fresh_database(admin_url: str, name: str) -> str:
    """Drop and recreate database ``name`` on the server of ``admin_url``, migrated to head."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    from alembic import command

    from xinyi.cli import alembic_config

    command.upgrade(alembic_config(url), "head")
    return url
