"""SQLAlchemy engine, sessions and the declarative base shared by every domain."""

from __future__ import annotations

import select
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

from psycopg import pq
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, make_url
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would otherwise hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


CONNECT_TIMEOUT_SECONDS = 5
#: A pooled PostgreSQL connection idle longer than this is pinged (one round trip) before use;
#: one used more recently is only checked locally (see :func:`_check_out`).
PING_AFTER_IDLE_SECONDS = 10.0
_RETURNED_AT = "xinyi.returned_at"


def _socket_quiet(dbapi_conn: Any) -> bool:
    """Whether an idle libpq connection looks alive without asking the server: nothing to
    read on its socket (a server that ended the session, by restart, ``pg_terminate_backend``
    or idle timeout, has sent its FATAL message and closed: the socket is readable or hung
    up) and no transaction left open or failed."""
    if dbapi_conn.closed or dbapi_conn.broken:
        return False
    pgconn = dbapi_conn.pgconn
    if pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return False
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)


def _watch_liveness(engine: Engine) -> None:
    """Pessimistic disconnect handling without a round trip per checkout.

    SQLAlchemy's ``pool_pre_ping`` sends a ``SELECT 1`` every time a connection leaves the
    pool: on a busy server that is one round trip in five of a verification. Here a
    connection returned less than :data:`PING_AFTER_IDLE_SECONDS` ago is checked locally
    (:func:`_socket_quiet`); an older one is pinged. A failed check raises
    :class:`DisconnectionError`, on which the pool drops the connection and checks out
    another (a fresh one, after a database restart), so the request never sees it."""

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_conn: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if not _socket_quiet(dbapi_conn):
            raise DisconnectionError("the pooled connection was closed by the server")
        if returned is not None and time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("the pooled connection did not answer a ping") from exc


def make_engine(url: str, **kwargs: Any) -> Engine:
    # A failed statement's error text must not quote its values (password hashes, encrypted
    # phones): the statement stays, its "[parameters: …]" does not.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # Let SQLAlchemy, not the driver, start transactions, so SAVEPOINT works (see the
            # SQLAlchemy pysqlite notes); IMMEDIATE avoids read-to-write upgrade deadlocks.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    parsed = make_url(url)
    if url.startswith("postgresql") and "connect_timeout" not in parsed.query:
        # An unreachable database host must fail a request or /readyz in seconds, not hang
        # until the worker is killed. A connect_timeout in the URL wins.
        parsed = parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_SECONDS)})
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "psycopg" \
            and "pool_pre_ping" not in kwargs:
        engine = create_engine(parsed, **kwargs)
        _watch_liveness(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


class Database:
    """The engine plus a session factory; tests may rebind the factory to one connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
