"""Portable statements that SQLAlchemy spells differently for PostgreSQL and SQLite."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, String, Table, Text, cast, func, literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert


def time_ordered_uuid_sql() -> Any:
    """A version-7 UUID made by PostgreSQL for each row (15 has no ``uuidv7()``): 48 bits of
    Unix milliseconds, then the random bits of ``gen_random_uuid()`` with the version set to
    7. Rows written together get neighbouring ids, so a batch's primary-key entries go to
    the right edge of the B-tree instead of a random leaf page each."""
    from sqlalchemy.types import Uuid

    return literal_column(
        "CAST(encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing "
        "substring(int8send(CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) "
        "AS bigint)) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex') AS uuid)", Uuid())


# ---- JSON written as text (PostgreSQL) ----
#
# ``json_build_object`` looks up the type of each of its arguments for every row; a sweep
# writes an event payload per session, so its payloads are concatenated text instead, each
# value made JSON by the helper that fits it, and cast to ``json`` once (which checks it).


def _constant(text: str) -> Any:
    return literal_column("'" + text.replace("'", "''") + "'", String)


_NULL = _constant("null")


def _joined(*pieces: Any) -> Any:
    """SQL text pieces joined with ``||`` (NULL if any piece is NULL)."""
    out = pieces[0]
    for piece in pieces[1:]:
        out = out.op("||", return_type=String)(piece)
    return out


def json_quoted_sql(text: Any) -> Any:
    """Text that never needs JSON escaping (a UUID, an ISO time) as a JSON string; NULL as
    ``null``."""
    return func.coalesce(_joined(_constant('"'), text, _constant('"')), _NULL)


def json_string_sql(text: Any) -> Any:
    """Any text as a JSON string, escaped by ``to_json``; NULL as ``null``."""
    return func.coalesce(cast(func.to_json(cast(text, Text)), Text), _NULL)


def json_number_sql(value: Any) -> Any:
    """An integer as a JSON number; NULL as ``null``."""
    return func.coalesce(cast(value, String), _NULL)


def json_object_sql(*pairs: tuple[str, Any]) -> Any:
    """``{"key":value,…}`` as ``json``, each value already JSON text (one of the helpers
    above), the keys written into the statement."""
    pieces: list[Any] = []
    for i, (key, value) in enumerate(pairs):
        pieces += [_constant(("{" if i == 0 else ",") + json.dumps(key) + ":"), value]
    return cast(_joined(*pieces, _constant("}")), JSON)


def insert_for(session: Session, table: Table) -> Insert:
    return _insert(session.get_bind().dialect.name, table)


def _insert(dialect: str, table: Table) -> Insert:
    """The dialect's INSERT (the one with ``on_conflict_*``)."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt: Insert = module.insert(table)
    return stmt


def upsert(session: Session, table: Table, rows: Sequence[dict[str, Any]] | dict[str, Any],
           key: Sequence[str] | None, update: Sequence[str]) -> None:
    """Insert, or on conflict update ``update`` columns; with ``key=None`` and no updates a
    conflict on *any* unique constraint is ignored."""
    session.connection().execute(
        _upsert_statement(session.get_bind().dialect.name, table,
                          None if key is None else tuple(key), tuple(update)), rows)


_UPSERTS: dict[tuple[str, str, tuple[str, ...] | None, tuple[str, ...]], Insert] = {}


def _upsert_statement(dialect: str, table: Table, key: tuple[str, ...] | None,
                      update: tuple[str, ...]) -> Insert:
    """Built once per shape: the rows go in as parameters, so a hot path pays neither for
    building the statement nor for its cache key."""
    cache_key = (dialect, table.name, key, update)
    stmt: Any = _UPSERTS.get(cache_key)
    if stmt is None:
        stmt = _insert(dialect, table)
        if key is None:
            stmt = stmt.on_conflict_do_nothing()
        elif update:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(key), set_={c: stmt.excluded[c] for c in update})
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
        _UPSERTS[cache_key] = stmt
    return stmt  # type: ignore[no-any-return]


def china_date(session: Session, column: Any) -> Any:
    """The calendar date in Asia/Shanghai of a UTC timestamp column, on either backend."""
    from sqlalchemy import func

    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("Asia/Shanghai", column))
    return func.date(column, "+8 hours")


def owned_by(column: Any, owner: Any) -> Any:
    """``column = owner`` for a row found by its primary key and checked for its owner
    (``id = :id AND partner_id = :me``), written ``IS NOT DISTINCT FROM`` (``IS`` on SQLite),
    the same test for a NOT NULL column and a given owner, which PostgreSQL never uses as an
    index condition. Otherwise, without fresh statistics (a new table, autovacuum behind or
    off), the owner's index ties with the key in the planner's estimate and may be chosen:
    then every lookup walks all of that owner's rows, and a prepared statement's generic plan
    keeps doing so for the connection's life."""
    return column.is_not_distinct_from(owner)
