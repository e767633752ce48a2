"""Offline verifications, uploaded later (``POST /v1/partner/verifications:offline``).

A partner's device verifies a credential without us (the SDK's ``OfflineVerifier``), queues
``(jti, benefit, decision, verified_at)`` and uploads the queue when it is online again, up to
:data:`MAX_ITEMS` a call. Each item is answered on its own:

* ``recorded``: a new verification row marked ``offline`` (its ``created_at`` is the partner's
  ``verified_at``), an access-log entry ``offline_verification`` in the citizen's log, and the
  jti is taken (online, the credential is then ``credential_used``);
* ``duplicate``: this partner uploaded this jti before (or earlier in the same call): the
  same single entry, nothing written;
* ``double_presentation``: the jti was verified online, or uploaded by another partner: the
  credential was shown twice; nothing is recorded for this item and staff get an alert;
* ``unattributable``: no credential has this jti any more and the item is older than the
  link is kept (:func:`xinyi.credentials.service.link_retention`): staff get an alert;
* ``invalid``: unknown jti, a benefit that is not this partner's, or a ``verified_at`` in
  the future or outside the credential's window (``reason`` says which).

Every answer is final: the SDK drops an item once it has one. The same item uploaded again
gets the same answer (``recorded`` becomes ``duplicate``), and alerts are raised once.

Set-based: a call costs two SELECTs (holder links with their chain heads; verifications of
the jtis) and one multi-row INSERT, whatever its size, plus one access-log append per item
recorded (:func:`xinyi.audit.service.append`).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import bindparam, select, union_all
from sqlalchemy.orm import Session

from xinyi.alerts.service import raise_alert
from xinyi.audit.service import Access, append_many
from xinyi.auth.principal import Principal
from xinyi.citizens.service import citizen_subjects
from xinyi.credentials.models import Credential, CredentialHolder, Verification
from xinyi.credentials.service import link_retention
from xinyi.credentials.verification import USED_PREFIX
from xinyi.dbutil import insert_for
from xinyi.deps import Deps
from xinyi.scoring.service import BenefitView, benefit_rules
from xinyi.uow import after_commit

log = logging.getLogger(__name__)

MAX_ITEMS: Final = 500
# A partner's clock may run a little ahead of ours.
FUTURE_SKEW: Final = timedelta(minutes=5)
# The SDK's default leeway around a credential's window (DESIGN.md §5).
OFFLINE_LEEWAY: Final = timedelta(seconds=60)
ACTION: Final = "offline_verification"
STATUSES: Final = ("recorded", "duplicate", "double_presentation", "unattributable", "invalid")
REASONS: Final = ("unknown_benefit", "benefit_not_for_partner", "unknown_credential",
                  "verified_in_future", "outside_credential_window")


@dataclass(frozen=True)
class _Link:
    bidx: bytes
    not_before: datetime
    expires_at: datetime


_CITIZENS = citizen_subjects()
_LIVE = (select(Credential.jti.label("jti"), _CITIZENS.c.bidx.label("bidx"),
                Credential.not_before.label("not_before"),
                Credential.expires_at.label("expires_at"))
         .join(_CITIZENS, _CITIZENS.c.account_id == Credential.account_id)
         .where(Credential.jti.in_(bindparam("jtis", expanding=True))))
_KEPT = (select(CredentialHolder.jti, CredentialHolder.subject_bidx,
                CredentialHolder.not_before, CredentialHolder.expires_at)
         .where(CredentialHolder.jti.in_(bindparam("jtis", expanding=True))))
_LINKS_UNION = union_all(_LIVE, _KEPT).subquery("links")
# One statement: the holder of each jti (live credential, or the link kept after its purge).
_LINKS = select(_LINKS_UNION.c.jti, _LINKS_UNION.c.bidx, _LINKS_UNION.c.not_before,
                _LINKS_UNION.c.expires_at)
_TAKEN = select(Verification.credential_jti, Verification.partner_id, Verification.offline,
                Verification.id).where(
    Verification.credential_jti.in_(bindparam("jtis", expanding=True)))


def _answer(jti: str, status: str, *, verification_id: uuid.UUID | None = None,
            reason: str | None = None) -> dict[str, Any]:
    return {"jti": jti, "status": status,
            "verification_id": str(verification_id) if verification_id else None,
            "reason": reason}


def _rules(session: Session, deps: Deps) -> dict[str, BenefitView]:
    """Benefit rules by code and by their short QR code (what the credential's ``ben`` lists,
    so what an offline verifier knows the benefit by). The online verification's cache entry,
    which a staff edit of a rule clears."""
    by_code: dict[str, BenefitView] = deps.cache.get_or_load(
        ("benefit-rules",), lambda: {b.code: b for b in benefit_rules(session)})
    return {**{b.qr_code: b for b in by_code.values()}, **by_code}


def upload(session: Session, deps: Deps, partner: Principal,
           items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answer to each item, in order (see the module's docstring). ``items`` are
    well-formed (the schema checked them): ``jti``, ``benefit``, ``decision``, ``verified_at``
    (aware UTC)."""
    if not 1 <= len(items) <= MAX_ITEMS:
        raise ValueError(f"1 to {MAX_ITEMS} items")
    now = deps.clock()
    rules = _rules(session, deps)
    answers: dict[str, dict[str, Any]] = {}  # by jti: the first occurrence decides
    wanted: dict[str, tuple[BenefitView, dict[str, Any]]] = {}
    for item in items:
        jti = item["jti"]
        if jti in answers or jti in wanted:
            continue
        rule = rules.get(item["benefit"])
        if rule is None:
            answers[jti] = _answer(jti, "invalid", reason="unknown_benefit")
        elif rule.partner_kind != partner.client_kind:
            answers[jti] = _answer(jti, "invalid", reason="benefit_not_for_partner")
        elif item["verified_at"] > now + FUTURE_SKEW:
            answers[jti] = _answer(jti, "invalid", reason="verified_in_future")
        else:
            wanted[jti] = (rule, item)
    if wanted:
        answers.update(_record(session, deps, partner, wanted, now))
    # A jti twice in one call is one entry: its later occurrences are duplicates of the first.
    out, first = [], set()
    for item in items:
        answer = answers[item["jti"]]
        if item["jti"] in first and answer["status"] in ("recorded", "duplicate"):
            answer = {**answer, "status": "duplicate"}
        first.add(item["jti"])
        out.append(answer)
    log.info("offline verifications uploaded", extra={
        "event": "offline_upload", "partner_id": str(partner.id), "items": len(items),
        "recorded": sum(a["status"] == "recorded" for a in out)})
    return out


def _record(session: Session, deps: Deps, partner: Principal,
            wanted: dict[str, tuple[BenefitView, dict[str, Any]]],
            now: datetime) -> dict[str, dict[str, Any]]:
    conn = session.connection()
    jtis = list(wanted)
    links = {r[0]: _Link(bytes(r[1]), r[2], r[3])
             for r in conn.execute(_LINKS, {"jtis": jtis})}
    taken = {r[0]: (r[1], bool(r[2]), r[3]) for r in conn.execute(_TAKEN, {"jtis": jtis})}
    retention = link_retention(deps.settings)
    answers: dict[str, dict[str, Any]] = {}
    doubles: list[tuple[str, bool]] = []  # (jti, verified online)
    unattributable: list[str] = []
    rows: list[dict[str, Any]] = []
    for jti, (rule, item) in wanted.items():
        verified_at: datetime = item["verified_at"]
        if jti in taken:
            answers[jti] = _taken_answer(jti, partner, *taken[jti], doubles)
            continue
        link = links.get(jti)
        if link is None:
            if verified_at < now - retention:
                unattributable.append(jti)
                answers[jti] = _answer(jti, "unattributable")
            else:
                answers[jti] = _answer(jti, "invalid", reason="unknown_credential")
            continue
        if not (link.not_before - OFFLINE_LEEWAY <= verified_at
                < link.expires_at + OFFLINE_LEEWAY):
            answers[jti] = _answer(jti, "invalid", reason="outside_credential_window")
            continue
        verification_id = uuid.uuid4()
        response = {"id": str(verification_id), "decision": item["decision"],
                    "benefit": {"code": rule.code, "name_zh": rule.name_zh,
                                "name_en": rule.name_en, "limits": {}},
                    "offline": True, "verified_at": verified_at.isoformat()}
        rows.append({"id": verification_id, "partner_id": partner.id, "idempotency_key": None,
                     "credential_jti": jti, "subject_bidx": link.bidx,
                     "benefit_code": rule.code, "decision": item["decision"],
                     "response": response, "created_at": verified_at, "offline": True})
    # One order for every upload (jtis for the insert, then chains for the appends): two
    # uploads that share jtis or citizens wait for each other, never deadlock.
    rows.sort(key=lambda r: r["credential_jti"])
    inserted = _insert(session, rows)
    lost = [r["credential_jti"] for r in rows if r["credential_jti"] not in inserted]
    if lost:  # taken meanwhile by a concurrent verification or upload
        again = {r[0]: (r[1], bool(r[2]), r[3]) for r in conn.execute(_TAKEN, {"jtis": lost})}
        for jti in lost:
            answers[jti] = _taken_answer(jti, partner, *again[jti], doubles)
    marks: list[tuple[str, bytes, int]] = []
    entries: list[tuple[Access, datetime]] = []
    for row in sorted(rows, key=lambda r: (r["subject_bidx"], r["created_at"])):
        jti = row["credential_jti"]
        if jti not in inserted:
            continue
        link, rule = links[jti], wanted[jti][0]
        entries.append((Access(
            subject_bidx=link.bidx, actor_type="partner", actor_id=str(partner.id),
            actor_name=partner.client_name or "unknown", action=ACTION,
            scope=f"benefit:{rule.code}", purpose=f"verify {rule.code} offline"),
            row["created_at"]))
        answers[jti] = _answer(jti, "recorded", verification_id=row["id"])
        ttl = int((link.expires_at - now).total_seconds()) + 120
        if ttl > 0:  # still presentable online: take it there too
            marks.append((USED_PREFIX + jti, b"offline", ttl))
    append_many(session, entries)  # one statement for the call's access-log entries
    if marks:
        after_commit(session, lambda: deps.kv.set_many(marks))
    _alert(session, deps, partner, doubles, unattributable, now)
    return answers


def _taken_answer(jti: str, partner: Principal, by: uuid.UUID, offline: bool,
                  verification_id: uuid.UUID,
                  doubles: list[tuple[str, bool]]) -> dict[str, Any]:
    if by == partner.id and offline:
        return _answer(jti, "duplicate", verification_id=verification_id)
    doubles.append((jti, not offline))
    return _answer(jti, "double_presentation")


_INSERTS: dict[str, Any] = {}


def _insert(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """One multi-row ``INSERT … ON CONFLICT (credential_jti) DO NOTHING RETURNING``: the jtis
    this call recorded (the others were taken by a concurrent request)."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    stmt = _INSERTS.get(dialect)
    if stmt is None:
        base: Any = insert_for(session, Verification.__table__)  # type: ignore[arg-type]
        stmt = _INSERTS[dialect] = (base.on_conflict_do_nothing(
            index_elements=["credential_jti"]).returning(Verification.credential_jti))
    return {r[0] for r in session.connection().execute(stmt, rows)}


def _alert(session: Session, deps: Deps, partner: Principal,
           doubles: list[tuple[str, bool]], unattributable: list[str], now: datetime) -> None:
    """Staff see each double presentation once (per partner and credential) and each batch
    of unattributable items once. Credential ids are random, never personal data."""
    for jti, online in doubles:
        where = "online" if online else "by another partner"
        raise_alert(session, kind="offline_double_presentation", ref=f"credential:{jti}",
                    text=f"Credential {jti} was uploaded as verified offline by partner "
                         f"{partner.id}, but it was already verified {where}: the same "
                         "QR code was presented twice.",
                    dedupe_key=f"offline-double:{partner.id}:{jti}", now=now)
    if unattributable:
        digest = hashlib.sha256(",".join(sorted(unattributable)).encode()).hexdigest()[:32]
        hours = int(link_retention(deps.settings).total_seconds() // 3600)
        raise_alert(session, kind="offline_unattributable", ref=f"partner:{partner.id}",
                    text=f"{len(unattributable)} offline verification(s) uploaded by partner "
                         f"{partner.id} are older than {hours} h and their credentials no "
                         "longer name a holder: they are in no citizen's access log.",
                    dedupe_key=f"offline-unattributable:{partner.id}:{digest}", now=now)
