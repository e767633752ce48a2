"""Delivery state: leasing due deliveries, recording attempts, the retry schedule, disabling
an endpoint without losing anything, replay and recover.

A delivery is ``pending`` (due at ``next_attempt_at``), ``paused`` (its endpoint is disabled),
``delivered`` or ``dead`` (the schedule is exhausted; recoverable). A worker *leases* a due
delivery by setting ``leased_until``; the value it set is its lease token: an attempt's result
changes the delivery only while the token still matches, so a worker whose lease ran out (it
was killed, or stalled) never overwrites the work of the worker that took over. The attempt
itself is always recorded.

Every function here runs in the caller's unit of work and never commits.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import (
    CursorResult,
    Integer,
    Uuid,
    and_,
    bindparam,
    column,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from xinyi.deps import Deps
from xinyi.outbox.service import emit
from xinyi.uow import after_commit
from xinyi.webhooks.endpoints import secrets_of, set_enabled
from xinyi.webhooks.feed import body_of, message_id
from xinyi.webhooks.models import PartnerEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from xinyi.webhooks.sending import KEPT_BODY_BYTES, Outcome

log = logging.getLogger(__name__)

# Wait before attempt n+1 after attempt n failed: attempt 1 is immediate, then 5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h, 10 h; a failure of attempt 8 makes the delivery dead.
RETRY_DELAYS_S: tuple[int, ...] = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600,
                                   10 * 3600)
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1
JITTER = 0.2
FAILING_DISABLE_AFTER = timedelta(days=5)
MIN_RETRY_AFTER_S = 1.0

DEAD_LETTERS = Counter("xinyi_webhook_dead_letters",
                       "Webhook deliveries whose retry schedule ran out (dead letters)")
ATTEMPTS = Counter("xinyi_webhook_attempts", "Webhook delivery attempts", ["result"])

_rng = random.SystemRandom()
_ATTEMPTS: Any = WebhookAttempt.__table__
_DELIVERIES: Any = WebhookDelivery.__table__
_EVENTS: Any = PartnerEvent.__table__
_ENDPOINTS: Any = WebhookEndpoint.__table__


def retry_delay(attempts_made: int, *, retry_after_s: float | None = None,
                rng: random.Random = _rng) -> timedelta | None:
    """How long after ``attempts_made`` failed attempts the next one is due, with ±20 %
    jitter; None when the schedule is exhausted. A receiver's ``Retry-After`` (already capped
    at one hour) replaces the schedule's wait."""
    if attempts_made >= MAX_ATTEMPTS:
        return None
    if retry_after_s is not None:
        return timedelta(seconds=max(MIN_RETRY_AFTER_S, retry_after_s))
    base = RETRY_DELAYS_S[attempts_made - 1]
    return timedelta(seconds=base * rng.uniform(1 - JITTER, 1 + JITTER))


@dataclass(frozen=True, slots=True)
class Job:
    """One leased attempt, with everything the sender needs and nothing it must look up."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    partner_id: uuid.UUID
    msg_id: str
    url: str
    secrets: tuple[str, ...]
    body: bytes
    rate_limit_per_s: int
    lease: datetime  # the lease token: the leased_until this worker set


def _ranked_candidates() -> Any:
    """Elsewhere than PostgreSQL (SQLite): rank every due row per endpoint, the same choice
    as :func:`_pg_lease`."""
    d, e = WebhookDelivery, WebhookEndpoint
    now = bindparam("now", type_=d.next_attempt_at.type)
    rank = func.row_number().over(partition_by=d.endpoint_id,
                                  order_by=(d.next_attempt_at, d.seq)).label("rank")
    ranked = (select(d.id, d.endpoint_id, rank, d.next_attempt_at.label("due"), d.seq)
              .join(e, e.id == d.endpoint_id)
              .where(d.status == "pending", d.next_attempt_at <= now,
                     or_(d.leased_until.is_(None), d.leased_until < now),
                     e.enabled.is_(True), e.deleted_at.is_(None),
                     d.endpoint_id.not_in(bindparam("full", expanding=True)))
              .subquery())
    return (select(ranked.c.id, ranked.c.endpoint_id)
            .where(ranked.c.rank <= bindparam("k"))
            .order_by(ranked.c.due, ranked.c.seq).limit(bindparam("n")))


_STATEMENTS: dict[str, Any] = {}


def _candidates(session: Session, now: datetime, limit: int, free: dict[uuid.UUID, int],
                per_endpoint: int) -> list[uuid.UUID]:
    """The ids to lease: up to ``per_endpoint`` (or the endpoint's entry in ``free``) of each
    enabled endpoint's due deliveries, in event order, oldest due first overall."""
    if "ranked" not in _STATEMENTS:
        _STATEMENTS["ranked"] = _ranked_candidates()
    full = [endpoint for endpoint, n in free.items() if n <= 0]
    rows = session.connection().execute(_STATEMENTS["ranked"], {
        "now": now, "k": per_endpoint, "full": full, "n": limit * 2}).all()
    taken: Tally[uuid.UUID] = Tally()
    chosen = []
    for row in rows:  # each endpoint's rows come in its own order: count them as they come
        taken[row.endpoint_id] += 1
        if taken[row.endpoint_id] <= free.get(row.endpoint_id, per_endpoint):
            chosen.append(row.id)
    return chosen[:limit]


def _pg_lease() -> Any:
    """PostgreSQL, one statement: for each enabled endpoint, its first due deliveries in
    order (``LATERAL … LIMIT`` its room, read from ``ix_webhook_deliveries_lease``), locked
    with ``FOR UPDATE SKIP LOCKED`` (rows another worker holds are passed over and the next
    ones taken), stamped with the lease token, and returned with what sending needs of the
    event and the endpoint. The endpoints with less than the default room ``k`` come as two
    arrays (``room_ids``, ``room_free``), so the statement is built and compiled once."""
    d, ev, ep = _DELIVERIES, _EVENTS, _ENDPOINTS
    due, owner = d.alias("due"), ep.alias("owner")
    now = bindparam("now", type_=d.c.next_attempt_at.type)
    rooms = func.unnest(bindparam("room_ids", type_=ARRAY(Uuid())),
                        bindparam("room_free", type_=ARRAY(Integer()))).table_valued(
        column("endpoint_id", Uuid()), column("free", Integer())).render_derived("room")
    each = func.coalesce(rooms.c.free, bindparam("k", type_=Integer()))
    first = (select(due.c.id, due.c.next_attempt_at, due.c.seq)
             .where(due.c.endpoint_id == owner.c.id, due.c.status == "pending",
                    due.c.next_attempt_at <= now,
                    or_(due.c.leased_until.is_(None), due.c.leased_until < now))
             .order_by(due.c.next_attempt_at, due.c.seq).limit(each)
             .with_for_update(skip_locked=True, of=due).lateral("first_due"))
    pick: Any = (select(first.c.id).select_from(owner)
                 .outerjoin(rooms, rooms.c.endpoint_id == owner.c.id))
    chosen = (pick.join(first, true())
              .where(owner.c.enabled.is_(True), owner.c.deleted_at.is_(None))
              .order_by(first.c.next_attempt_at, first.c.seq).limit(bindparam("n"))
              .subquery("chosen"))
    return (update(d).where(d.c.id == chosen.c.id, ev.c.id == d.c.event_id,
                            ep.c.id == d.c.endpoint_id)
            .values(leased_until=bindparam("token", type_=d.c.leased_until.type))
            .returning(d.c.id, d.c.endpoint_id, d.c.next_attempt_at, d.c.seq,
                       ev.c.id.label("event_id"), ev.c.type, ev.c.created_at, ev.c.payload,
                       ev.c.version, ep.c.partner_id, ep.c.url, ep.c.rate_limit_per_s,
                       ep.c.secret_enc, ep.c.previous_secret_enc, ep.c.previous_secret_until))


def lease_due(session: Session, deps: Deps, *, now: datetime, limit: int,
              free_per_endpoint: dict[uuid.UUID, int] | None = None,
              per_endpoint: int = 4) -> list[Job]:
    """Lease up to ``limit`` due deliveries, at most ``per_endpoint`` (or that endpoint's
    entry in ``free_per_endpoint``) per endpoint, oldest due first and in event order within
    an endpoint. On PostgreSQL rows another worker holds are skipped (``FOR UPDATE SKIP
    LOCKED``), so any number of workers lease at once without sending one twice.

    On PostgreSQL one statement (:func:`_pg_lease`) whatever the number leased; elsewhere
    the choice, an ``UPDATE … RETURNING`` and a read of the events and endpoints."""
    if limit <= 0:
        return []
    free = free_per_endpoint or {}
    token = now + timedelta(seconds=deps.settings.webhook_lease_seconds)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        if "lease" not in _STATEMENTS:
            _STATEMENTS["lease"] = _pg_lease()
        room = sorted((endpoint, max(0, n)) for endpoint, n in free.items()
                      if n < per_endpoint)
        rows = connection.execute(_STATEMENTS["lease"], {
            "now": now, "k": per_endpoint, "n": limit, "token": token,
            "room_ids": [e for e, _n in room], "room_free": [n for _e, n in room]}).all()
    else:
        rows = _lease_elsewhere(session, now, limit, free, per_endpoint, token)
    secrets: dict[uuid.UUID, tuple[str, ...]] = {}
    jobs = []
    for row in sorted(rows, key=lambda r: (r.next_attempt_at, r.seq)):
        if row.endpoint_id not in secrets:
            secrets[row.endpoint_id] = tuple(secrets_of(
                deps, row.secret_enc, row.previous_secret_enc, row.previous_secret_until, now))
        jobs.append(Job(row.id, row.endpoint_id, row.partner_id, message_id(row.event_id),
                        row.url, secrets[row.endpoint_id],
                        body_of(row.event_id, row.type, row.created_at, row.payload, row.seq,
                                row.version),
                        row.rate_limit_per_s, token))
    return jobs


def _lease_elsewhere(session: Session, now: datetime, limit: int, free: dict[uuid.UUID, int],
                     per_endpoint: int, token: datetime) -> list[Any]:
    chosen = _candidates(session, now, limit, free, per_endpoint)
    if not chosen:
        return []
    d, ev, ep = _DELIVERIES, _EVENTS, _ENDPOINTS
    connection = session.connection()
    lockable = (select(d.c.id).where(d.c.id.in_(chosen), d.c.status == "pending",
                                     d.c.next_attempt_at <= now,
                                     or_(d.c.leased_until.is_(None), d.c.leased_until < now))
                .with_for_update(skip_locked=True))
    leased = connection.execute(
        update(d).where(d.c.id.in_(lockable.scalar_subquery())).values(leased_until=token)
        .returning(d.c.id)).scalars().all()
    if not leased:
        return []
    return list(connection.execute(
        select(d.c.id, d.c.endpoint_id, d.c.next_attempt_at, d.c.seq,
               ev.c.id.label("event_id"), ev.c.type, ev.c.created_at, ev.c.payload,
               ev.c.version, ep.c.partner_id, ep.c.url, ep.c.rate_limit_per_s,
               ep.c.secret_enc, ep.c.previous_secret_enc, ep.c.previous_secret_until)
        .join(ev, ev.c.id == d.c.event_id).join(ep, ep.c.id == d.c.endpoint_id)
        .where(d.c.id.in_(leased))).all())


def _count(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def release(session: Session, jobs: Iterable[Job]) -> int:
    """Give back leases that will not be used (the worker is stopping, or held a job too
    long to start it safely): due again at once for any worker."""
    done = 0
    for job in jobs:
        done += _count(session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == job.delivery_id,
                   WebhookDelivery.leased_until == job.lease)
            .values(leased_until=None)))
    return done


@dataclass(frozen=True, slots=True)
class Finished:
    """One attempt that got its outcome and waits to be recorded."""

    job: Job
    outcome: Outcome
    started_at: datetime


def record_attempt(session: Session, deps: Deps, job: Job, outcome: Outcome, *,
                   started_at: datetime, now: datetime) -> str:
    """Keep the attempt and move the delivery on; returns the delivery's status afterwards
    (or ``stale`` when another worker's lease had replaced ours: the attempt is kept, the
    delivery is theirs to move)."""
    return record_attempts(session, deps, [Finished(job, outcome, started_at)], now=now)[0]


def record_attempts(session: Session, deps: Deps, finished: Sequence[Finished], *,
                    now: datetime) -> list[str]:
    """Record many finished attempts in the caller's unit: each delivery's status afterwards,
    in the order given (``stale`` where another worker's lease had replaced ours).

    The same as recording them one after the other, in a handful of statements: the
    deliveries are locked in one query (in id order, so two workers never deadlock on them),
    the attempts inserted together, the successes to endpoints with no failure in the batch
    marked delivered set-based (one ``UPDATE`` per status code), and those endpoints cleared of
    ``failing_since`` in one statement. An endpoint with a failure in the batch is locked (in
    id order, after the deliveries, as a single record does) and its attempts are applied in
    the order they started, so its ``failing_since`` and the disable rules come out exactly as
    one at a time."""
    if not finished:
        return []
    connection = session.connection()
    locked = {row.id: row for row in connection.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempts, WebhookDelivery.leased_until)
        .where(WebhookDelivery.id.in_({f.job.delivery_id for f in finished}))
        .order_by(WebhookDelivery.id).with_for_update())}
    made = {delivery_id: row.attempts for delivery_id, row in locked.items()}
    lease = {delivery_id: row.leased_until for delivery_id, row in locked.items()}
    statuses: dict[int, str] = {}
    rows: list[dict[str, object]] = []
    live: list[tuple[int, Finished, int]] = []
    for index, item in enumerate(finished):
        delivery_id, outcome = item.job.delivery_id, item.outcome
        number = made[delivery_id] + 1
        rows.append({"id": uuid.uuid4(), "delivery_id": delivery_id, "number": number,
                     "started_at": item.started_at, "duration_ms": outcome.duration_ms,
                     "status_code": outcome.status_code, "error": outcome.error,
                     "response_body": outcome.body[:KEPT_BODY_BYTES]})
        if lease[delivery_id] != item.job.lease:
            statuses[index] = "stale"
            continue
        # A lease token is never None: a second attempt of this delivery in the batch is stale.
        made[delivery_id], lease[delivery_id] = number, None
        live.append((index, item, number))
    connection.execute(insert(_ATTEMPTS), rows)
    ok = sum(1 for item in finished if item.outcome.ok)
    ATTEMPTS.labels("ok").inc(ok)
    ATTEMPTS.labels("failed").inc(len(finished) - ok)
    failing = {item.job.endpoint_id for _i, item, _n in live if not item.outcome.ok}
    cleared: set[uuid.UUID] = set()
    by_code: dict[int | None, list[uuid.UUID]] = {}
    mixed: list[tuple[int, Finished, int]] = []
    for index, item, number in live:
        if item.outcome.ok and item.job.endpoint_id not in failing:
            by_code.setdefault(item.outcome.status_code, []).append(item.job.delivery_id)
            statuses[index] = "delivered"
            cleared.add(item.job.endpoint_id)
        else:
            mixed.append((index, item, number))
    table: Any = WebhookDelivery.__table__
    for code, ids in by_code.items():
        # Locked above and still ours (the token matched): one statement for all of them.
        connection.execute(update(table).where(table.c.id.in_(ids)).values(
            attempts=table.c.attempts + 1, leased_until=None, last_status_code=code,
            status="delivered", delivered_at=now, next_attempt_at=None))
    if cleared:
        # Only an endpoint that was failing is written (and locked): successes to a healthy
        # endpoint never queue behind each other on its row.
        endpoints_table: Any = WebhookEndpoint.__table__
        connection.execute(update(endpoints_table)
                           .where(endpoints_table.c.id.in_(cleared),
                                  endpoints_table.c.failing_since.is_not(None))
                           .values(failing_since=None))
    if mixed:
        deliveries = {d.id: d for d in session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.id.in_({item.job.delivery_id for _i, item, _n in mixed})))}
        endpoints = {e.id: e for e in session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.id.in_(failing))
            .order_by(WebhookEndpoint.id).with_for_update())}
        for index, item, number in sorted(mixed, key=lambda entry: (entry[1].started_at,
                                                                    entry[0])):
            delivery = deliveries[item.job.delivery_id]
            delivery.attempts, delivery.leased_until = number, None
            delivery.last_status_code = item.outcome.status_code
            endpoint = endpoints[delivery.endpoint_id]
            if item.outcome.ok:
                _delivered(delivery, now)
                endpoint.failing_since = None
            else:
                _failed(session, delivery, endpoint, item, now)
            statuses[index] = delivery.status
    return [statuses[index] for index in range(len(finished))]


def _delivered(delivery: WebhookDelivery, now: datetime) -> None:
    delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None


def _failed(session: Session, delivery: WebhookDelivery, endpoint: WebhookEndpoint,
            item: Finished, now: datetime) -> None:
    outcome = item.outcome
    if endpoint.failing_since is None:
        endpoint.failing_since = item.started_at
    if outcome.status_code == 410 and endpoint.enabled:
        disable_endpoint(session, endpoint, "gone", now=now)
    elif endpoint.enabled and endpoint.failing_since <= now - FAILING_DISABLE_AFTER:
        disable_endpoint(session, endpoint, "failing", now=now)
    wait = retry_delay(delivery.attempts, retry_after_s=outcome.retry_after_s)
    if wait is None:
        delivery.status, delivery.next_attempt_at = "dead", None
        after_commit(session, DEAD_LETTERS.inc)
        log.warning("webhook delivery dead", extra={
            "event": "webhook_dead_letter", "delivery_id": str(delivery.id),
            "endpoint_id": str(delivery.endpoint_id), "attempts": delivery.attempts})
    else:
        delivery.status = "pending" if endpoint.enabled else "paused"
        delivery.next_attempt_at = now + wait if endpoint.enabled else None


def disable_endpoint(session: Session, endpoint: WebhookEndpoint, reason: str, *,
                     now: datetime) -> None:
    """Disable ``endpoint`` (``gone``: it answered 410; ``failing``: every attempt failed for
    5 days), keep its deliveries paused, and tell the partner through its feed: an
    ``endpoint.disabled`` event (its other enabled endpoints receive it)."""
    set_enabled(session, endpoint, False, now, reason)
    emit(session, "endpoint.disabled",
         {"endpoint_id": str(endpoint.id), "reason": reason,
          "disabled_at": now.isoformat().replace("+00:00", "Z")},
         now=now, partner_id=endpoint.partner_id)
    log.warning("webhook endpoint disabled", extra={
        "event": "webhook_endpoint_disabled", "endpoint_id": str(endpoint.id),
        "reason": reason})


def _requeue(delivery: WebhookDelivery, endpoint: WebhookEndpoint, now: datetime) -> None:
    delivery.status = "pending" if endpoint.enabled else "paused"
    delivery.next_attempt_at = now


def replay(session: Session, delivery: WebhookDelivery, endpoint: WebhookEndpoint, *,
           now: datetime) -> WebhookDelivery:
    """Send again with the same webhook-id: a new attempt due now, whatever the status
    (paused while the endpoint is disabled). The schedule goes on from the attempts made: a
    delivery past its schedule gets one attempt per replay."""
    _requeue(delivery, endpoint, now)
    return delivery


def recover(session: Session, endpoint: WebhookEndpoint, *, since: datetime,
            now: datetime) -> int:
    """Re-queue every dead delivery of ``endpoint`` created since ``since``, and every
    pending one that has failed at least once (due now instead of at its scheduled retry)."""
    status = "pending" if endpoint.enabled else "paused"
    return _count(session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id,
               WebhookDelivery.created_at >= since,
               or_(WebhookDelivery.status == "dead",
                   and_(WebhookDelivery.status.in_(("pending", "paused")),
                        WebhookDelivery.attempts > 0)))
        .values(status=status, next_attempt_at=now)))


def attempts_of(session: Session, delivery_ids: Sequence[uuid.UUID],
                ) -> dict[uuid.UUID, list[WebhookAttempt]]:
    found: dict[uuid.UUID, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
    if delivery_ids:
        for attempt in session.scalars(
                select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids))
                .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number,
                          WebhookAttempt.started_at)):
            found[attempt.delivery_id].append(attempt)
    return found
