"""The worker: periodic jobs. Each job is idempotent, so any number of workers may run."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from types import FrameType

from sqlalchemy import delete, select

from xinyi.auth.models import AuthSession, RefreshToken
from xinyi.deps import Deps

log = logging.getLogger(__name__)


def purge_expired_logins(deps: Deps) -> str:
    """Delete login families that expired or were revoked more than 30 days ago."""
    cutoff = deps.clock() - timedelta(days=30)
    with deps.db.session() as session:
        stale = select(AuthSession.id).where(
            (AuthSession.expires_at < cutoff) | (AuthSession.revoked_at < cutoff))
        tokens = session.execute(delete(RefreshToken).where(RefreshToken.session_id.in_(stale)))
        families = session.execute(delete(AuthSession).where(AuthSession.id.in_(stale)))
        session.commit()
    return (f"purge_expired_logins: {families.rowcount} logins, "  # type: ignore[attr-defined]
            f"{tokens.rowcount} refresh tokens")  # type: ignore[attr-defined]


def expire_records(deps: Deps) -> str:
    """Archive records past their display period (R10); a no-op when nothing is due."""
    from xinyi.records.service import archive_expired

    with deps.db.session() as session:
        return f"expire_records: {archive_expired(session, deps)} archived"


def sign_audit_checkpoint(deps: Deps) -> str:
    from xinyi.audit.checkpoints import make_checkpoint

    with deps.db.session() as session:
        cp = make_checkpoint(session, deps)
    return f"sign_audit_checkpoint: {cp.entries if cp else 0} entries"


def purge_expired_credentials(deps: Deps) -> str:
    from xinyi.credentials.service import purge_expired

    with deps.db.session() as session:
        return f"purge_expired_credentials: {purge_expired(session, deps)}"


def lapse_consent_requests(deps: Deps) -> str:
    from xinyi.consents.service import lapse_requests

    with deps.db.session() as session:
        return f"lapse_consent_requests: {lapse_requests(session, deps)}"


JOBS: list[Callable[[Deps], str]] = [purge_expired_logins, expire_records,
                                     sign_audit_checkpoint, purge_expired_credentials,
                                     lapse_consent_requests]


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
