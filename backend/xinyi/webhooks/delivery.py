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
    ColumnElement,
    CursorResult,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from xinyi.deps import Deps
from xinyi.outbox.service import emit
from xinyi.uow import after_commit
from xinyi.webhooks.endpoints import set_enabled, signing_secrets
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


def _due(now: datetime) -> list[ColumnElement[bool]]:
    return [WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now)]


def _lateral_candidates() -> Any:
    """PostgreSQL: for each enabled endpoint with room, its first ``k`` due deliveries, read
    in order from ``ix_webhook_deliveries_lease`` (``LATERAL … LIMIT k``): the cost follows
    what is leased, not how many rows are due. Built once, with bound parameters."""
    d, e = WebhookDelivery, WebhookEndpoint
    now = bindparam("now", type_=d.next_attempt_at.type)
    first = (select(d.id, d.endpoint_id, d.next_attempt_at.label("due"), d.seq)
             .where(d.endpoint_id == e.id, d.status == "pending", d.next_attempt_at <= now,
                    or_(d.leased_until.is_(None), d.leased_until < now))
             .order_by(d.next_attempt_at, d.seq).limit(bindparam("k"))
             .lateral("first_due"))
    return (select(first.c.id, first.c.endpoint_id)
            .select_from(e).join(first, true())
            .where(e.enabled.is_(True), e.deleted_at.is_(None),
                   e.id.not_in(bindparam("full", expanding=True)))
            .order_by(first.c.due, first.c.seq).limit(bindparam("n")))


def _ranked_candidates() -> Any:
    """Elsewhere (SQLite): rank every due row per endpoint, the same choice."""
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
    dialect = session.get_bind().dialect.name
    if dialect not in _STATEMENTS:
        _STATEMENTS[dialect] = (_lateral_candidates() if dialect == "postgresql"
                                else _ranked_candidates())
    full = [endpoint for endpoint, n in free.items() if n <= 0]
    rows = session.connection().execute(_STATEMENTS[dialect], {
        "now": now, "k": per_endpoint, "full": full, "n": limit * 2}).all()
    taken: Tally[uuid.UUID] = Tally()
    chosen = []
    for row in rows:  # each endpoint's rows come in its own order: count them as they come
        taken[row.endpoint_id] += 1
        if taken[row.endpoint_id] <= free.get(row.endpoint_id, per_endpoint):
            chosen.append(row.id)
    return chosen[:limit]


def lease_due(session: Session, deps: Deps, *, now: datetime, limit: int,
              free_per_endpoint: dict[uuid.UUID, int] | None = None,
              per_endpoint: int = 4) -> list[Job]:
    """Lease up to ``limit`` due deliveries, at most ``per_endpoint`` (or that endpoint's
    entry in ``free_per_endpoint``) per endpoint, oldest due first and in event order within
    an endpoint. On PostgreSQL rows another worker holds are skipped (``FOR UPDATE SKIP
    LOCKED``), so any number of workers lease at once without sending one twice.

    Three statements whatever the number leased: the choice, one ``UPDATE … RETURNING`` that
    locks (skipping what another worker holds) and stamps the lease token, and one read of
    the events and endpoints the jobs need (rows, not ORM objects)."""
    if limit <= 0:
        return []
    chosen = _candidates(session, now, limit, free_per_endpoint or {}, per_endpoint)
    if not chosen:
        return []
    token = now + timedelta(seconds=deps.settings.webhook_lease_seconds)
    deliveries: Any = WebhookDelivery.__table__
    lockable = (select(WebhookDelivery.id).where(WebhookDelivery.id.in_(chosen), *_due(now))
                .with_for_update(skip_locked=True))
    leased = session.connection().execute(
        update(deliveries).where(deliveries.c.id.in_(lockable.scalar_subquery()))
        .values(leased_until=token)
        .returning(deliveries.c.id, deliveries.c.endpoint_id, deliveries.c.event_id,
                   deliveries.c.next_attempt_at, deliveries.c.seq)).all()
    if not leased:
        return []
    events = {row.id: row for row in session.connection().execute(
        select(PartnerEvent.id, PartnerEvent.type, PartnerEvent.created_at,
               PartnerEvent.payload, PartnerEvent.seq, PartnerEvent.version)
        .where(PartnerEvent.id.in_({row.event_id for row in leased})))}
    endpoints = {e.id: e for e in session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.id.in_({row.endpoint_id for row in leased})))}
    secrets = {eid: tuple(signing_secrets(deps, ep, now)) for eid, ep in endpoints.items()}
    jobs = []
    for row in sorted(leased, key=lambda r: (r.next_attempt_at, r.seq)):
        event, endpoint = events[row.event_id], endpoints[row.endpoint_id]
        jobs.append(Job(row.id, endpoint.id, endpoint.partner_id, message_id(event.id),
                        endpoint.url, secrets[endpoint.id],
                        body_of(event.id, event.type, event.created_at, event.payload,
                                event.seq, event.version),
                        endpoint.rate_limit_per_s, token))
    return jobs


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
