"""Credit commitments (信用承诺): published texts, what citizens give, revoke, and breaches.

The signature is an EdDSA compact JWS (``typ: xy-commitment+jwt``) by the service's
``commitment`` signing key over the commitment's id, subject-free purpose and case, the
SHA-256 of its text and the time it was given; it holds no personal data.

A provider that holds records for a person may read that person's commitments (each answer
is an access-log entry) and report a breach. A breach takes the path of a partner's default
(DESIGN §7): the citizen is notified at once, and when the grace
(``commitment_breach_grace_days``) is over the worker writes the record, under the
catalogue item the text names, through ``records.service.record_defaults``; the citizen can
object to it like to any record.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xinyi.audit import service as audit
from xinyi.auth.principal import Principal
from xinyi.citizens.service import citizen_bidx
from xinyi.commitments.models import CommitmentText, CreditCommitment
from xinyi.deps import Deps
from xinyi.errors import Conflict, NotFound, ValidationFailed
from xinyi.jsonable import row
from xinyi.notifications.service import Notice, notify, notify_many
from xinyi.pii import IdNumber, InvalidIdentifier
from xinyi.records import service as records
from xinyi.signing import service as signing
from xinyi.subjects.service import subject_bidx
from xinyi.timeutil import china_today
from xinyi.uow import unique_or

JWS_TYPE = "xy-commitment+jwt"
PURPOSE = re.compile(r"[a-z][a-z0-9_]{1,31}")
READ_PURPOSE = "信用承诺核查 (commitment check by a data provider)"


class UnknownCommitmentText(ValidationFailed):
    code = "unknown_commitment_text"
    title = "No published commitment text has this purpose and version"


class CommitmentNotRevocable(Conflict):
    code = "commitment_not_revocable"
    title = "This commitment's text does not allow it to be revoked"


class CommitmentNotActive(Conflict):
    code = "commitment_not_active"
    title = "This commitment is no longer active (revoked or breached)"


class CommitmentRevoked(Conflict):
    code = "commitment_revoked"
    title = "This commitment was revoked: it cannot be breached"


class CommitmentAlreadyBreached(Conflict):
    code = "commitment_already_breached"
    title = "A breach of this commitment was already reported"


class TextVersionTaken(Conflict):
    code = "commitment_text_version_taken"
    title = "Another version of this text was published at the same moment; try again"


class BreachItemRefused(ValidationFailed):
    code = "breach_item_not_negative"
    title = "A breach must become a negative catalogue item"


@dataclass(frozen=True)
class TextView:
    purpose: str
    version: int
    title_zh: str
    text: str
    revocable: bool
    breach_catalogue_code: str
    published_at: datetime


@dataclass(frozen=True)
class CommitmentView:
    id: uuid.UUID
    purpose: str
    text_version: int
    title_zh: str
    text: str
    ref: str
    revocable: bool
    status: str
    signed_at: datetime
    kid: str
    signature: str
    revoked_at: datetime | None
    breached_at: datetime | None
    breach_facts: str | None
    breach_occurred_on: date | None
    record_due_at: datetime | None
    record_id: uuid.UUID | None


def _text_view(t: CommitmentText) -> TextView:
    return TextView(t.purpose, t.version, t.title_zh, t.text, t.revocable,
                    t.breach_catalogue_code, t.published_at)


def _view(c: CreditCommitment, t: CommitmentText) -> CommitmentView:
    return CommitmentView(
        id=c.id, purpose=c.purpose, text_version=c.text_version, title_zh=t.title_zh,
        text=c.text, ref=c.ref, revocable=t.revocable, status=c.status, signed_at=c.signed_at,
        kid=c.kid, signature=c.signature, revoked_at=c.revoked_at, breached_at=c.breached_at,
        breach_facts=c.breach_facts, breach_occurred_on=c.breach_occurred_on,
        record_due_at=c.record_due_at, record_id=c.record_id)


def _with_text(session: Session, c: CreditCommitment) -> CommitmentView:
    t = session.get(CommitmentText, (c.purpose, c.text_version))
    assert t is not None  # a foreign key
    return _view(c, t)


# ---- published texts -------------------------------------------------------------------

def _latest() -> Any:
    return (select(CommitmentText.purpose, func.max(CommitmentText.version).label("version"))
            .group_by(CommitmentText.purpose).subquery("latest"))


def current_texts(session: Session) -> list[TextView]:
    """The current (highest) version of every purpose's text."""
    latest = _latest()
    rows = session.scalars(select(CommitmentText).join(
        latest, (latest.c.purpose == CommitmentText.purpose)
        & (latest.c.version == CommitmentText.version)).order_by(CommitmentText.purpose))
    return [_text_view(t) for t in rows]


def publish_text(session: Session, deps: Deps, staff: Principal, *, purpose: str,
                 title_zh: str, text: str, revocable: bool,
                 breach_catalogue_code: str) -> TextView:
    """A new version of the purpose's text (version 1 for a new purpose). Commitments given
    under earlier versions keep theirs. Logged as a staff action."""
    if not PURPOSE.fullmatch(purpose):
        raise ValidationFailed.at("purpose", "lower-case letters, digits and _ (2 to 32)")
    item = records.catalogue_by_code(session).get(breach_catalogue_code)
    if item is None:
        raise records.UnknownCatalogueCode.at("breach_catalogue_code",
                                              "no catalogue item has this code")
    if item.polarity != "negative":
        raise BreachItemRefused.at("breach_catalogue_code", "must be a negative item")
    now = deps.clock()
    version = 1 + int(session.scalar(select(func.max(CommitmentText.version))
                                     .where(CommitmentText.purpose == purpose)) or 0)
    row = CommitmentText(purpose=purpose, version=version, title_zh=title_zh, text=text,
                         revocable=revocable, breach_catalogue_code=breach_catalogue_code,
                         published_at=now, published_by=staff.id)
    with unique_or(session, TextVersionTaken):
        session.add(row)
    audit.log_staff_action(session, actor_id=staff.id, actor_role=staff.kind,
                           action="commitment_text.publish",
                           target=f"commitment_text:{purpose}", before=None,
                           after={"version": version, "revocable": revocable,
                                  "breach_catalogue_code": breach_catalogue_code,
                                  "text_sha256": hashlib.sha256(text.encode()).hexdigest()},
                           now=now)
    return _text_view(row)


def _text(session: Session, purpose: str, version: int | None) -> CommitmentText:
    if version is None:
        version = session.scalar(select(func.max(CommitmentText.version))
                                 .where(CommitmentText.purpose == purpose))
        if version is None:
            raise UnknownCommitmentText.at("purpose", "no published text has this purpose")
    found = session.get(CommitmentText, (purpose, version))
    if found is None:
        exists = session.scalar(select(CommitmentText.version)
                                .where(CommitmentText.purpose == purpose).limit(1))
        if exists is None:
            raise UnknownCommitmentText.at("purpose", "no published text has this purpose")
        raise UnknownCommitmentText.at("text_version", "this purpose has no such version")
    return found


# ---- giving, listing, revoking -----------------------------------------------------------

def _claims(c: CreditCommitment) -> dict[str, Any]:
    return {"jti": str(c.id), "purpose": c.purpose, "ref": c.ref,
            "text_sha256": hashlib.sha256(c.text.encode()).hexdigest(),
            "iat": int(c.signed_at.timestamp())}


def record_commitment(session: Session, deps: Deps, subject_bidx: bytes, *, purpose: str,
                      ref: str, now: datetime,
                      text_version: int | None = None) -> CreditCommitment:
    """Sign and store a commitment to ``purpose``'s text (its current version unless
    ``text_version`` is given; an unknown one is a 422 naming the field)."""
    published = _text(session, purpose, text_version)
    key = signing.signing_key(session, deps, "commitment")
    commitment = CreditCommitment(id=uuid.uuid4(), subject_bidx=subject_bidx, purpose=purpose,
                                  text_version=published.version, ref=ref,
                                  text=published.text, kid=key.kid, signature="",
                                  signed_at=now.replace(microsecond=0), status="active")
    commitment.signature = jwt.encode(_claims(commitment), key.private_key, algorithm="EdDSA",
                                      headers={"kid": key.kid, "typ": JWS_TYPE})
    session.add(commitment)
    session.flush()
    return commitment


def give(session: Session, deps: Deps, account_id: uuid.UUID, *, purpose: str,
         text_version: int, ref: str | None = None) -> CommitmentView:
    now = deps.clock()
    bidx = citizen_bidx(session, account_id)
    commitment = record_commitment(session, deps, bidx, purpose=purpose,
                                   ref=ref or f"{purpose}:v{text_version}", now=now,
                                   text_version=text_version)
    return _with_text(session, commitment)


def _listed(session: Session, bidx: bytes, *, page: int | None = None,
            page_size: int = 20) -> tuple[list[CommitmentView], int]:
    mine = CreditCommitment.subject_bidx == bidx
    total = int(session.scalar(select(func.count()).select_from(CreditCommitment)
                               .where(mine)) or 0)
    stmt = (select(CreditCommitment, CommitmentText)
            .join(CommitmentText, (CommitmentText.purpose == CreditCommitment.purpose)
                  & (CommitmentText.version == CreditCommitment.text_version))
            .where(mine).order_by(CreditCommitment.signed_at.desc(), CreditCommitment.id))
    if page is not None:
        stmt = stmt.offset((page - 1) * page_size).limit(page_size)
    return [_view(c, t) for c, t in session.execute(stmt)], total


def my_commitments(session: Session, account_id: uuid.UUID, *, page: int,
                   page_size: int) -> tuple[list[CommitmentView], int]:
    """The citizen's commitments, newest first."""
    return _listed(session, citizen_bidx(session, account_id), page=page, page_size=page_size)


def revoke(session: Session, deps: Deps, account_id: uuid.UUID,
           commitment_id: uuid.UUID) -> CommitmentView:
    """Revoke an active commitment whose text allows it; another's answers as missing."""
    bidx = citizen_bidx(session, account_id)
    commitment = session.scalar(select(CreditCommitment).where(
        CreditCommitment.id == commitment_id).with_for_update())
    if commitment is None or commitment.subject_bidx != bidx:
        raise NotFound("No commitment of yours has this id")
    view = _with_text(session, commitment)
    if not view.revocable:
        raise CommitmentNotRevocable()
    if commitment.status != "active":
        raise CommitmentNotActive()
    commitment.status, commitment.revoked_at = "revoked", deps.clock()
    session.flush()
    return _with_text(session, commitment)


# ---- data providers ----------------------------------------------------------------------

NOT_HELD = "No person you hold records for has this ID number"


def _provider_read(session: Session, provider: Principal, bidx: bytes, action: str,
                   now: datetime) -> None:
    audit.append(session, audit.Access(
        subject_bidx=bidx, actor_type="provider", actor_id=str(provider.id),
        actor_name=provider.client_name or "unknown", action=action, scope="commitments",
        purpose=READ_PURPOSE), now=now)


def provider_commitments(session: Session, deps: Deps, provider: Principal,
                         id_number: str) -> list[CommitmentView]:
    """The commitments of a person this provider holds records for. A person it holds none
    for answers exactly like an unknown one (404), so nobody can probe who exists. Each
    answer is an entry in the person's access log."""
    now = deps.clock()
    try:
        parsed = IdNumber.parse(id_number, today=china_today(now))
    except InvalidIdentifier as exc:
        raise ValidationFailed.at("id_number", str(exc), location="query",
                                  detail=f"id_number: {exc}") from None
    bidx = subject_bidx(deps, parsed)
    if not records.holds_records_for(session, provider.id, bidx):
        raise NotFound(NOT_HELD)
    _provider_read(session, provider, bidx, "commitments", now)
    return _listed(session, bidx)[0]


def _zh(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def report_breach(session: Session, deps: Deps, provider: Principal,
                  commitment_id: uuid.UUID, *, facts: str,
                  occurred_on: date) -> CommitmentView:
    """The provider reports that the citizen broke this commitment: ``breached`` now, the
    citizen notified, the record written when the grace is over (worker). Once per
    commitment; never for a revoked one."""
    now = deps.clock()
    today = china_today(now)
    commitment = session.scalar(select(CreditCommitment).where(
        CreditCommitment.id == commitment_id).with_for_update())
    if commitment is None or not records.holds_records_for(session, provider.id,
                                                           commitment.subject_bidx):
        raise NotFound("No commitment of a person you hold records for has this id")
    facts = facts.strip()
    if not facts:
        raise ValidationFailed.at("facts", "must not be blank")
    if occurred_on > today:
        raise ValidationFailed.at("occurred_on", "must not be in the future")
    if occurred_on < china_today(commitment.signed_at):
        raise ValidationFailed.at("occurred_on", "must not be before the commitment was given")
    if commitment.status == "revoked":
        raise CommitmentRevoked()
    if commitment.status == "breached":
        raise CommitmentAlreadyBreached()
    text = session.get(CommitmentText, (commitment.purpose, commitment.text_version))
    assert text is not None
    item = records.catalogue_by_code(session)[text.breach_catalogue_code]
    due = now + timedelta(days=deps.settings.commitment_breach_grace_days)
    commitment.status, commitment.breached_at = "breached", now
    commitment.breach_provider_id, commitment.breach_facts = provider.id, facts
    commitment.breach_occurred_on, commitment.record_due_at = occurred_on, due
    session.flush()
    _provider_read(session, provider, commitment.subject_bidx, "commitment_breach", now)
    notify(session, deps, commitment.subject_bidx, "commitment_breached",
           {"provider": provider.client_name or "数据提供单位", "title": text.title_zh,
            "signed_on": _zh(china_today(commitment.signed_at)),
            "record_on": _zh(china_today(due)), "item": item.name_zh},
           now=now, ref=f"commitment:{commitment.id}",
           dedupe_key=f"commitment:{commitment.id}:breached", sms=True)
    return _view(commitment, text)


def record_breaches(session: Session, deps: Deps, *, batch: int = 500) -> int:
    """Worker, one batch: breaches whose grace is over become records (under the item their
    text names, the provider as source, ``commitment:<id>`` as reference), and the citizen
    is notified. Idempotent: a recorded breach is not picked again, and rows another worker
    holds are skipped."""
    now = deps.clock()
    rows = list(session.execute(
        select(CreditCommitment, CommitmentText)
        .join(CommitmentText, (CommitmentText.purpose == CreditCommitment.purpose)
              & (CommitmentText.version == CreditCommitment.text_version))
        .where(CreditCommitment.status == "breached", CreditCommitment.record_id.is_(None),
               CreditCommitment.record_due_at <= now)
        .order_by(CreditCommitment.record_due_at).limit(batch)
        .with_for_update(skip_locked=True, of=CreditCommitment)).all())
    if not rows:
        return 0
    defaults: Sequence[records.DefaultRecord] = [records.DefaultRecord(
        subject_bidx=c.subject_bidx, partner_id=_provider_of(c),
        catalogue_code=t.breach_catalogue_code, ref=f"commitment:{c.id}",
        summary=f"违反信用承诺“{t.title_zh}”（第{t.version}版，"
                f"{_zh(china_today(c.signed_at))}作出）：{c.breach_facts}",
        occurred_on=c.breach_occurred_on or china_today(now)) for c, t in rows]
    recorded = records.record_defaults(session, deps, list(defaults), now=now)
    items = records.catalogue_by_code(session)
    for c, _t in rows:
        c.record_id = recorded[f"commitment:{c.id}"]
    session.flush()
    notify_many(session, [Notice(
        c.subject_bidx, "commitment_breach_recorded",
        {"title": t.title_zh, "item": items[t.breach_catalogue_code].name_zh},
        f"commitment:{c.id}", f"commitment:{c.id}:recorded") for c, t in rows], now=now)
    return len(rows)


def _provider_of(c: CreditCommitment) -> uuid.UUID:
    assert c.breach_provider_id is not None  # a check constraint
    return c.breach_provider_id


def verify_commitment(session: Session, commitment_id: uuid.UUID) -> bool:
    """Whether the stored commitment still matches its signature."""
    commitment = session.get(CreditCommitment, commitment_id)
    if commitment is None:
        return False
    public = signing.any_public_key(session, commitment.kid)
    if public is None:
        return False
    try:
        claims = jwt.decode(commitment.signature, public, algorithms=["EdDSA"],
                            options={"verify_iat": False})
    except jwt.InvalidTokenError:
        return False
    return bool(claims == _claims(commitment))


def export_commitments(session: Session, deps: Deps, account_id: uuid.UUID,
                       bidx: bytes) -> list[dict[str, Any]]:
    """Every credit commitment the citizen signed, with its text and signature (export)."""
    return [row(c, "id", "purpose", "text_version", "ref", "text", "kid", "signature",
                "signed_at", "status", "revoked_at", "breached_at", "breach_facts",
                "breach_occurred_on", "record_id")
            for c in session.scalars(select(CreditCommitment)
                                     .where(CreditCommitment.subject_bidx == bidx)
                                     .order_by(CreditCommitment.signed_at, CreditCommitment.id))]
