"""The worker: periodic jobs. Each job is idempotent, so any number of workers may run."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from sqlalchemy.orm import Session

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


JOBS: list[Callable[[Deps], str]] = [purge_expired_logins, expire_records,
                                     sign_audit_checkpoint, purge_expired_credentials,
                                     lapse_consent_requests, benefit_session_sweeps,
                                     purge_idempotency_keys]


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
