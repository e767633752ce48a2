"""Portable statements that SQLAlchemy spells differently for PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert


def insert_for(session: Session, table: Table) -> Insert:
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt: Insert = module.insert(table)
    return stmt


def upsert(session: Session, table: Table, rows: Sequence[dict[str, Any]] | dict[str, Any],
           key: Sequence[str] | None, update: Sequence[str]) -> None:
    """Insert, or on conflict update ``update`` columns; with ``key=None`` and no updates a
    conflict on *any* unique constraint is ignored."""
    stmt: Any = insert_for(session, table)
    if key is None:
        stmt = stmt.on_conflict_do_nothing()
    elif update:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key), set_={c: stmt.excluded[c] for c in update})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    session.execute(stmt, rows)


def china_date(session: Session, column: Any) -> Any:
    """The calendar date in Asia/Shanghai of a UTC timestamp column, on either backend."""
    from sqlalchemy import func

    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("Asia/Shanghai", column))
    return func.date(column, "+8 hours")
