"""Idempotency-Key for any write of a principal: the same key and body replay the stored
answer; the same key with another operation or body is refused, naming the header.

How: the first request inserts its key row (``INSERT … ON CONFLICT DO NOTHING``), does the
work and stores its answer in the row, all in the caller's unit. A concurrent request under
the same key meets the uncommitted row: on PostgreSQL its insert waits for the first to
commit or roll back, then either replays the committed answer or (the first failed) does
the work itself. A request that fails leaves no row, so a retry runs again. Keys live for
:data:`KEEP_FOR` (the worker purges older ones).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import JSON, String, bindparam, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import Uuid

from xinyi.db import Base, utcnow
from xinyi.dbutil import insert_for
from xinyi.errors import ValidationFailed

T = TypeVar("T")
KEEP_FOR = timedelta(days=2)
MAX_KEY_LENGTH = 100


class IdempotentRequest(Base):
    """One principal's key: which operation, a hash of its body, the stored answer."""

    __tablename__ = "idempotent_requests"

    owner_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    operation: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used for a different request"


def fingerprint(operation: str, body: Mapping[str, Any]) -> str:
    """A stable hash of the operation and its body (keys sorted; dates as ISO text)."""
    text = json.dumps({"op": operation, "body": body}, sort_keys=True, default=str,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _reused() -> IdempotencyKeyReused:
    return IdempotencyKeyReused.at("Idempotency-Key",
                                   "already used for another operation or body",
                                   location="headers")


def answer_update_sql(response: Any) -> Any:
    """An UPDATE storing ``response`` (a SQL expression of the JSON answer) as the answer of
    the key named by the parameters of :meth:`Claim.params`: built once by a caller that
    stores its answer inside its own statement (a data-modifying CTE)."""
    table: Any = IdempotentRequest.__table__
    return (update(table).where(table.c.owner_id == bindparam("idem_owner", type_=Uuid()),
                                table.c.key == bindparam("idem_key", type_=String()))
            .values(response=response))


class Claim:
    """This request's key row, inserted and not answered yet. A caller that writes its work
    in one statement may store the answer in that same statement: it puts
    :meth:`answer_update` (a SQL expression of the JSON answer) in a data-modifying CTE, then
    calls :meth:`stored`; :func:`idempotent_claim` then skips its own UPDATE."""

    def __init__(self, owner_id: uuid.UUID, key: str) -> None:
        self.owner_id, self.key, self.is_stored = owner_id, key, False

    def answer_update(self, response: Any) -> Any:
        table: Any = IdempotentRequest.__table__
        return (update(table).where(table.c.owner_id == self.owner_id,
                                    table.c.key == self.key).values(response=response))

    def params(self) -> dict[str, Any]:
        """The parameters of an :func:`answer_update_sql` statement for this key."""
        return {"idem_owner": self.owner_id, "idem_key": self.key}

    def stored(self) -> None:
        self.is_stored = True


_CLAIMS: dict[str, Any] = {}


def _claim_statement(session: Session) -> Any:
    """The key row's ``INSERT … ON CONFLICT DO NOTHING RETURNING``, built once per dialect.
    One round trip, no savepoint: like a plain INSERT it waits for a concurrent uncommitted
    row under the same key, then inserts nothing if that one committed."""
    dialect = session.get_bind().dialect.name
    stmt = _CLAIMS.get(dialect)
    if stmt is None:
        table: Any = IdempotentRequest.__table__
        insert: Any = insert_for(session, table)
        stmt = _CLAIMS[dialect] = (
            insert.values(response=None, **{name: bindparam(name, type_=table.c[name].type)
                                            for name in ("owner_id", "key", "operation",
                                                         "fingerprint", "created_at")})
            .on_conflict_do_nothing(index_elements=["owner_id", "key"])
            .returning(table.c.owner_id))
    return stmt


def idempotent(session: Session, *, owner_id: uuid.UUID, key: str | None, operation: str,
               body: Mapping[str, Any], now: datetime, run: Callable[[], T],
               dump: Callable[[T], dict[str, Any]],
               load: Callable[[dict[str, Any]], T]) -> T:
    """``run()`` once per ``(owner_id, key)``; a retry gets ``load(stored answer)``.

    ``operation`` names what is done and to what (``"benefit_session.close:<id>"``), so a
    key reused for another call is refused (422 ``idempotency_key_reused``) like one reused
    with another body. Without a key, ``run()`` simply runs."""
    return idempotent_claim(session, owner_id=owner_id, key=key, operation=operation,
                            body=body, now=now, run=lambda claim: run(), dump=dump,
                            load=load)


def idempotent_claim(session: Session, *, owner_id: uuid.UUID, key: str | None,
                     operation: str, body: Mapping[str, Any], now: datetime,
                     run: Callable[[Claim | None], T], dump: Callable[[T], dict[str, Any]],
                     load: Callable[[dict[str, Any]], T]) -> T:
    """:func:`idempotent`, with ``run`` given the :class:`Claim` (None without a key) so
    that it may store the answer in its own statement."""
    if key is None:
        return run(None)
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed.at("Idempotency-Key",
                                  f"must be 1 to {MAX_KEY_LENGTH} printable characters",
                                  location="headers")
    digest = fingerprint(operation, body)
    conn = session.connection()  # Core on the connection: no ORM DML layer on every write
    inserted = conn.execute(_claim_statement(session), {
        "owner_id": owner_id, "key": key, "operation": operation, "fingerprint": digest,
        "created_at": now}).first()
    if inserted is None:
        prior = session.scalar(select(IdempotentRequest).where(
            IdempotentRequest.owner_id == owner_id, IdempotentRequest.key == key))
        if prior is None or prior.response is None:  # gone or still in flight elsewhere
            raise _reused() from None
        if prior.operation != operation or prior.fingerprint != digest:
            raise _reused() from None
        return load(prior.response)
    claim = Claim(owner_id, key)
    result = run(claim)
    if not claim.is_stored:
        conn.execute(claim.answer_update(dump(result)))
    return result


def purge(session: Session, now: datetime) -> int:
    """Forget keys older than :data:`KEEP_FOR`."""
    result = session.execute(delete(IdempotentRequest).where(
        IdempotentRequest.created_at < now - KEEP_FOR))
    return int(result.rowcount)  # type: ignore[attr-defined]
