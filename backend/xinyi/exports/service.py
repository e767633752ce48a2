"""The citizen's export (个人信息查阅复制): at once, or built in the background.

* ``GET /v1/me/export`` builds the document in the request, up to
  ``export_sync_max_rows`` rows; past that it refuses (``export_too_large``) and points to
  the background export.
* ``POST /v1/me/exports`` queues one (one queued or building per citizen at a time); the
  worker's ``build_exports`` job builds it (claimed with ``FOR UPDATE SKIP LOCKED``), stores
  the file encrypted under the data key with the export's id bound to it, and it may be
  downloaded once, with the citizen's bearer token, within an hour of being ready. The
  content is deleted at the download or, unclaimed, at expiry.
* Every hand-over (the synchronous answer, a download) writes an entry in the citizen's
  access log (actor the citizen, action ``export``), so it shows in ``/v1/me/queries``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from xinyi.audit import service as audit
from xinyi.citizens.service import citizen_bidx
from xinyi.deps import Deps
from xinyi.errors import Conflict, DomainError, NotFound
from xinyi.exports import document
from xinyi.exports.models import ACTIVE, Export
from xinyi.logs import failure
from xinyi.uow import run_in_unit, unique_or

log = logging.getLogger(__name__)

DOWNLOAD_WINDOW = timedelta(hours=1)
# A build claimed this long ago whose worker never finished (it died) is claimed again.
BUILD_LEASE = timedelta(minutes=10)
MEDIA_TYPES = {"json": "application/json", "zip": "application/zip"}
SCOPE = "export.full"


class ExportTooLarge(DomainError):
    status = 413
    code = "export_too_large"
    title = "This export is too large to build in the request"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The export holds more than {limit} rows: request it with "
                         "POST /v1/me/exports and download it when it is ready")


class ExportInProgress(Conflict):
    code = "export_in_progress"
    title = "An export of yours is already queued or being built"


class ExportNotFound(NotFound):
    code = "export_not_found"
    title = "No such export, or it has been downloaded or has expired"


@dataclass(frozen=True)
class ExportView:
    """``ExportOut``: a background export as its owner sees it."""

    id: uuid.UUID
    format: str
    status: str
    created_at: datetime
    ready_at: datetime | None
    expires_at: datetime | None
    downloaded_at: datetime | None
    size: int | None


@dataclass(frozen=True)
class ExportFile:
    content: bytes
    media_type: str
    filename: str


def _view(row: Export, now: datetime) -> ExportView:
    status = row.status
    if status == "ready" and row.expires_at is not None and row.expires_at <= now:
        status = "expired"  # past its hour, whether or not the purge has run yet
    return ExportView(id=row.id, format=row.format, status=status, created_at=row.created_at,
                      ready_at=row.ready_at, expires_at=row.expires_at,
                      downloaded_at=row.finished_at if status == "downloaded" else None,
                      size=row.size)


def _limit(deps: Deps, account_id: uuid.UUID) -> None:
    deps.limiter.hit(deps.settings.export_limit_per_citizen, "export", str(account_id))


def _logged(session: Session, bidx: bytes, account_id: uuid.UUID, now: datetime) -> None:
    audit.citizen_read(session, bidx, account_id=account_id, action="export", scope=SCOPE,
                       purpose="export", now=now)


def _encode(fmt: str, doc: dict[str, object]) -> bytes:
    return document.to_zip(doc) if fmt == "zip" else document.to_json(doc)


def _filename(fmt: str, now: datetime) -> str:
    return f"xinyi-export-{now.strftime('%Y%m%dT%H%M%SZ')}.{fmt}"


def export_now(session: Session, deps: Deps, account_id: uuid.UUID, *, fmt: str) -> ExportFile:
    """The whole document, built in the caller's unit; the access-log entry for it is
    written first, so the document holds it too (a refusal rolls both back)."""
    _limit(deps, account_id)
    bidx = citizen_bidx(session, account_id)
    now = deps.clock()
    _logged(session, bidx, account_id, now)
    limit = deps.settings.export_sync_max_rows
    try:
        doc = document.build(session, deps, account_id, bidx, now=now, max_rows=limit)
    except document.TooManyRows:
        raise ExportTooLarge(limit) from None
    return ExportFile(_encode(fmt, doc), MEDIA_TYPES[fmt], _filename(fmt, now))


def request_export(session: Session, deps: Deps, account_id: uuid.UUID, *,
                   fmt: str) -> ExportView:
    """Queue a background export; one queued or building per citizen (the database's
    partial unique index settles a race)."""
    _limit(deps, account_id)
    citizen_bidx(session, account_id)  # a citizen, not a bare account
    if session.scalar(select(Export.id).where(Export.account_id == account_id,
                                              Export.status.in_(ACTIVE))):
        raise ExportInProgress()
    now = deps.clock()
    row = Export(id=uuid.uuid4(), account_id=account_id, format=fmt, status="queued",
                 created_at=now)
    with unique_or(session, ExportInProgress):
        session.add(row)
    return _view(row, now)


def _own(session: Session, account_id: uuid.UUID, export_id: uuid.UUID, *,
         lock: bool = False) -> Export:
    stmt = select(Export).where(Export.id == export_id, Export.account_id == account_id)
    row = session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None:
        raise ExportNotFound()
    return row


def export_status(session: Session, deps: Deps, account_id: uuid.UUID,
                  export_id: uuid.UUID) -> ExportView:
    return _view(_own(session, account_id, export_id), deps.clock())


def download(session: Session, deps: Deps, account_id: uuid.UUID,
             export_id: uuid.UUID) -> ExportFile:
    """The built file, once: the row is locked, so two downloads at once give one file and
    one 404. Its content is deleted in the same unit."""
    row = _own(session, account_id, export_id, lock=True)
    now = deps.clock()
    if (row.status != "ready" or row.content is None or row.expires_at is None
            or row.expires_at <= now):
        raise ExportNotFound()
    content = deps.cipher.decrypt_bytes(row.content, context=_context(row.id))
    row.status, row.finished_at, row.content = "downloaded", now, None
    _logged(session, citizen_bidx(session, account_id), account_id, now)
    return ExportFile(content, MEDIA_TYPES[row.format], _filename(row.format, row.ready_at or now))


def _context(export_id: uuid.UUID) -> str:
    return f"exports.content:{export_id}"


# ---- the worker ----------------------------------------------------------------------------

def claim_next(session: Session, deps: Deps) -> uuid.UUID | None:
    """Mark the oldest queued export (or one whose builder died) ``building``; a worker skips
    rows another one holds."""
    now = deps.clock()
    row = session.scalar(
        select(Export).where(or_(Export.status == "queued",
                                 and_(Export.status == "building",
                                      Export.started_at < now - BUILD_LEASE)))
        .order_by(Export.created_at).limit(1).with_for_update(skip_locked=True))
    if row is None:
        return None
    row.status, row.started_at = "building", now
    return row.id


def build_claimed(session: Session, deps: Deps, export_id: uuid.UUID) -> bool:
    """Build a claimed export and store it encrypted; False if it is no longer building."""
    row = session.scalar(select(Export).where(Export.id == export_id,
                                              Export.status == "building").with_for_update())
    if row is None:
        return False
    now = deps.clock()
    doc = document.build(session, deps, row.account_id,
                         citizen_bidx(session, row.account_id), now=now)
    data = _encode(row.format, doc)
    row.content = deps.cipher.encrypt_bytes(data, context=_context(row.id))
    row.size, row.status, row.ready_at, row.expires_at = (len(data), "ready", now,
                                                          now + DOWNLOAD_WINDOW)
    return True


def mark_failed(session: Session, deps: Deps, export_id: uuid.UUID, error_type: str) -> None:
    session.execute(update(Export).where(Export.id == export_id, Export.status == "building")
                    .values(status="failed", failure=error_type[:64],
                            finished_at=deps.clock(), content=None))


def purge_expired(session: Session, deps: Deps) -> int:
    """Ready exports past their hour: the content deleted, the status ``expired``."""
    result = session.execute(
        update(Export).where(Export.status == "ready", Export.expires_at <= deps.clock())
        .values(status="expired", content=None))
    return int(result.rowcount)  # type: ignore[attr-defined]


def build_pending(deps: Deps) -> tuple[int, int, int]:
    """Build every queued export, each claimed in a unit of its own and built in the next;
    a build that fails is ``failed`` and logged by its type only. Then purge the expired.
    Returns (built, failed, expired)."""
    built = failed = 0
    while (export_id := run_in_unit(deps.db.sessions,
                                    lambda s: claim_next(s, deps))) is not None:
        claimed = export_id
        try:
            run_in_unit(deps.db.sessions,
                        lambda s, e=claimed: build_claimed(s, deps, e))  # type: ignore[misc]
            built += 1
        except Exception as err:
            # The type and where, never the message: it could quote the citizen's data.
            log.error("export build failed", extra={"event": "export_failed",
                                                    "export_id": str(export_id),
                                                    **failure(err)})
            kind = type(err).__name__
            run_in_unit(deps.db.sessions,
                        lambda s, e=claimed, k=kind: mark_failed(s, deps, e, k))  # type: ignore[misc]
            failed += 1
    expired = run_in_unit(deps.db.sessions, lambda s: purge_expired(s, deps))
    return built, failed, expired


def forget_account(session: Session, account_id: uuid.UUID) -> int:
    """Delete every export of this account, files included (account deletion)."""
    result = session.execute(delete(Export).where(Export.account_id == account_id))
    return int(result.rowcount)  # type: ignore[attr-defined]
