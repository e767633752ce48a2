"""Authorised query (授权查询, R3): partners ask, citizens grant, deny and revoke, and a partner
reads exactly what a live consent allows — each read registered in the access log (R7).

A consent is live from ``granted_at`` until ``expires_at`` unless revoked. State changes are
compare-and-set updates, so two racing decisions on one request cannot both win, and the
unique ``consents.request_id`` backs that up in the database.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import ColumnElement

from xinyi.audit import service as audit
from xinyi.auth.principal import Principal
from xinyi.auth.service import ClientRef, client_ref, client_refs
from xinyi.citizens.service import citizen_bidx, own_subject
from xinyi.consents.models import Consent, ConsentRequest
from xinyi.consents.views import (
    CitizenRequestView,
    ConsentView,
    PartnerRequestView,
    PartnerView,
    ReportRecordView,
    ReportView,
    Withdrawal,
)
from xinyi.deps import Deps
from xinyi.errors import Conflict, Forbidden, NotFound, ValidationFailed
from xinyi.jsonable import row
from xinyi.outbox.service import emit
from xinyi.records.service import active_records
from xinyi.scoring import rules
from xinyi.scoring.service import hours_this_year
from xinyi.subjects import service as subjects
from xinyi.timeutil import china_today
from xinyi.uow import unique_or

log = logging.getLogger(__name__)

REQUEST_LIFETIME = timedelta(days=7)
FULL, SUMMARY = "report.full", "report.summary"
_PSEUDONYM = re.compile(r"ps_[a-z2-7]{1,61}")


class ConsentRequired(Forbidden):
    code = "consent_required"
    title = "The citizen has not authorised this partner to read this report"


class ConsentRequestDecided(Conflict):
    code = "consent_request_decided"
    title = "This consent request has already been decided"


class ConsentRequestExpired(Conflict):
    code = "consent_request_expired"
    title = "This consent request lapsed before it was decided"


class ConsentNotLive(Conflict):
    code = "consent_not_live"
    title = "This consent has already been revoked or has expired"


class UnknownPartner(ValidationFailed):
    code = "unknown_partner"
    title = "No active partner has this id"


# ---- views -----------------------------------------------------------------------------------

def _partner_view(partner: ClientRef) -> PartnerView:
    return PartnerView(id=partner.id, name=partner.name, kind=partner.kind)


def _request_status(request: ConsentRequest, now: datetime) -> str:
    """A pending request past its lapse time is expired even before the sweep records it."""
    if request.status == "pending" and request.expires_at <= now:
        return "expired"
    return request.status


def _consent_status(consent: Consent, now: datetime) -> str:
    if consent.revoked_at is not None:
        return "revoked"
    return "live" if consent.expires_at > now else "expired"


def _citizen_request_view(request: ConsentRequest, partner: ClientRef,
                          now: datetime) -> CitizenRequestView:
    return CitizenRequestView(
        id=request.id, partner=_partner_view(partner), scope=request.scope,
        purpose=request.purpose, requested_duration_seconds=request.requested_duration_seconds,
        status=_request_status(request, now), created_at=request.created_at,
        expires_at=request.expires_at, decided_at=request.decided_at)


def _consent_view(consent: Consent, partner: ClientRef, now: datetime) -> ConsentView:
    return ConsentView(
        id=consent.id, partner=_partner_view(partner), scope=consent.scope,
        purpose=consent.purpose, status=_consent_status(consent, now),
        granted_at=consent.granted_at, expires_at=consent.expires_at,
        revoked_at=consent.revoked_at, request_id=consent.request_id)


def _partner_request_view(session: Session, deps: Deps, request: ConsentRequest,
                          now: datetime) -> PartnerRequestView:
    consent_id = session.scalar(select(Consent.id).where(Consent.request_id == request.id))
    return PartnerRequestView(
        id=request.id,
        subject=subjects.pseudonym(deps, request.partner_id, request.subject_bidx),
        scope=request.scope, purpose=request.purpose,
        expires_in=request.requested_duration_seconds,
        status=_request_status(request, now), created_at=request.created_at,
        expires_at=request.expires_at, decided_at=request.decided_at, consent_id=consent_id)


def _partner(session: Session, partner_id: uuid.UUID) -> ClientRef:
    partner = client_ref(session, partner_id)
    if partner is None:  # the foreign key makes this unreachable for stored rows
        raise NotFound("No such partner")
    return partner


# ---- partner side ----------------------------------------------------------------------------

def _resolve(session: Session, partner: Principal, subject: str) -> bytes:
    if not _PSEUDONYM.fullmatch(subject):
        raise subjects.UnknownSubject()
    return subjects.resolve(session, partner.id, subject)


def request_consent(session: Session, deps: Deps, partner: Principal, *, subject: str,
                    scope: str, purpose: str, expires_in: int) -> PartnerRequestView:
    """Ask the citizen behind the partner's own pseudonym; lapses after 7 days undecided."""
    bidx = _resolve(session, partner, subject)
    now = deps.clock()
    request = ConsentRequest(
        id=uuid.uuid4(), partner_id=partner.id, subject_bidx=bidx, scope=scope,
        purpose=purpose.strip(), requested_duration_seconds=expires_in, status="pending",
        created_at=now, expires_at=now + REQUEST_LIFETIME)
    session.add(request)
    session.flush()
    log.info("consent requested", extra={"event": "consent_requested",
                                         "partner_id": str(partner.id),
                                         "request_id": str(request.id), "scope": scope})
    return _partner_request_view(session, deps, request, now)


def partner_request(session: Session, deps: Deps, partner: Principal,
                    request_id: uuid.UUID) -> PartnerRequestView:
    request = session.get(ConsentRequest, request_id)
    # Another partner's request answers exactly like a missing one.
    if request is None or request.partner_id != partner.id:
        raise NotFound("No consent request of yours has this id")
    return _partner_request_view(session, deps, request, deps.clock())


def _live_consent(session: Session, partner_id: uuid.UUID, bidx: bytes, now: datetime,
                  scope: str | None) -> Consent | None:
    """The consent a read relies on: the widest live one, or, for a named scope, one that
    covers it (full covers summary), preferring one given for exactly that scope."""
    # FOR SHARE on PostgreSQL: a revocation waits for reads already under way, and a read that
    # starts after the revocation committed sees it.
    live = list(session.scalars(
        select(Consent).where(Consent.subject_bidx == bidx, Consent.partner_id == partner_id,
                              Consent.revoked_at.is_(None), Consent.granted_at <= now,
                              Consent.expires_at > now)
        .with_for_update(read=True)))
    if scope is not None:
        live = [c for c in live if c.scope in (scope, FULL)]
    if not live:
        return None
    wanted = scope or FULL
    return max(live, key=lambda c: (c.scope == wanted, c.expires_at))


def report(session: Session, deps: Deps, partner: Principal, subject: str,
           scope: str | None = None) -> ReportView:
    """What the partner's live consent allows (the widest if several are live), or exactly
    ``scope`` if the partner names one and a live consent covers it.

    The access-log entry is written in the same unit of work as the read, committed before the
    report is handed back, so there is no read without its registration; a refused read writes
    nothing.
    """
    now = deps.clock()
    bidx = _resolve(session, partner, subject)
    consent = _live_consent(session, partner.id, bidx, now, scope)
    if consent is None:
        raise ConsentRequired()
    scope = scope or consent.scope
    today = china_today(now)
    shown = [r for r in active_records(session, bidx)
             if rules.is_displayed(r.occurred_on, r.display_months, today)]
    explanation = rules.explain(shown, hours_this_year(session, bidx, today), today)
    records = None
    if scope == FULL:
        records = tuple(ReportRecordView(
            catalogue_code=r.catalogue_code, name_zh=r.name_zh, name_en=r.name_en,
            polarity=r.polarity.value, severity=r.severity.value if r.severity else None,
            occurred_at=r.occurred_on, points=r.points, display_until=r.display_until,
            under_objection=r.under_objection)
            for r in sorted(shown, key=lambda r: (r.occurred_on, r.catalogue_code),
                            reverse=True))
    body = ReportView(
        subject=subject, scope=scope, consent_id=consent.id,
        consent_expires_at=consent.expires_at, generated_at=now,
        tier=explanation.tier, score=explanation.score,
        positive_records=sum(r.polarity is rules.Polarity.POSITIVE for r in shown),
        negative_records=sum(r.polarity is rules.Polarity.NEGATIVE for r in shown),
        records_under_objection=sum(r.under_objection for r in shown),
        records=records)
    actor_id, actor_name = audit.partner_actor(session, partner.id)
    audit.append(session, audit.Access(
        subject_bidx=bidx, actor_type="partner", actor_id=actor_id, actor_name=actor_name,
        action="report", scope=scope, purpose=consent.purpose,
        consent_id=consent.id), now=now)
    log.info("consented report read", extra={"event": "consent_report",
                                             "partner_id": str(partner.id),
                                             "consent_id": str(consent.id),
                                             "scope": scope})
    return body


# ---- citizen side ----------------------------------------------------------------------------

def _page(stmt: Any, page: int, page_size: int) -> Any:
    return stmt.limit(page_size).offset((page - 1) * page_size)


def pending_requests(session: Session, deps: Deps, account_id: uuid.UUID, *, page: int,
                     page_size: int) -> tuple[list[CitizenRequestView], int]:
    """Requests waiting for the citizen's decision, newest first."""
    now = deps.clock()
    bidx = citizen_bidx(session, account_id)
    where = (ConsentRequest.subject_bidx == bidx, ConsentRequest.status == "pending",
             ConsentRequest.expires_at > now)
    total = session.scalar(select(func.count()).select_from(ConsentRequest).where(*where)) or 0
    requests = list(session.scalars(_page(
        select(ConsentRequest).where(*where)
        .order_by(ConsentRequest.created_at.desc(), ConsentRequest.id), page, page_size)))
    partners = client_refs(session, (r.partner_id for r in requests))
    return [_citizen_request_view(r, partners[r.partner_id], now) for r in requests], total


def _own_request(session: Session, account_id: uuid.UUID,
                 request_id: uuid.UUID) -> ConsentRequest:
    request = session.get(ConsentRequest, request_id)
    # Someone else's request answers exactly like a missing one.
    if request is None or request.subject_bidx != citizen_bidx(session, account_id):
        raise NotFound("No consent request for you has this id")
    return request


def _decide(session: Session, request: ConsentRequest, status: str, now: datetime) -> None:
    current = _request_status(request, now)
    if current == "expired":
        raise ConsentRequestExpired()
    if current != "pending":
        raise ConsentRequestDecided()
    # Compare-and-set: of two racing decisions exactly one changes the row.
    result = cast(CursorResult[Any], session.execute(
        update(ConsentRequest)
        .where(ConsentRequest.id == request.id, ConsentRequest.status == "pending")
        .values(status=status, decided_at=now)))
    if result.rowcount != 1:
        raise ConsentRequestDecided()


def _granted(session: Session, deps: Deps, consent: Consent, now: datetime) -> None:
    emit(session, "consent.granted", {
        "consent_id": str(consent.id), "scope": consent.scope,
        "granted_at": consent.granted_at.isoformat(),
        "expires_at": consent.expires_at.isoformat(),
        "request_id": str(consent.request_id) if consent.request_id else None},
         now=now, partner_id=consent.partner_id, subject_bidx=consent.subject_bidx)


def approve_request(session: Session, deps: Deps, account_id: uuid.UUID,
                    request_id: uuid.UUID) -> ConsentView:
    """Grant what the partner asked for, for the duration it asked for."""
    now = deps.clock()
    request = _own_request(session, account_id, request_id)
    _decide(session, request, "approved", now)
    consent = Consent(
        id=uuid.uuid4(), subject_bidx=request.subject_bidx, partner_id=request.partner_id,
        scope=request.scope, purpose=request.purpose, granted_at=now,
        expires_at=now + timedelta(seconds=request.requested_duration_seconds),
        request_id=request.id)
    with unique_or(session, ConsentRequestDecided):
        session.add(consent)
        _granted(session, deps, consent, now)
    log.info("consent granted", extra={"event": "consent_granted",
                                       "consent_id": str(consent.id),
                                       "partner_id": str(consent.partner_id)})
    return _consent_view(consent, _partner(session, consent.partner_id), now)


def deny_request(session: Session, deps: Deps, account_id: uuid.UUID,
                 request_id: uuid.UUID) -> CitizenRequestView:
    now = deps.clock()
    request = _own_request(session, account_id, request_id)
    _decide(session, request, "denied", now)
    log.info("consent denied", extra={"event": "consent_denied", "request_id": str(request.id)})
    return _citizen_request_view(request, _partner(session, request.partner_id), now)


def _status_filter(status: str | None, now: datetime) -> list[ColumnElement[bool]]:
    if status == "live":
        return [Consent.revoked_at.is_(None), Consent.expires_at > now]
    if status == "expired":
        return [Consent.revoked_at.is_(None), Consent.expires_at <= now]
    if status == "revoked":
        return [Consent.revoked_at.is_not(None)]
    return []


def citizen_consents(session: Session, deps: Deps, account_id: uuid.UUID, *,
                     status: str | None = None, page: int,
                     page_size: int) -> tuple[list[ConsentView], int]:
    """The citizen's consents, live and past, newest first."""
    now = deps.clock()
    bidx = citizen_bidx(session, account_id)
    where = [Consent.subject_bidx == bidx, *_status_filter(status, now)]
    total = session.scalar(select(func.count()).select_from(Consent).where(*where)) or 0
    consents = list(session.scalars(_page(
        select(Consent).where(*where).order_by(Consent.granted_at.desc(), Consent.id),
        page, page_size)))
    partners = client_refs(session, (c.partner_id for c in consents))
    return [_consent_view(c, partners[c.partner_id], now) for c in consents], total


def grant(session: Session, deps: Deps, account_id: uuid.UUID, *, partner_id: uuid.UUID,
          scope: str, purpose: str, expires_in: int) -> ConsentView:
    """A direct grant (主动授权) by the citizen, without a request from the partner."""
    now = deps.clock()
    partner = client_ref(session, partner_id)
    if partner is None or partner.type != "partner" or partner.disabled:
        raise UnknownPartner.at("partner_id", "no active partner has this id")
    bidx = own_subject(session, deps, account_id, now)
    # The partner learns the citizen under its own pseudonym, from the consent.granted event.
    subjects.remember(session, deps, partner.id, bidx)
    consent = Consent(id=uuid.uuid4(), subject_bidx=bidx, partner_id=partner.id, scope=scope,
                      purpose=purpose.strip(), granted_at=now,
                      expires_at=now + timedelta(seconds=expires_in), request_id=None)
    session.add(consent)
    _granted(session, deps, consent, now)
    session.flush()
    log.info("consent granted", extra={"event": "consent_granted",
                                       "consent_id": str(consent.id),
                                       "partner_id": str(partner.id)})
    return _consent_view(consent, partner, now)


def _withdraw(session: Session, consent: Consent, now: datetime) -> bool:
    """Revoke one live consent (compare-and-set) and tell its partner ``consent.revoked``;
    False if it was no longer live. The one revocation every path below uses."""
    result = cast(CursorResult[Any], session.execute(
        update(Consent)
        .where(Consent.id == consent.id, Consent.revoked_at.is_(None),
               Consent.expires_at > now)
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)))
    if result.rowcount != 1:
        return False
    set_committed_value(consent, "revoked_at", now)  # the row says so already
    emit(session, "consent.revoked", {
        "consent_id": str(consent.id), "scope": consent.scope, "revoked_at": now.isoformat()},
         now=now, partner_id=consent.partner_id, subject_bidx=consent.subject_bidx)
    log.info("consent revoked", extra={"event": "consent_revoked",
                                       "consent_id": str(consent.id),
                                       "partner_id": str(consent.partner_id)})
    return True


def revoke(session: Session, deps: Deps, account_id: uuid.UUID,
           consent_id: uuid.UUID) -> ConsentView:
    """Withdraw a consent (撤回授权) at once: the partner's next report read is refused."""
    now = deps.clock()
    consent = session.get(Consent, consent_id)
    if consent is None or consent.subject_bidx != citizen_bidx(session, account_id):
        raise NotFound("No consent of yours has this id")
    if _consent_status(consent, now) != "live" or not _withdraw(session, consent, now):
        raise ConsentNotLive()
    return _consent_view(consent, _partner(session, consent.partner_id), now)


def withdraw_all(session: Session, bidx: bytes, now: datetime, *,
                 granted_before: datetime | None = None) -> int:
    """Revoke every live consent of this subject (each partner gets ``consent.revoked``) and
    deny the requests still pending; returns how many consents were revoked. With
    ``granted_before`` (a replay after a restore) only consents granted before it."""
    where = [Consent.subject_bidx == bidx, Consent.revoked_at.is_(None),
             Consent.expires_at > now]
    pending = [ConsentRequest.subject_bidx == bidx, ConsentRequest.status == "pending"]
    if granted_before is not None:
        where.append(Consent.granted_at <= granted_before)
        pending.append(ConsentRequest.created_at <= granted_before)
    # Locked in one order, so that two withdrawals of one citizen cannot deadlock.
    live = list(session.scalars(select(Consent).where(*where).order_by(Consent.id)
                                .with_for_update()))
    revoked = sum(_withdraw(session, consent, now) for consent in live)
    session.execute(update(ConsentRequest).where(*pending)
                    .values(status="denied", decided_at=now)
                    .execution_options(synchronize_session=False))
    return revoked


def revoke_all(session: Session, deps: Deps, account_id: uuid.UUID) -> Withdrawal:
    """Withdraw every consent at once (全部撤回): each partner's next report read is refused,
    and each gets ``consent.revoked``; pending requests are denied."""
    return Withdrawal(withdraw_all(session, citizen_bidx(session, account_id), deps.clock()))


# ---- sweep -----------------------------------------------------------------------------------

def lapse_requests(session: Session, deps: Deps) -> int:
    """Record as expired every pending request past its 7 days. Idempotent; views already
    treat such requests as expired, so running it late changes nothing a user sees."""
    now = deps.clock()
    result = cast(CursorResult[Any], session.execute(
        update(ConsentRequest)
        .where(ConsentRequest.status == "pending", ConsentRequest.expires_at <= now)
        .values(status="expired")
        .execution_options(synchronize_session=False)))
    return int(result.rowcount)


# ---- query for the webhooks dispatcher --------------------------------------------------------

@dataclass(frozen=True)
class ConsentWindow:
    """When a partner may hear of a citizen: from ``granted_at`` until ``ends_at`` (expiry or
    revocation, whichever came first)."""

    subject_bidx: bytes
    partner_id: uuid.UUID
    consent_id: uuid.UUID
    purpose: str
    granted_at: datetime
    ends_at: datetime

    def live_at(self, when: datetime) -> bool:
        return self.granted_at <= when < self.ends_at


_WINDOW_CHUNK = 5000


def consent_windows(session: Session, bidxs: Iterable[bytes], since: datetime,
                    until: datetime) -> dict[bytes, list[ConsentWindow]]:
    """Every consent of these citizens that was live at some moment in ``[since, until]``,
    by citizen: set-based (one query per 5,000 citizens), for a whole batch of events whose
    times lie in that range (each event then keeps the windows live at its own time)."""
    out: dict[bytes, list[ConsentWindow]] = {}
    keys = sorted(set(bidxs))
    for start in range(0, len(keys), _WINDOW_CHUNK):
        chunk = keys[start:start + _WINDOW_CHUNK]
        rows = session.execute(
            select(Consent.subject_bidx, Consent.partner_id, Consent.id, Consent.purpose,
                   Consent.granted_at, Consent.expires_at, Consent.revoked_at)
            .where(Consent.subject_bidx.in_(chunk), Consent.granted_at <= until,
                   Consent.expires_at > since,
                   or_(Consent.revoked_at.is_(None), Consent.revoked_at > since)))
        for bidx, partner_id, consent_id, purpose, granted, expires, revoked in rows:
            ends = expires if revoked is None else min(expires, revoked)
            out.setdefault(bytes(bidx), []).append(ConsentWindow(
                bytes(bidx), partner_id, consent_id, purpose, granted, ends))
    return out


def partners_with_live_consent(session: Session, bidxs: Iterable[bytes],
                               now: datetime) -> dict[bytes, list[uuid.UUID]]:
    """The partners holding a live consent for each of these citizens at ``now``."""
    return {bidx: sorted({w.partner_id for w in windows if w.live_at(now)})
            for bidx, windows in consent_windows(session, bidxs, now, now).items()}


def export_consents(session: Session, deps: Deps, account_id: uuid.UUID,
                    bidx: bytes) -> list[dict[str, Any]]:
    """Every consent the citizen gave, revoked and expired ones included (export)."""
    consents = list(session.scalars(select(Consent).where(Consent.subject_bidx == bidx)
                                    .order_by(Consent.granted_at, Consent.id)))
    names = client_refs(session, {c.partner_id for c in consents})
    return [row(c, "id", "partner_id", "scope", "purpose", "granted_at", "expires_at",
                "revoked_at", "request_id",
                partner_name=names[c.partner_id].name if c.partner_id in names else None)
            for c in consents]


def export_consent_requests(session: Session, deps: Deps, account_id: uuid.UUID,
                            bidx: bytes) -> list[dict[str, Any]]:
    """Every consent request made to the citizen, whatever became of it (export)."""
    requests = list(session.scalars(select(ConsentRequest)
                                    .where(ConsentRequest.subject_bidx == bidx)
                                    .order_by(ConsentRequest.created_at, ConsentRequest.id)))
    names = client_refs(session, {r.partner_id for r in requests})
    return [row(r, "id", "partner_id", "scope", "purpose", "requested_duration_seconds",
                "status", "created_at", "expires_at", "decided_at",
                partner_name=names[r.partner_id].name if r.partner_id in names else None)
            for r in requests]
