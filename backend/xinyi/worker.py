"""The worker: periodic jobs and the webhook delivery loop. Each job is idempotent and the
delivery loop leases what it sends, so any number of workers may run."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from sqlalchemy.orm import Session

from xinyi.deps import Deps
from xinyi.logs import failure
from xinyi.uow import run_in_unit

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.0005


def purge_expired_logins(deps: Deps) -> str:
    """Delete login families that expired or were revoked more than 30 days ago."""
    from xinyi.auth.service import purge_expired_logins as purge

    families, tokens = run_in_unit(deps.db.sessions, lambda session: purge(session, deps))
    return f"purge_expired_logins: {families} logins, {tokens} refresh tokens"


def expire_records(deps: Deps) -> str:
    """Archive records past their display period (R10), a unit per batch; a no-op when
    nothing is due."""
    from xinyi.records.service import archive_expired_batch

    total = 0
    while archived := run_in_unit(deps.db.sessions,
                                  lambda session: archive_expired_batch(session, deps)):
        total += archived
    return f"expire_records: {total} archived"


def seal_access_log(deps: Deps) -> str:
    """Seal every committed access-log entry (a full sweep) and sign a tree head if the
    tree grew (``worker --once``; the running worker seals continuously)."""
    from xinyi.audit.sealer import seal_all, sealing_deps

    sealer = sealing_deps(deps)
    try:
        sealed, size = seal_all(sealer)
    finally:
        if sealer is not deps:
            sealer.db.engine.dispose()
    return f"seal_access_log: {sealed} sealed, " + (
        f"tree head {size} signed" if size else "no new tree head")


def purge_expired_credentials(deps: Deps) -> str:
    from xinyi.credentials.service import purge_expired

    done = run_in_unit(deps.db.sessions, lambda session: purge_expired(session, deps))
    return f"purge_expired_credentials: {done}"


def lapse_consent_requests(deps: Deps) -> str:
    from xinyi.consents.service import lapse_requests

    done = run_in_unit(deps.db.sessions, lambda session: lapse_requests(session, deps))
    return f"lapse_consent_requests: {done}"


def benefit_session_sweeps(deps: Deps) -> str:
    """Overdue, default 30 days after due, record after grace: a unit per batch, until
    nothing is due (each step idempotent, safe with several workers)."""
    from xinyi.benefits import sweeps

    done = []
    for step in (sweeps.mark_overdue, sweeps.default_unclosed, sweeps.record_after_grace):
        total = 0

        def batch(session: Session, step: Callable[..., int] = step) -> int:
            return step(session, deps)

        while moved := run_in_unit(deps.db.sessions, batch):
            total += moved
        done.append(f"{step.__name__} {total}")
    return "benefit_session_sweeps: " + ", ".join(done)


def purge_idempotency_keys(deps: Deps) -> str:
    from xinyi.idempotency import purge

    done = run_in_unit(deps.db.sessions, lambda session: purge(session, deps.clock()))
    return f"purge_idempotency_keys: {done}"


def dispatch_webhook_events(deps: Deps) -> str:
    """Outbox events → partners' feeds and webhook deliveries, a unit per batch."""
    from xinyi.webhooks.service import dispatch_pending

    return f"dispatch_webhook_events: {dispatch_pending(deps)} events"


def purge_webhook_events(deps: Deps) -> str:
    """Retention: delivered events (with deliveries and attempts) and dispatched outbox rows
    older than ``webhook_retention_days``, a unit per batch; never undelivered ones."""
    from xinyi.webhooks.service import purge_delivered

    return f"purge_webhook_events: {purge_delivered(deps)} rows"


def rescore_new_year(deps: Deps) -> str:
    """Scores still holding last year's volunteer-hours bonus, computed again (a no-op but
    in the first days of a year)."""
    from xinyi.scoring.service import rescore_new_year as rescore
    from xinyi.timeutil import china_today

    def run(session: Session) -> int:
        now = deps.clock()
        return rescore(session, now=now, today=china_today(now))

    return f"rescore_new_year: {run_in_unit(deps.db.sessions, run)} scores"


def flag_overdue_cases(deps: Deps) -> str:
    """Alert staff to repairs, objections and decision reviews past their working-day
    deadline (once each)."""
    from xinyi.decisions.service import flag_overdue as reviews_overdue
    from xinyi.disputes.service import flag_overdue as disputes_overdue
    from xinyi.repairs.service import flag_overdue as repairs_overdue

    repairs = run_in_unit(deps.db.sessions, lambda session: repairs_overdue(session, deps))
    disputes = run_in_unit(deps.db.sessions, lambda session: disputes_overdue(session, deps))
    reviews = run_in_unit(deps.db.sessions, lambda session: reviews_overdue(session, deps))
    return (f"flag_overdue_cases: {repairs} repairs, {reviews} decision reviews, "
            f"{disputes} objections overdue")


def recompute_deadlines(deps: Deps) -> str:
    """Count again the provisional deadlines whose year is now known (a staff entry or a
    newer calendar package), alerting staff for each."""
    from xinyi.decisions.service import recompute_provisional as reviews_recompute
    from xinyi.disputes.service import recompute_provisional as disputes_recompute
    from xinyi.repairs.service import recompute_provisional as repairs_recompute

    repairs = run_in_unit(deps.db.sessions, lambda session: repairs_recompute(session, deps))
    disputes = run_in_unit(deps.db.sessions, lambda session: disputes_recompute(session, deps))
    reviews = run_in_unit(deps.db.sessions, lambda session: reviews_recompute(session, deps))
    return (f"recompute_deadlines: {repairs} repairs, {reviews} decision reviews, "
            f"{disputes} objections moved")


def build_exports(deps: Deps) -> str:
    """Citizens' background exports: build each queued one (a unit per claim and per build),
    then delete the files of those not downloaded within their hour."""
    from xinyi.exports.service import build_pending

    built, failed, expired = build_pending(deps)
    return f"build_exports: {built} built, {failed} failed, {expired} expired"
def record_commitment_breaches(deps: Deps) -> str:
    """Breaches of credit commitments whose grace is over become records, a unit per
    batch (idempotent)."""
    from xinyi.commitments.service import record_breaches

    total = 0
    while recorded := run_in_unit(deps.db.sessions,
                                  lambda session: record_breaches(session, deps)):
        total += recorded
    return f"record_commitment_breaches: {total} recorded"
def backfill_personal_keys(deps: Deps) -> str:
    """Give citizens registered before personal keys a key of their own, a unit per batch
    (a no-op once every citizen has one)."""
    from xinyi.privacy.service import backfill

    return f"backfill_personal_keys: {backfill(deps)} citizens"


JOBS: list[Callable[[Deps], str]] = [purge_expired_logins, expire_records,
                                     seal_access_log, purge_expired_credentials,
                                     lapse_consent_requests, benefit_session_sweeps,
                                     record_commitment_breaches,
                                     purge_idempotency_keys, rescore_new_year,
                                     flag_overdue_cases,
                                     recompute_deadlines, backfill_personal_keys,
                                     dispatch_webhook_events,
                                     purge_webhook_events, build_exports]


def deliver_webhooks(deps: Deps) -> str:
    """Send every webhook delivery due now, until none is (``worker --once``; the running
    worker does this continuously)."""
    from xinyi.webhooks.loop import DeliveryLoop

    loop = DeliveryLoop(deps, dispatch=_dispatcher())
    try:
        return f"deliver_webhooks: {loop.run_until_idle(timeout=600)} attempts"
    finally:
        loop.close()


def _dispatcher(every_seconds: float = 0.2) -> Callable[[Deps], object]:
    """What the delivery loop runs before each round: the webhook dispatcher (outbox events
    → feeds → deliveries), at most every ``every_seconds`` so a busy loop does not spend its
    time asking for outbox events, yet a new event is sent within a fraction of a second."""
    import time

    from xinyi.webhooks.service import dispatch_pending

    last = [float("-inf")]

    def dispatch(deps: Deps) -> object:
        if time.monotonic() - last[0] < every_seconds:
            return 0
        last[0] = time.monotonic()
        return dispatch_pending(deps)

    return dispatch


def run_once(deps: Deps) -> list[str]:
    return [job(deps) for job in JOBS]


def _periodic(deps: Deps, interval: int, stop: threading.Event) -> None:
    # The sealer runs continuously on a thread of its own (with its own full sweeps).
    jobs = [job for job in JOBS if job is not seal_access_log]
    while not stop.is_set():
        for job in jobs:
            if stop.is_set():
                return
            try:
                log.info(job(deps), extra={"event": "job_done"})
            except Exception as err:
                # The type and where, never the message: a database error quotes values.
                log.error("job failed", extra={"event": "job_failed", "job": job.__name__,
                                               **failure(err)})
        stop.wait(interval)


def run_forever(deps: Deps, interval: int, *, deliveries: bool = True,
                idle_seconds: float = 0.2) -> None:
    """The periodic jobs every ``interval`` seconds on a thread of their own, the access-log
    sealer on another, and the webhook delivery loop (polling every ``idle_seconds`` when
    idle: as often as the dispatcher runs, a round with nothing to do costs two indexed
    queries) until SIGTERM or SIGINT, which let the attempts in flight finish and be
    recorded."""
    from xinyi.audit.sealer import SealLoop, sealing_deps
    from xinyi.webhooks.loop import DeliveryLoop

    stop = threading.Event()
    loop = DeliveryLoop(deps, dispatch=_dispatcher()) if deliveries else None
    if loop is not None:
        # The delivery loop's threads mostly wait on sockets (receivers, PostgreSQL, Redis):
        # one that a reply woke waits for the GIL up to the switch interval (5 ms by
        # default) while another thread computes, once per round trip. A shorter interval
        # keeps the leasing and recording threads' round trips from queueing behind it.
        sys.setswitchinterval(SWITCH_INTERVAL_S)

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        stop.set()
        if loop is not None:
            loop.wake()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    periodic = threading.Thread(target=_periodic, args=(deps, interval, stop),
                                name="periodic-jobs", daemon=True)
    periodic.start()
    sealing = threading.Thread(target=SealLoop(sealing_deps(deps)).run, args=(stop,), name="sealer",
                               daemon=True)
    sealing.start()
    if loop is not None:
        loop.run(stop, idle_seconds=idle_seconds)
    else:
        stop.wait()
    periodic.join(timeout=30)
    sealing.join(timeout=30)
