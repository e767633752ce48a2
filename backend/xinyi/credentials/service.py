"""Issuing QR credentials (诚信卡二维码) and rendering them; no personal data in any token."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from xinyi.auth.service import client_refs
from xinyi.citizens.service import citizen_subjects
from xinyi.config import Settings
from xinyi.credentials import qr
from xinyi.credentials.models import Credential, CredentialHolder, Verification
from xinyi.credentials.tokens import MAX_BATCH, MAX_TTL_SECONDS, IssuedCredential, issue_batch
from xinyi.dbutil import china_date, insert_for
from xinyi.deps import Deps
from xinyi.errors import NotFound, ValidationFailed
from xinyi.jsonable import row
from xinyi.records.service import black_listed
from xinyi.scoring import rules
from xinyi.scoring.service import benefit_rules, credit_report, stored_scores
from xinyi.signing import service as signing
from xinyi.uow import after_rollback

log = logging.getLogger(__name__)
SHORT_CODE_PREFIX = "cred:short:"
_CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")  # a jti: base64url, like the column
# A retired credential key verifies for as long as the longest prefetch it may have signed,
# plus skew: the signing domain keeps the keys, this one knows how long its tokens live.
RETIRED_KEY_GRACE = timedelta(seconds=MAX_BATCH * MAX_TTL_SECONDS + 120)


def short_code_key(code: str) -> str:
    # Hashed so a Redis dump does not hand out live codes.
    return SHORT_CODE_PREFIX + hashlib.sha256(code.encode()).hexdigest()


_CITIZENS, _SCORES = citizen_subjects(), stored_scores()
_SCORE = (select(_SCORES.c.score, black_listed(_CITIZENS.c.bidx))
          .select_from(_CITIZENS)
          .outerjoin(_SCORES, _SCORES.c.bidx == _CITIZENS.c.bidx)
          .where(_CITIZENS.c.account_id == bindparam("account_id")))


def _tier_and_benefits(session: Session, deps: Deps, account_id: uuid.UUID,
                       now: datetime) -> tuple[str, list[str]]:
    """From the stored score and cached rules; the full report (records, clean years) only
    when a rule with a clean-years condition is within reach of the score. An open black-list
    entry withholds every benefit, offline as online: the QR then lists none."""
    row = session.connection().execute(_SCORE, {"account_id": account_id}).first()
    score = row[0] if row and row[0] is not None else rules.SCORE_BASE
    if row and row[1]:
        return rules.tier_for(score), []
    benefits = deps.cache.get_or_load(("benefit-rules-list",), lambda: benefit_rules(session))
    if any("clean_years" in b.limits and score >= b.min_score for b in benefits):
        report = credit_report(session, account_id, now=now)
        return report.tier, [b.qr_code for b in report.benefits if b.eligible]
    return rules.tier_for(score), [b.qr_code for b in benefits
                                   if "clean_years" not in b.limits
                                   and rules.eligible(b.rule, score)]


def issue(session: Session, deps: Deps, account_id: uuid.UUID,
          count: int) -> list[IssuedCredential]:
    """``count`` credentials with consecutive windows, for a phone that will be offline."""
    if not 1 <= count <= 15:
        raise ValidationFailed.at("count", "must be 1 to 15", detail="count must be 1 to 15")
    now = deps.clock()
    tier, ben = _tier_and_benefits(session, deps, account_id, now)
    key = signing.signing_key(session, deps, "credential")
    issued = issue_batch(key, issuer=deps.settings.credential_issuer, tier=tier,
                         benefits=ben, start=now, count=count)
    session.connection().execute(insert(Credential), [
        {"jti": c.jti, "subject": c.subject, "account_id": account_id, "kid": c.kid,
         "payload": c.qr_payload, "not_before": c.not_before, "expires_at": c.expires_at,
         "created_at": now} for c in issued])
    # Redis before the commit: if it is down, nothing is committed. Should the commit fail
    # instead, the short codes are taken back (they would name credentials that do not exist).
    codes = [short_code_key(c.short_code) for c in issued]
    deps.kv.set_many([(code, c.jti.encode(),
                       max(1, int((c.expires_at - now).total_seconds()) + 1))
                      for code, c in zip(codes, issued, strict=True)])

    def take_back() -> None:
        for code in codes:
            deps.kv.delete(code)

    after_rollback(session, take_back)
    return issued


def payload_of(session: Session, account_id: uuid.UUID, credential_id: str,
               now: datetime) -> str:
    # Anything else (a NUL, say) is no credential id, and must not reach the database.
    cred = (session.get(Credential, credential_id)
            if _CREDENTIAL_ID.fullmatch(credential_id) else None)
    if cred is None or cred.account_id != account_id or cred.expires_at <= now:
        raise NotFound("No live credential of yours has this id")
    return cred.payload


def render(session: Session, deps: Deps, account_id: uuid.UUID, credential_id: str,
           fmt: str) -> bytes:
    payload = payload_of(session, account_id, credential_id, deps.clock())
    return qr.render_png(payload) if fmt == "png" else qr.render_svg(payload)


def link_retention(settings: Settings) -> timedelta:
    """How long after its expiry a credential's jti still names its holder: the offline
    verifier's key-age limit plus the upload window."""
    return timedelta(hours=settings.offline_key_age_hours + settings.offline_upload_window_hours)


def purge_expired(session: Session, deps: Deps) -> int:
    """Credentials are useless an hour after expiry; verifications keep their own copy. The
    token goes then, the jti → holder link (:class:`CredentialHolder`) only after
    :func:`link_retention`. Three statements, however many credentials."""
    now = deps.clock()
    cutoff = now - timedelta(hours=1)
    keep = (select(Credential.jti, _CITIZENS.c.bidx, Credential.not_before,
                   Credential.expires_at)
            .join(_CITIZENS, _CITIZENS.c.account_id == Credential.account_id)
            .where(Credential.expires_at < cutoff,
                   Credential.expires_at >= now - link_retention(deps.settings)))
    holders: Any = insert_for(session, CredentialHolder.__table__)  # type: ignore[arg-type]
    session.execute(holders.from_select(
        ["jti", "subject_bidx", "not_before", "expires_at"], keep).on_conflict_do_nothing())
    result = session.execute(delete(Credential).where(Credential.expires_at < cutoff))
    session.execute(delete(CredentialHolder).where(
        CredentialHolder.expires_at < now - link_retention(deps.settings)))
    return int(result.rowcount)  # type: ignore[attr-defined]


def owner_of(session: Session, jti: str) -> Credential | None:
    return session.scalar(select(Credential).where(Credential.jti == jti))


def export_credentials(session: Session, deps: Deps, account_id: uuid.UUID,
                       bidx: bytes) -> list[dict[str, Any]]:
    """The citizen's credentials still held (their validity, never the token itself)."""
    return [row(c, "jti", "subject", "kid", "not_before", "expires_at", "created_at")
            for c in session.scalars(select(Credential).where(Credential.account_id == account_id)
                                     .order_by(Credential.created_at, Credential.jti))]


def export_verifications(session: Session, deps: Deps, account_id: uuid.UUID,
                         bidx: bytes) -> list[dict[str, Any]]:
    """Every verification of the citizen's credentials by a partner, with its answer."""
    found = list(session.scalars(select(Verification).where(Verification.subject_bidx == bidx)
                                 .order_by(Verification.created_at, Verification.id)))
    names = client_refs(session, {v.partner_id for v in found})
    return [row(v, "id", "partner_id", "benefit_code", "decision", "created_at",
                # The answer the partner got, without the fields kept for replays only.
                response={k: a for k, a in v.response.items() if not k.startswith("_")},
                partner_name=names[v.partner_id].name if v.partner_id in names else None)
            for v in found]


def verifications_per_day(session: Session, since: datetime) -> list[tuple[date, str, int]]:
    """Partners' verification answers per China day and decision since ``since``, oldest
    first: one GROUP BY (the credit office's statistics)."""
    day = china_date(session, Verification.created_at)
    return [(d, decision, int(n)) for d, decision, n in session.execute(
        select(day, Verification.decision, func.count())
        .where(Verification.created_at >= since)
        .group_by(day, Verification.decision).order_by(day, Verification.decision))]
def revoke_all_of(session: Session, account_id: uuid.UUID) -> int:
    """Every credential of this account (a closed one) stops verifying online at once: the
    rows go, so a QR or short code presented later names nothing (a short code's Redis entry
    points at a missing row and is refused). Signed QR payloads already on a phone can still
    pass an offline check until they expire, at most two minutes each. Returns how many."""
    result = session.execute(delete(Credential).where(Credential.account_id == account_id))
    return int(result.rowcount)  # type: ignore[attr-defined]
