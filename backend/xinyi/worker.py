"""The worker: periodic jobs. Each job is idempotent, so any number of workers may run."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from xinyi.deps import Deps
from xinyi.uow import run_in_unit

log = logging.getLogger(__name__)


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


def sign_audit_checkpoint(deps: Deps) -> str:
    from xinyi.audit.checkpoints import make_checkpoint

    cp = run_in_unit(deps.db.sessions, lambda session: make_checkpoint(session, deps))
    return f"sign_audit_checkpoint: {cp.entries if cp else 0} entries"


def purge_expired_credentials(deps: Deps) -> str:
    from xinyi.credentials.service import purge_expired

    done = run_in_unit(deps.db.sessions, lambda session: purge_expired(session, deps))
    return f"purge_expired_credentials: {done}"


def lapse_consent_requests(deps: Deps) -> str:
    from xinyi.consents.service import lapse_requests

    done = run_in_unit(deps.db.sessions, lambda session: lapse_requests(session, deps))
    return f"lapse_consent_requests: {done}"


def flag_overdue_cases(deps: Deps) -> str:
    """Alert staff to repairs and objections past their working-day deadline (once each)."""
    from xinyi.disputes.service import flag_overdue as disputes_overdue
    from xinyi.repairs.service import flag_overdue as repairs_overdue

    repairs = run_in_unit(deps.db.sessions, lambda session: repairs_overdue(session, deps))
    disputes = run_in_unit(deps.db.sessions, lambda session: disputes_overdue(session, deps))
    return f"flag_overdue_cases: {repairs} repairs, {disputes} objections overdue"


def recompute_deadlines(deps: Deps) -> str:
    """Count again the provisional deadlines whose year is now known (a staff entry or a
    newer calendar package), alerting staff for each."""
    from xinyi.disputes.service import recompute_provisional as disputes_recompute
    from xinyi.repairs.service import recompute_provisional as repairs_recompute

    repairs = run_in_unit(deps.db.sessions, lambda session: repairs_recompute(session, deps))
    disputes = run_in_unit(deps.db.sessions, lambda session: disputes_recompute(session, deps))
    return f"recompute_deadlines: {repairs} repairs, {disputes} objections moved"


JOBS: list[Callable[[Deps], str]] = [purge_expired_logins, expire_records,
                                     sign_audit_checkpoint, purge_expired_credentials,
                                     lapse_consent_requests, flag_overdue_cases,
                                     recompute_deadlines]


def run_once(deps: Deps) -> list[str]:
    return [job(deps) for job in JOBS]


def run_forever(deps: Deps, interval: int) -> None:
    stop = threading.Event()

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop.is_set():
        for job in JOBS:
            try:
                log.info(job(deps), extra={"event": "job_done"})
            except Exception:
                log.exception("job failed", extra={"event": "job_failed"})
        stop.wait(interval)
