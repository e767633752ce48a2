"""The delivery loop that ``xinyi worker`` runs: lease due deliveries, send them on a thread
pool, record each attempt.

Fairness: at most ``webhook_in_flight_per_endpoint`` requests (and as many leased jobs
waiting for their turn) per endpoint, and each endpoint's ``rate_limit_per_s``, so a slow or
dead endpoint occupies a few threads and never the whole pool. The rate limit is shared by all
workers through Redis; with Redis unreachable each worker falls back to an in-process limit
(deliveries go on, each worker keeping the rate on its own) and tries Redis again a few
seconds later.

The loop polls every ``idle_seconds`` when there is nothing to do and leases again as soon as
an attempt finishes when busy. A job is started only while its lease has more than one full
attempt (15 s) plus a margin left, so a lease never runs out under a request in flight and two
workers never send the same delivery at once.

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
RECORD_TRIES = 4
RECORD_BATCH_MAX = 500

Dispatcher = Callable[[Deps], object]


class EndpointRateLimit:
    """``rate_limit_per_s`` per endpoint: shared through Redis, in-process when Redis is
    down (or not configured)."""

    def __init__(self, redis_url: str | None) -> None:
        self._shared = (FixedWindowRateLimiter(storage_from_string(redis_url, **redis_options()))
                        if redis_url else None)
        self._local = FixedWindowRateLimiter(MemoryStorage())
        self._shared_down_until = 0.0

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
        self.sender = sender or HttpSender(allow_private=settings.webhook_allow_private,
                                           require_https=settings.webhook_https_only,
                                           max_connections_per_host=self.per_endpoint)
        self.dispatch = dispatch
        self.limits = EndpointRateLimit(settings.redis_url)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook")
        self._lock = threading.Lock()
        self._in_flight: Counter[uuid.UUID] = Counter()
        self._held: dict[uuid.UUID, deque[Job]] = {}
        self._wake = threading.Event()
        self._batch = max(1, self.concurrency // 4)
        self.sent = 0
        # Finished attempts waiting for the recorder (None: stop once all before it are in).
        self._finished: queues_.SimpleQueue[Finished | None] = queues_.SimpleQueue()
        self._recording = 0
        self._recorder = threading.Thread(target=self._record_forever, daemon=True,
                                          name="webhook-recorder")
        self._recorder.start()
        self._closed = False

    # -- state -------------------------------------------------------------------------
    def busy(self) -> bool:
        with self._lock:
            return bool(+self._in_flight) or any(self._held.values()) or self._recording > 0

    def _free(self) -> tuple[int, dict[uuid.UUID, int]]:
        with self._lock:
            endpoints = set(self._in_flight) | set(self._held)
            free = {ep: self.per_endpoint - self._in_flight[ep] - len(self._held.get(ep, ()))
                    for ep in endpoints}
            # An attempt waiting for the recorder counts for its endpoint, not for the pool:
            # up to one pool's worth may wait without holding back new requests; beyond
            # that, leasing waits for the recorder to catch up.
            used = (sum(self._in_flight.values()) - self._recording
                    + sum(len(q) for q in self._held.values())
                    + max(0, self._recording - self.concurrency))
        return self.concurrency - used, free

    # -- one round ---------------------------------------------------------------------
    def step(self) -> int:
        """Dispatch, start the held jobs whose turn has come, lease more for the free
        capacity. Returns how many attempts it started."""
        self.dispatch(self.deps)
        now = self.deps.clock()
        started = self._start_held(now)
        free_total, free = self._free()
        if free_total <= 0:
            return started
        jobs = run_in_unit(self.deps.db.sessions, lambda session: lease_due(
            session, self.deps, now=now, limit=free_total, free_per_endpoint=free,
            per_endpoint=self.per_endpoint))
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
            room = 0 if self._held.get(endpoint_id) else (
                self.per_endpoint - self._in_flight[endpoint_id])
        ready = group[:max(0, room)] if group[0].lease - now >= LEASE_MARGIN else []
        if ready and not self.limits.allow(endpoint_id, ready[0].rate_limit_per_s,
                                           cost=len(ready)):
            ready = []
        if ready:
            with self._lock:
                self._in_flight[endpoint_id] += len(ready)
            for job in ready:
                self._pool.submit(self._attempt, job)
        if len(ready) < len(group):
            with self._lock:
                self._held.setdefault(endpoint_id, deque()).extend(group[len(ready):])
        return len(ready)

    def _start_held(self, now: datetime) -> int:
        started, expired = 0, []
        with self._lock:
            queues = list(self._held.items())
        for endpoint_id, queue in queues:
            while queue:
                job = queue[0]
                if job.lease - now < LEASE_MARGIN:
                    expired.append(queue.popleft())
                    continue
                if not self._try_start(job, now):
                    break
                queue.popleft()
                started += 1
            with self._lock:
                if not queue:
                    self._held.pop(endpoint_id, None)
        if expired:
            run_in_unit(self.deps.db.sessions, lambda session: release(session, expired))
        return started

    def _try_start(self, job: Job, now: datetime) -> bool:
        if job.lease - now < LEASE_MARGIN:
            return False
        with self._lock:
            if self._in_flight[job.endpoint_id] >= self.per_endpoint:
                return False
        if not self.limits.allow(job.endpoint_id, job.rate_limit_per_s):
            return False
        with self._lock:
            self._in_flight[job.endpoint_id] += 1
        self._pool.submit(self._attempt, job)
        return True

    # -- one attempt (a pool thread) -----------------------------------------------------
    def _attempt(self, job: Job) -> None:
        try:
            finished = self._send(job)
        except BaseException:
            self._done([job])
            self._wake.set()
            raise
        # Still in flight for its endpoint until recorded (the next attempt there knows
        # whether this one disabled it), but no longer holding a pool thread.
        with self._lock:
            self._recording += 1
        self._finished.put(finished)
        self._wake.set()

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

    def _done(self, jobs: list[Job], *, recorded: bool = False) -> None:
        with self._lock:
            for job in jobs:
                self._in_flight[job.endpoint_id] -= 1
                if self._in_flight[job.endpoint_id] <= 0:
                    del self._in_flight[job.endpoint_id]
            if recorded:
                self._recording -= len(jobs)
                self.sent += len(jobs)

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
            while len(batch) < RECORD_BATCH_MAX:
                try:
                    item = self._finished.get_nowait()
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
                self._done([item.job for item in batch], recorded=True)
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
                    held = any(self._held.values())
                busy = self.busy()
                if started and free_total >= self._batch:
                    continue  # busy with room to spare: lease again at once
                if busy and not held:
                    # Let a few attempts finish, then lease them all in one query rather
                    # than one query per finished attempt.
                    stop.wait(0.01)
                    continue
                self._wake.wait(0.05 if held else idle_seconds)
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
            if not started and not was_busy:  # the round saw all capacity free
                return self.sent - before
            if not started:
                self._wake.wait(0.05)
        raise TimeoutError("deliveries still due or in flight")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if not self._closed:
            self._closed = True
            self._finished.put(None)  # every attempt finished before it is recorded first
            self._recorder.join()
        with self._lock:
            held = [job for queue in self._held.values() for job in queue]
            self._held.clear()
        if held:
            try:
                run_in_unit(self.deps.db.sessions, lambda session: release(session, held))
            except Exception:
                log.warning("held webhook leases not released (they run out on their own)",
                            extra={"event": "webhook_release_failed"})
        self.sender.close()
