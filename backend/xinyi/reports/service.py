"""Reports of dishonest behaviour (有奖举报): filed by a citizen, triaged by reviewers once
(forwarded to a data provider, rejected or rewarded), the reporter notified of the outcome.

The reporter's protection: the reporter is stored only as ``reporter_bidx``, and only the
reviewers' views resolve it (masked, with a per-reporter reference). Nothing here logs a
report, emits an event about one, or lists reports by the reported party: the forwarded
view a provider reads has the report's facts and the reported party, never the reporter;
``export_reports_filed`` gives a citizen the reports *they* filed, nothing filed about them.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from stdnum.cn import uscc
from stdnum.exceptions import ValidationError as StdnumError

from xinyi.attachments import service as attachments
from xinyi.attachments.service import AttachmentView
from xinyi.audit import service as audit
from xinyi.auth.principal import Principal
from xinyi.auth.service import client_ref, client_refs
from xinyi.citizens.service import citizen_bidx, citizen_subjects, profile
from xinyi.deps import Deps
from xinyi.errors import Conflict, NotFound, ValidationFailed
from xinyi.notifications.service import notify
from xinyi.pii import IdNumber, InvalidIdentifier, mask_id_number
from xinyi.reports.models import DishonestyReport
from xinyi.subjects import personal
from xinyi.timeutil import china_today
from xinyi.uow import unique_or

MAX_REWARD_FEN = 10_000_000  # ¥100,000
TRIAGE_PURPOSE = "举报受理审核 (report triage)"
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_PARTY = "reported_party"


class ReportDecided(Conflict):
    code = "report_decided"
    title = "This report has already been decided"


class ReferenceTaken(Conflict):
    code = "report_reference_taken"
    title = "Try again"


@dataclass(frozen=True)
class PartyView:
    kind: str
    id_number: str | None  # masked
    name: str | None
    unified_social_credit_code: str | None


@dataclass(frozen=True)
class ReportView:
    """What the reporter sees of a report they filed."""

    id: uuid.UUID
    reference: str
    reported_party: PartyView
    facts: str
    evidence: list[AttachmentView]
    status: str
    outcome: str | None
    decision_reason: str | None
    reward_fen: int | None
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True)
class ReporterView:
    """The reporter as reviewers see them: masked, and a reference that is the same for all
    of one reporter's reports (so serial reports show) but is not their blind index."""

    ref: str
    name: str | None
    phone: str | None
    id_number: str | None
    account_closed: bool


@dataclass(frozen=True)
class TriageView:
    id: uuid.UUID
    reference: str
    reporter: ReporterView
    reported_party: PartyView
    facts: str
    evidence: list[AttachmentView]
    status: str
    outcome: str | None
    decision_reason: str | None
    reward_fen: int | None
    forwarded_to: uuid.UUID | None
    forwarded_to_name: str | None
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True)
class ForwardedView:
    """What a provider reads of a report forwarded to it: no reporter, no reference."""

    id: uuid.UUID
    reported_party: PartyView
    facts: str
    forwarded_at: datetime


def _party(deps: Deps, r: DishonestyReport) -> PartyView:
    masked = None
    if r.party_id_number_enc is not None and personal.is_personal(r.party_id_number_enc):
        # Wiped when the reported person closed their account: the blind index remains.
        masked = personal.closed_reference(r.party_bidx or b"")
    elif r.party_id_number_enc is not None:
        masked = mask_id_number(deps.cipher.decrypt(r.party_id_number_enc,
                                                    context="reports.party_id_number"))
    return PartyView(r.party_kind, masked, r.party_name, r.party_uscc)


def _mine(session: Session, deps: Deps, r: DishonestyReport) -> ReportView:
    return ReportView(
        id=r.id, reference=r.reference, reported_party=_party(deps, r), facts=r.facts,
        evidence=attachments.linked(session, "report", r.id), status=r.status,
        outcome=r.outcome, decision_reason=r.decision_reason, reward_fen=r.reward_fen,
        created_at=r.created_at, decided_at=r.decided_at)


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed.at(f"{_PARTY}.{field}", message,
                               detail=f"{_PARTY}.{field}: {message}")


def _checked_party(deps: Deps, raw: dict[str, Any], reporter: bytes,
                   today: date) -> dict[str, Any]:
    """The reported party's columns, or a 422 naming the field."""
    kind = raw["kind"]
    if kind == "person":
        for other in ("name", "unified_social_credit_code"):
            if raw.get(other) is not None:
                raise _bad(other, "only for an organisation")
        if not raw.get("id_number"):
            raise _bad("id_number", "a person is reported by ID number")
        try:
            number = IdNumber.parse(raw["id_number"], today=today)
        except InvalidIdentifier as exc:
            raise _bad("id_number", str(exc)) from None
        bidx = deps.bidx(number.value, kind="id_number")
        if bidx == reporter:
            raise _bad("id_number", "you cannot report yourself")
        return {"party_kind": kind, "party_bidx": bidx,
                "party_id_number_enc": deps.cipher.encrypt(
                    number.value, context="reports.party_id_number")}
    if raw.get("id_number") is not None:
        raise _bad("id_number", "only for a person")
    name = (raw.get("name") or "").strip()
    if not name:
        raise _bad("name", "an organisation is reported by name")
    code = raw.get("unified_social_credit_code")
    if code is not None:
        try:
            code = uscc.validate(code)
        except StdnumError:
            raise _bad("unified_social_credit_code",
                       "is not a valid unified social credit code") from None
    return {"party_kind": kind, "party_name": name, "party_uscc": code}


def _reference() -> str:
    return "JB" + "".join(secrets.choice(_ALPHABET) for _ in range(10))


def file_report(session: Session, deps: Deps, account_id: uuid.UUID, *,
                reported_party: dict[str, Any], facts: str,
                evidence: list[uuid.UUID]) -> ReportView:
    """File a report. Bad input is a 422 naming the field and counts nothing; each report
    filed counts against the citizen's rate limit (``report_limit_per_citizen``, 429)."""
    now = deps.clock()
    bidx = citizen_bidx(session, account_id)
    facts = facts.strip()
    if not facts:
        raise ValidationFailed.at("facts", "must not be blank", detail="facts: must not be blank")
    party = _checked_party(deps, reported_party, bidx, china_today(now))
    ids = attachments.check_owned(session, bidx, evidence, field="evidence")
    deps.limiter.hit(deps.settings.report_limit_per_citizen, "report", str(account_id))
    report = DishonestyReport(id=uuid.uuid4(), reference=_reference(), reporter_bidx=bidx,
                              facts=facts, status="pending", created_at=now, **party)
    with unique_or(session, ReferenceTaken):
        session.add(report)
    attachments.link(session, ids, case_kind="report", case_id=report.id, provider_id=None)
    return _mine(session, deps, report)


def my_reports(session: Session, deps: Deps, account_id: uuid.UUID, *, page: int,
               page_size: int) -> tuple[list[ReportView], int]:
    """The reports this citizen filed, newest first (never reports about them)."""
    mine = DishonestyReport.reporter_bidx == citizen_bidx(session, account_id)
    total = int(session.scalar(select(func.count()).select_from(DishonestyReport)
                               .where(mine)) or 0)
    rows = session.scalars(select(DishonestyReport).where(mine)
                           .order_by(DishonestyReport.created_at.desc(), DishonestyReport.id)
                           .offset((page - 1) * page_size).limit(page_size))
    return [_mine(session, deps, r) for r in rows], total


def export_reports_filed(session: Session, deps: Deps, account_id: uuid.UUID,
                         bidx: bytes) -> list[dict[str, Any]]:
    """For the citizen's export (PIPL): the reports they filed, as JSON-ready objects. Only
    ``reporter_bidx`` is matched: a report *about* this person is never part of it."""
    rows = session.scalars(select(DishonestyReport)
                           .where(DishonestyReport.reporter_bidx == bidx)
                           .order_by(DishonestyReport.created_at, DishonestyReport.id))
    out = []
    for r in rows:
        item = asdict(_mine(session, deps, r))
        item["id"] = str(r.id)
        item["created_at"] = r.created_at.isoformat()
        item["decided_at"] = r.decided_at.isoformat() if r.decided_at else None
        item["evidence"] = [{**e, "id": str(e["id"]), "created_at": e["created_at"].isoformat()}
                            for e in item["evidence"]]
        out.append(item)
    return out


# ---- triage (reviewers) ------------------------------------------------------------------

def _reporter_ref(deps: Deps, bidx: bytes) -> str:
    return "rp_" + deps.bidx(bidx.hex(), kind="report_reporter")[:8].hex()


def _reporters(session: Session, deps: Deps, bidxs: set[bytes]) -> dict[bytes, ReporterView]:
    subjects = citizen_subjects()
    accounts = {bytes(b): a for a, b in session.execute(
        select(subjects.c.account_id, subjects.c.bidx).where(subjects.c.bidx.in_(bidxs)))}
    out = {}
    for bidx in bidxs:
        ref = _reporter_ref(deps, bidx)
        account = accounts.get(bidx)
        if account is None:
            out[bidx] = ReporterView(ref, None, None, None, account_closed=True)
            continue
        p = profile(session, deps, account)
        out[bidx] = ReporterView(ref, p.name, p.phone, p.id_number, account_closed=False)
    return out


def _triage_views(session: Session, deps: Deps, staff: Principal,
                  rows: list[DishonestyReport]) -> list[TriageView]:
    reporters = _reporters(session, deps, {r.reporter_bidx for r in rows})
    names = client_refs(session, [r.forwarded_to for r in rows if r.forwarded_to])
    audit.staff_read(session, [r.reporter_bidx for r in rows], staff_id=staff.id,
                     role=staff.kind, action="report_triage", scope="reporter",
                     purpose=TRIAGE_PURPOSE, now=deps.clock())
    return [TriageView(
        id=r.id, reference=r.reference, reporter=reporters[r.reporter_bidx],
        reported_party=_party(deps, r), facts=r.facts,
        evidence=attachments.linked(session, "report", r.id), status=r.status,
        outcome=r.outcome, decision_reason=r.decision_reason, reward_fen=r.reward_fen,
        forwarded_to=r.forwarded_to,
        forwarded_to_name=names[r.forwarded_to].name if r.forwarded_to in names else None,
        created_at=r.created_at, decided_at=r.decided_at) for r in rows]


def queue(session: Session, deps: Deps, staff: Principal, *, status: str | None, page: int,
          page_size: int) -> tuple[list[TriageView], int]:
    """The reports, pending first and oldest first. Each reporter shown gets an entry in
    their access log."""
    where = [] if status is None else [DishonestyReport.status == status]
    total = int(session.scalar(select(func.count()).select_from(DishonestyReport)
                               .where(*where)) or 0)
    rows = list(session.scalars(
        select(DishonestyReport).where(*where)
        .order_by((DishonestyReport.status == "pending").desc(), DishonestyReport.created_at,
                  DishonestyReport.id)
        .offset((page - 1) * page_size).limit(page_size)))
    return _triage_views(session, deps, staff, rows), total


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def decide(session: Session, deps: Deps, staff: Principal, report_id: uuid.UUID, *,
           outcome: str, reason: str, reward_fen: int | None = None,
           provider_id: uuid.UUID | None = None) -> TriageView:
    """Decide once (409 ``report_decided`` after): ``forwarded`` names a data provider that
    may then read it, ``rewarded`` a reward in fen. Logged as a staff action; the reporter
    is notified."""
    now = deps.clock()
    report = session.scalar(select(DishonestyReport).where(DishonestyReport.id == report_id)
                            .with_for_update())
    if report is None:
        raise NotFound("No report has this id")
    if report.status != "pending":
        raise ReportDecided()
    reason = reason.strip()
    if not reason:
        raise ValidationFailed.at("reason", "must not be blank", detail="reason: must not be blank")
    if (outcome == "rewarded") != (reward_fen is not None):
        message = "required when rewarded" if outcome == "rewarded" else "only when rewarded"
        raise ValidationFailed.at("reward_fen", message, detail=f"reward_fen: {message}")
    if (outcome == "forwarded") != (provider_id is not None):
        message = "required when forwarded" if outcome == "forwarded" else "only when forwarded"
        raise ValidationFailed.at("provider_id", message, detail=f"provider_id: {message}")
    if provider_id is not None:
        ref = client_ref(session, provider_id)
        if ref is None or ref.type != "provider" or ref.disabled:
            raise ValidationFailed.at("provider_id", "not an active data provider",
                                      detail="provider_id: not an active data provider")
    report.status, report.outcome, report.decision_reason = "decided", outcome, reason
    report.reward_fen, report.forwarded_to = reward_fen, provider_id
    report.decided_by, report.decided_at = staff.id, now
    session.flush()
    audit.log_staff_action(session, actor_id=staff.id, actor_role=staff.kind,
                           action="report.decide", target=f"report:{report.id}",
                           before={"status": "pending"},
                           after={"outcome": outcome, "reward_fen": reward_fen,
                                  "provider_id": str(provider_id) if provider_id else None},
                           now=now)
    params = {"reference": report.reference}
    if reward_fen is not None:
        params["reward_yuan"] = _yuan(reward_fen)
    notify(session, deps, report.reporter_bidx, f"report_{outcome}", params, now=now,
           ref=f"report:{report.id}", dedupe_key=f"report:{report.id}:decided")
    return _triage_views(session, deps, staff, [report])[0]


# ---- data providers ----------------------------------------------------------------------

def forwarded(session: Session, deps: Deps, provider: Principal, *, page: int,
              page_size: int) -> tuple[list[ForwardedView], int]:
    """The reports forwarded to this provider, newest first, without the reporter."""
    mine = DishonestyReport.forwarded_to == provider.id
    total = int(session.scalar(select(func.count()).select_from(DishonestyReport)
                               .where(mine)) or 0)
    rows = session.scalars(select(DishonestyReport).where(mine)
                           .order_by(DishonestyReport.decided_at.desc(), DishonestyReport.id)
                           .offset((page - 1) * page_size).limit(page_size))
    return [ForwardedView(r.id, _party(deps, r), r.facts, r.decided_at or r.created_at)
            for r in rows], total


def forget_party(session: Session, bidx: bytes) -> int:
    """The reported person closed their account: wipe the copy of their ID number in the
    reports about them (the facts, the outcome and the blind index stay, as case data)."""
    result = session.execute(update(DishonestyReport).where(
        DishonestyReport.party_bidx == bidx,
        DishonestyReport.party_id_number_enc != personal.SHREDDED)
        .values(party_id_number_enc=personal.SHREDDED))
    return int(result.rowcount)  # type: ignore[attr-defined]
