"""The delivery loop that ``xinyi worker`` runs: lease due deliveries, send them on a thread
pool, record each attempt.

Fairness: at most ``webhook_in_flight_per_endpoint`` requests per endpoint, and each
endpoint's ``rate_limit_per_s``, so a slow or dead endpoint occupies a few threads and never
the whole pool. The rate limit is shared by all workers through Redis (permits taken a few at
a time, :meth:`EndpointRateLimit.take`); with Redis unreachable each worker falls back to an
in-process limit (deliveries go on, each worker keeping the rate on its own) and tries Redis
again a few seconds later.

Leasing runs ahead: each endpoint has up to ``LEASE_AHEAD`` times its in-flight cap leased,
the ones not in flight held in order. A pool thread that finishes a successful attempt goes
on at once with its endpoint's next held job, so a send slot never waits for the leasing
thread, which only tops the queues up (in rounds of at least half a pool, one statement on
PostgreSQL). A failed attempt keeps its endpoint's slot and stops the endpoint until it is
recorded (the next attempt there must know whether this one disabled it); its held jobs are
then given back and leased again only if the endpoint is still enabled. A job is started only
while its lease has more than one full attempt (15 s) plus a margin left, so a lease never
runs out under a request in flight and two workers never send the same delivery at once; held
jobs whose lease got too short are given back.

The loop polls every ``idle_seconds`` when there is nothing to do and leases again as soon as
enough attempts finish when busy.

Finished attempts are recorded by one recorder thread, in batches: everything that finished
while the previous batch was being written goes into the next unit of work
(:func:`~xinyi.webhooks.delivery.record_attempts`), still guarded by each lease token. A pool
thread hands its outcome over and takes the next request at once. A batch that fails is
recorded again one attempt per unit, each retried a few times; an attempt that still cannot be
recorded is sent again once its lease runs out (same webhook-id).
"""

from __future__ import annotations

import logging
import queue as queues_
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import redis
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from xinyi.deps import Deps
from xinyi.errors import ServiceUnavailable
from xinyi.kv import redis_options
from xinyi.logs import failure
from xinyi.uow import run_in_unit
from xinyi.webhooks.delivery import Finished, Job, lease_due, record_attempts, release
from xinyi.webhooks.sending import TOTAL_TIMEOUT_S, HttpSender, Outcome, signed_headers

log = logging.getLogger(__name__)

LEASE_MARGIN = timedelta(seconds=TOTAL_TIMEOUT_S + 3)
REDIS_RETRY_S = 5.0
PERMITS_MAX = 4
PERMIT_TTL_S = 0.1
RECORD_TRIES = 4
RECORD_BATCH_MAX = 500
RECORD_BACKLOG = 4
RECORD_BATCH_MIN = 64  # successes gathered for up to RECORD_GATHER_S into one unit
RECORD_GATHER_S = 0.02
LEASE_AHEAD = 4  # leased per endpoint (and in all): this many times what may be in flight

Dispatcher = Callable[[Deps], object]


class EndpointRateLimit:
    """``rate_limit_per_s`` per endpoint: shared through Redis, in-process when Redis is
    down (or not configured)."""

    def __init__(self, redis_url: str | None) -> None:
        self._shared = (FixedWindowRateLimiter(storage_from_string(redis_url, **redis_options()))
                        if redis_url else None)
        self._local = FixedWindowRateLimiter(MemoryStorage())
        self._shared_down_until = 0.0
        self._permits: dict[uuid.UUID, tuple[int, float]] = {}  # left, usable until
        self._permits_lock = threading.Lock()

    def take(self, endpoint_id: uuid.UUID, per_second: int) -> bool:
        """Whether one more request may start now. Permits are hit in Redis a few at a time
        (a fifth of the rate, at most ``PERMITS_MAX``) and the rest kept here for
        ``PERMIT_TTL_S``, so a busy endpoint costs one Redis round trip per few requests. A
        permit left over when the window turns may be used in the next one's first
        ``PERMIT_TTL_S``: at most ``PERMITS_MAX - 1`` requests beyond the rate, within what a
        fixed window already lets through at its edge; unused permits are lost (the limit
        errs on the slow side)."""
        now = time.monotonic()
        with self._permits_lock:
            left, until = self._permits.get(endpoint_id, (0, 0.0))
            if left > 0 and now < until:
                self._permits[endpoint_id] = (left - 1, until)
                return True
        grant = max(1, min(PERMITS_MAX, per_second // 5))
        if not self.allow(endpoint_id, per_second, cost=grant):
            return False
        if grant > 1:
            with self._permits_lock:
                self._permits[endpoint_id] = (grant - 1, now + PERMIT_TTL_S)
        return True

    @property
    def shared(self) -> bool:
        return self._shared is not None and time.monotonic() >= self._shared_down_until

    def allow(self, endpoint_id: uuid.UUID, per_second: int, cost: int = 1) -> bool:
        """Whether ``cost`` more requests fit in this second's window (all or none; a refused
        hit still counts, so the limit errs on the slow side)."""
        item = RateLimitItemPerSecond(max(1, per_second))
        if self._shared is not None and time.monotonic() >= self._shared_down_until:
            try:
                return bool(self._shared.hit(item, "xinyi-webhook", str(endpoint_id),
                                             cost=cost))
            except (redis.exceptions.RedisError, OSError, ServiceUnavailable) as exc:
                self._shared_down_until = time.monotonic() + REDIS_RETRY_S
                log.warning("webhook rate limit: Redis unreachable (%s), limiting in-process",
                            type(exc).__name__, extra={"event": "webhook_ratelimit_local"})
        return bool(self._local.hit(item, "xinyi-webhook", str(endpoint_id), cost=cost))


def no_dispatcher(_deps: Deps) -> None:
    """Hook point: the dispatcher that turns outbox events into partner events and
    deliveries runs here, once per round, when it is part of the build."""


class DeliveryLoop:
    def __init__(self, deps: Deps, *, sender: HttpSender | None = None,
                 dispatch: Dispatcher = no_dispatcher, concurrency: int | None = None,
                 per_endpoint: int | None = None) -> None:
        settings = deps.settings
        self.deps = deps
        self.concurrency = concurrency or settings.webhook_concurrency
        self.per_endpoint = per_endpoint or settings.webhook_in_flight_per_endpoint
        # Leased ahead: up to twice as many jobs waiting for their turn per endpoint as may
        # be in flight, so its pool threads go on without waiting for a lease round.
        self.depth = LEASE_AHEAD * self.per_endpoint
        self.sender = sender or HttpSender(allow_private=settings.webhook_allow_private,
                                           require_https=settings.webhook_https_only,
                                           max_connections_per_host=self.per_endpoint)
        self.dispatch = dispatch
        self.limits = EndpointRateLimit(settings.redis_url)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook")
        self._lock = threading.Lock()
        # Per endpoint: requests in flight, plus failed attempts not yet recorded.
        self._in_flight: Counter[uuid.UUID] = Counter()
        # Per endpoint: failed attempts not yet recorded. Nothing more starts there until
        # they are (the next attempt must know whether the endpoint was disabled).
        self._blocked: Counter[uuid.UUID] = Counter()
        self._held: dict[uuid.UUID, deque[Job]] = {}
        self._expired: list[Job] = []
        self._wake = threading.Event()
        # A lease query costs about the same for 8 rows as for 64: lease in rounds of at
        # least this many.
        self._batch = max(1, self.concurrency // 2)
        self.sent = 0
        # Finished attempts waiting for the recorder (None: stop once all before it are in).
        self._finished: queues_.SimpleQueue[Finished | None] = queues_.SimpleQueue()
        self._recording = 0
        self._recorder = threading.Thread(target=self._record_forever, daemon=True,
                                          name="webhook-recorder")
        self._recorder.start()
        self._closing = False
        self._closed = False

    # -- state -------------------------------------------------------------------------
    def busy(self) -> bool:
        with self._lock:
            return (bool(+self._in_flight) or any(self._held.values()) or self._recording > 0
                    or bool(self._expired))

    def _sending(self) -> int:
        """Requests in flight (held under ``_lock``): at most one per pool thread."""
        return sum(self._in_flight.values()) - sum(self._blocked.values())

    def _free(self) -> tuple[int, dict[uuid.UUID, int]]:
        """How many more to lease in all, and per endpoint already busy (an endpoint not
        listed may take ``depth``)."""
        with self._lock:
            endpoints = set(self._in_flight) | set(self._held)
            free = {ep: (0 if self._blocked[ep] else
                         self.depth - self._in_flight[ep] - len(self._held.get(ep, ())))
                    for ep in endpoints}
            # A successful attempt waiting for the recorder holds nothing: up to
            # ``RECORD_BACKLOG`` pools' worth may wait (a commit of a big batch takes a while);
            # beyond that, leasing waits for the recorder to catch up.
            used = (self._sending() + sum(len(q) for q in self._held.values())
                    + max(0, self._recording - RECORD_BACKLOG * self.concurrency))
        return LEASE_AHEAD * self.concurrency - used, free

    # -- one round ---------------------------------------------------------------------
    def step(self) -> int:
        """Dispatch, start the held jobs whose turn has come, lease more for the free
        capacity (each endpoint gets as many waiting as it may have in flight, so a pool
        thread that finishes one goes on with the next at once). Returns how many attempts
        it started."""
        self.dispatch(self.deps)
        now = self.deps.clock()
        started = self._start_held(now)
        self._release_expired()
        free_total, free = self._free()
        if free_total <= 0 or (free_total < self._batch and self.busy()):
            return started  # a lease query for a handful: wait for a few more to finish
        jobs = run_in_unit(self.deps.db.sessions, lambda session: lease_due(
            session, self.deps, now=now, limit=free_total, free_per_endpoint=free,
            per_endpoint=self.depth))
        by_endpoint: dict[uuid.UUID, list[Job]] = {}
        for job in jobs:
            by_endpoint.setdefault(job.endpoint_id, []).append(job)
        for group in by_endpoint.values():
            started += self._start_group(group, now)
        return started

    def _start_group(self, group: list[Job], now: datetime) -> int:
        """Start as many of one endpoint's newly leased jobs (in order) as it has room for,
        with one rate-limit hit for all of them; the rest wait held, in order, behind any
        already held for that endpoint."""
        endpoint_id = group[0].endpoint_id
        with self._lock:
            room = 0 if self._held.get(endpoint_id) or self._blocked[endpoint_id] else min(
                self.per_endpoint - self._in_flight[endpoint_id],
                self.concurrency - self._sending())
            ready = group[:max(0, room)] if group[0].lease - now >= LEASE_MARGIN else []
            self._in_flight[endpoint_id] += len(ready)  # reserved before the hit
        if ready and not self.limits.allow(endpoint_id, ready[0].rate_limit_per_s,
                                           cost=len(ready)):
            self._unreserve(endpoint_id, len(ready))
            ready = []
        for job in ready:
            self._pool.submit(self._attempt, job)
        if len(ready) < len(group):
            with self._lock:
                self._held.setdefault(endpoint_id, deque()).extend(group[len(ready):])
        return len(ready)

    def _start_held(self, now: datetime) -> int:
        started = 0
        with self._lock:
            endpoints = list(self._held)
        for endpoint_id in endpoints:
            while (job := self._take(endpoint_id, now)) is not None:
                self._pool.submit(self._attempt, job)
                started += 1
        return started

    def _take(self, endpoint_id: uuid.UUID, now: datetime) -> Job | None:
        """The next held job of this endpoint, if it may start now (room, lease, rate
        limit), counted in flight; None otherwise. Jobs whose lease is too short to start
        go to be released."""
        with self._lock:
            queue = self._held.get(endpoint_id)
            while queue and queue[0].lease - now < LEASE_MARGIN:
                self._expired.append(queue.popleft())
            if (not queue or self._closing or self._blocked[endpoint_id]
                    or self._in_flight[endpoint_id] >= self.per_endpoint
                    or self._sending() >= self.concurrency):
                if queue is not None and not queue:
                    del self._held[endpoint_id]
                return None
            job = queue.popleft()
            if not queue:
                del self._held[endpoint_id]
            self._in_flight[endpoint_id] += 1
        if self.limits.take(endpoint_id, job.rate_limit_per_s):
            return job
        with self._lock:  # not this second: back to the front of its queue
            self._held.setdefault(endpoint_id, deque()).appendleft(job)
        self._unreserve(endpoint_id, 1)
        return None

    def _unreserve(self, endpoint_id: uuid.UUID, n: int) -> None:
        with self._lock:
            self._in_flight[endpoint_id] -= n
            if self._in_flight[endpoint_id] <= 0:
                del self._in_flight[endpoint_id]

    def _release_expired(self) -> None:
        with self._lock:
            expired, self._expired = self._expired, []
        if expired:
            run_in_unit(self.deps.db.sessions, lambda session: release(session, expired))

    # -- attempts (a pool thread) --------------------------------------------------------
    def _attempt(self, job: Job) -> None:
        """Send ``job``, hand the outcome to the recorder, and go on with the endpoint's next
        held job while there is one that may start (no wait for the leasing thread)."""
        next_job: Job | None = job
        while next_job is not None:
            next_job = self._attempt_one(next_job)

    def _attempt_one(self, job: Job) -> Job | None:
        endpoint_id = job.endpoint_id
        try:
            finished = self._send(job)
        except BaseException:
            self._unreserve(endpoint_id, 1)
            self._wake.set()
            raise
        ok = finished.outcome.ok
        with self._lock:
            self._recording += 1
            if not ok:
                # Still in flight for its endpoint until recorded, and nothing more starts
                # there meanwhile: the next attempt knows whether this one disabled it.
                self._blocked[endpoint_id] += 1
        if ok:
            self._unreserve(endpoint_id, 1)
        self._finished.put(finished)
        self._wake.set()
        return self._take(endpoint_id, self.deps.clock()) if ok else None

    def _send(self, job: Job) -> Finished:
        started_at = self.deps.clock()
        # The signature's timestamp is the real time: the receiver checks it against its own
        # clock to refuse replays, whatever clock the service runs on.
        headers = signed_headers(list(job.secrets), job.msg_id, datetime.now(UTC), job.body)
        try:
            outcome = self.sender.send(job.url, headers, job.body)
        except Exception as exc:  # a bug in sending must not lose the lease silently
            # The type and where, never the message: it could quote the URL.
            log.error("webhook send failed", extra={"event": "webhook_send_bug",
                                                    **failure(exc)})
            outcome = Outcome(None, 0, "", f"internal:{type(exc).__name__}"[:64])
        return Finished(job, outcome, started_at)

    def _recorded(self, batch: list[Finished]) -> None:
        """After a batch is written: the failures unblock their endpoints, whose held jobs
        are given back (leased again only if the endpoint is still enabled)."""
        dropped: list[Job] = []
        with self._lock:
            for item in batch:
                if item.outcome.ok:
                    continue
                endpoint_id = item.job.endpoint_id
                self._blocked[endpoint_id] -= 1
                if self._blocked[endpoint_id] <= 0:
                    del self._blocked[endpoint_id]
                dropped.extend(self._held.pop(endpoint_id, ()))
                self._in_flight[endpoint_id] -= 1
                if self._in_flight[endpoint_id] <= 0:
                    del self._in_flight[endpoint_id]
            self._recording -= len(batch)
            self.sent += len(batch)
        if dropped:
            try:
                run_in_unit(self.deps.db.sessions, lambda session: release(session, dropped))
            except Exception:
                log.warning("held webhook leases not released (they run out on their own)",
                            extra={"event": "webhook_release_failed"})

    # -- recording (the recorder thread) -------------------------------------------------
    def _record_forever(self) -> None:
        stopping = False
        while not stopping:
            first = self._finished.get()
            batch: list[Finished] = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
            # Successes hold no slot while they wait here: gather them for a moment into
            # fewer, bigger units. A failure is written at once (its endpoint waits for it).
            gather_until = time.monotonic() + RECORD_GATHER_S
            while len(batch) < RECORD_BATCH_MAX and not stopping:
                wait = (gather_until - time.monotonic()
                        if len(batch) < RECORD_BATCH_MIN and all(f.outcome.ok for f in batch)
                        else 0.0)
                try:
                    item = (self._finished.get(timeout=wait) if wait > 0
                            else self._finished.get_nowait())
                except queues_.Empty:
                    break
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            if not batch:
                continue
            try:
                self._record(batch)
            except Exception as exc:  # never let the recorder die: the leases would run out
                log.error("webhook attempts not recorded",
                          extra={"event": "webhook_record_failed", **failure(exc)})
            finally:
                self._recorded(batch)
                self._wake.set()

    def _record(self, batch: list[Finished]) -> None:
        try:
            run_in_unit(self.deps.db.sessions, lambda session: record_attempts(
                session, self.deps, batch, now=self.deps.clock()))
            return
        except Exception as exc:
            if len(batch) == 1:
                log.warning("webhook attempt not recorded, trying again (%s)",
                            type(exc).__name__, extra={"event": "webhook_record_retry"})
            else:
                log.warning("webhook attempts not recorded as a batch (%s), one at a time",
                            type(exc).__name__, extra={"event": "webhook_record_retry"})
        for item in batch:
            self._record_one(item)

    def _record_one(self, item: Finished) -> None:
        for attempt in range(RECORD_TRIES):
            time.sleep(0.2 * 2 ** attempt)
            try:
                run_in_unit(self.deps.db.sessions, lambda session: record_attempts(
                    session, self.deps, [item], now=self.deps.clock()))
                return
            except Exception as exc:
                if attempt == RECORD_TRIES - 1:
                    # The lease runs out and the delivery is sent again, same webhook-id.
                    log.error("webhook attempt not recorded",
                              extra={"event": "webhook_record_failed",
                                     "delivery_id": str(item.job.delivery_id), **failure(exc)})

    # -- running -----------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event, *, idle_seconds: float = 0.5) -> None:
        """Until ``stop`` is set: poll every ``idle_seconds`` when idle, drain when busy.
        Stopping waits for the attempts in flight (at most 15 s) and gives back held leases."""
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    started = self.step()
                except Exception as exc:
                    log.error("webhook delivery round failed",
                              extra={"event": "webhook_round_failed", **failure(exc)})
                    stop.wait(1.0)
                    continue
                free_total, _ = self._free()
                with self._lock:
                    held = bool(self._held)
                busy = self.busy()
                if started and free_total >= self._batch:
                    continue  # busy with room to spare: lease again at once
                if busy:
                    # Let a few attempts finish, then lease them all in one query rather
                    # than one query per finished attempt (pool threads go on with their
                    # endpoint's held jobs meanwhile).
                    stop.wait(0.005)
                    self._wake.wait(0.045 if held else 0.005)
                    continue
                self._wake.wait(idle_seconds)
        finally:
            self.close()

    def run_until_idle(self, *, timeout: float = 60.0) -> int:
        """Rounds until nothing is due, held or in flight (tests, ``worker --once``).
        Returns how many attempts were made."""
        deadline, before = time.monotonic() + timeout, self.sent
        while time.monotonic() < deadline:
            self._wake.clear()
            was_busy = self.busy()
            started = self.step()
            if not started and not was_busy and not self.busy():
                # The round saw all capacity free and leased nothing it must still start
                # (jobs held back by a rate limit start in a later round).
                return self.sent - before
            if not started:
                self._wake.wait(0.05)
        raise TimeoutError("deliveries still due or in flight")

    def close(self) -> None:
        self._closing = True  # pool threads finish their request and take no next one
        self._pool.shutdown(wait=True)
        if not self._closed:
            self._closed = True
            self._finished.put(None)  # every attempt finished before it is recorded first
            self._recorder.join()
        with self._lock:
            held = [job for queue in self._held.values() for job in queue] + self._expired
            self._held.clear()
            self._expired = []
        if held:
            try:
                run_in_unit(self.deps.db.sessions, lambda session: release(session, held))
            except Exception:
                log.warning("held webhook leases not released (they run out on their own)",
                            extra={"event": "webhook_release_failed"})
        self.sender.close()
