"""Partner verification of a QR credential or short code (信用核验), once per credential.

The answer is ``eligible`` or ``standard_terms`` — never a refusal of service (R6). Only an
open black-list entry, which always carries a legal basis, can withhold a benefit. Every
verification writes a durable access-log entry in the same transaction as its record.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from xinyi.audit.service import Access, append_after
from xinyi.auth.principal import Principal
from xinyi.citizens.service import citizen_subjects
from xinyi.credentials import tokens
from xinyi.credentials.errors import (
    BenefitNotForPartner,
    CredentialExpired,
    CredentialInvalid,
    CredentialNotYetValid,
    CredentialUnknownKey,
    CredentialUsed,
    IdempotencyKeyReused,
    UnknownBenefit,
    VerificationInProgress,
)
from xinyi.credentials.models import Credential, Verification
from xinyi.credentials.service import RETIRED_KEY_GRACE, short_code_key
from xinyi.dbutil import insert_for, owned_by
from xinyi.deps import Deps
from xinyi.records.service import black_listed
from xinyi.scoring import rules
from xinyi.scoring.service import (
    BenefitView,
    benefit_rules,
    credit_report,
    stored_scores,
    with_eligibility,
)
from xinyi.signing import service as signing
from xinyi.subjects.service import known_to, pseudonym, remember
from xinyi.uow import after_rollback, restart_reading

#: Answers by decision (a bounded label). Not a log line per verification: at the rates a
#: city's partners reach, formatting and redacting one JSON line was 8 % of the request's work,
#: and the row and its access-log entry already say who asked what.
DECISIONS = Counter("xinyi_verifications", "Verifications answered, by decision", ["decision"])
USED_PREFIX = "cred:used:"
SHORT_CODE_RATE = "30/minute"
ONLINE_LEEWAY_SECONDS = 5
# A retry that meets its first request still in flight waits this long for that answer.
IN_FLIGHT_WAIT_SECONDS = 2.0
IN_FLIGHT_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class _Holder:
    """The credential with everything a decision and its log entry need, read in one query."""

    jti: str
    subject: str
    account_id: uuid.UUID
    not_before: datetime
    expires_at: datetime
    bidx: bytes
    score: int | None
    black_listed: bool
    known: bool  # the partner's pseudonym for this citizen is already recorded


_CITIZENS, _SCORES = citizen_subjects(), stored_scores()
_LOAD = (
    select(Credential.jti, Credential.subject, Credential.account_id, Credential.not_before,
           Credential.expires_at, _CITIZENS.c.bidx, _SCORES.c.score,
           black_listed(_CITIZENS.c.bidx).label("black"),
           known_to(bindparam("partner_id"), _CITIZENS.c.bidx).label("known"))
    .join(_CITIZENS, _CITIZENS.c.account_id == Credential.account_id)
    .outerjoin(_SCORES, _SCORES.c.bidx == _CITIZENS.c.bidx)
    .where(Credential.jti == bindparam("jti")))


_RECORD: dict[str, Any] = {}


def _record_statement(session: Session) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id``, built once per dialect: a row that
    meets a unique constraint (this credential's jti, or the partner's Idempotency-Key) is
    simply not written, and the caller learns it from the empty result, with no savepoint
    around the insert (two round trips fewer). On PostgreSQL the insert still waits for a
    concurrent uncommitted duplicate to end before deciding, as a plain insert would."""
    dialect = session.get_bind().dialect.name
    stmt = _RECORD.get(dialect)
    if stmt is None:
        table: Any = Verification.__table__
        # Every column a named parameter: the statement also runs as a CTE (append_after).
        base: Any = insert_for(session, table).values(
            {c.key: bindparam(c.key, type_=c.type) for c in table.columns})
        stmt = _RECORD[dialect] = base.on_conflict_do_nothing().returning(Verification.id)
    return stmt


def _load(session: Session, partner: Principal, jti: str) -> _Holder | None:
    row = session.connection().execute(_LOAD, {"jti": jti, "partner_id": partner.id}).first()
    if row is None:
        return None
    return _Holder(row[0], row[1], row[2], row[3], row[4], bytes(row[5]), row[6], bool(row[7]),
                   bool(row[8]))


def _window(held: _Holder, now: datetime) -> None:
    if held.expires_at + timedelta(seconds=ONLINE_LEEWAY_SECONDS) <= now:
        raise CredentialExpired()
    if held.not_before - timedelta(seconds=ONLINE_LEEWAY_SECONDS) > now:
        raise CredentialNotYetValid()


def _credential(session: Session, deps: Deps, partner: Principal, presented: str,
                now: datetime) -> _Holder:
    if len(presented.encode()) > tokens.MAX_VERIFY_INPUT_BYTES:
        raise CredentialInvalid("The credential is too large")  # refused before decoding
    if tokens.is_short_code(presented):
        deps.limiter.hit(SHORT_CODE_RATE, "short-code", str(partner.id))
        jti = deps.kv.get(short_code_key(presented))
        if jti is None:
            raise CredentialInvalid("Unknown or expired short code")
        held = _load(session, partner, jti.decode())
        if held is None:
            raise CredentialInvalid()
        _window(held, now)
        return held
    if not presented.startswith(tokens.PREFIX):
        raise CredentialInvalid("Not an xinyi credential")

    def check(fresh: bool) -> tokens.VerifiedClaims:
        known = signing.verification_keys(session, deps, retired_grace=RETIRED_KEY_GRACE,
                                          fresh=fresh)
        return tokens.verify(presented, known,
                             issuer=deps.settings.credential_issuer, now=now,
                             leeway_seconds=ONLINE_LEEWAY_SECONDS)

    try:
        claims = check(fresh=False)
    except CredentialUnknownKey:
        # The key may be newer than this process's cache (rotated by another process).
        claims = check(fresh=True)
    held = _load(session, partner, claims.jti)
    if held is None or held.subject != claims.subject:
        raise CredentialInvalid()
    return held


def _rule(session: Session, deps: Deps, partner: Principal, code: str) -> BenefitView:
    rules_by_code = deps.cache.get_or_load(
        ("benefit-rules",), lambda: {b.code: b for b in benefit_rules(session)})
    rule = rules_by_code.get(code)
    if rule is None:
        raise UnknownBenefit.at("benefit", "no benefit rule has this code")
    if rule.partner_kind != partner.client_kind:
        raise BenefitNotForPartner.at("benefit", "not offered by this partner kind")
    return rule


def _tier_and_grant(session: Session, held: _Holder, rule: BenefitView,
                    now: datetime) -> tuple[int, str, bool]:
    """``(score, tier, conditions met)``: the stored score suffices, except for rules with a
    clean-years condition."""
    if "clean_years" in rule.limits:
        report = credit_report(session, held.account_id, now=now)
        # Whether the rule's conditions are met: the black list is applied by the caller.
        granted = any(b.code == rule.code and (b.eligible or b.reason == "black_list_entry")
                      for b in report.benefits)
        return report.score, report.tier, granted
    score = held.score if held.score is not None else rules.SCORE_BASE
    return score, rules.tier_for(score), rules.eligible(rule.rule, score)


_PRIOR = select(Verification.benefit_code, Verification.response).where(
    Verification.partner_id == bindparam("partner_id"),
    Verification.idempotency_key == bindparam("key"))


def _previous(session: Session, partner: Principal, key: str | None,
              benefit: str, presented: str) -> dict[str, Any] | None:
    if key is None:
        return None
    # Core, two columns: a partner that sends a key on every verification pays this read.
    prior = session.connection().execute(_PRIOR, {"partner_id": partner.id, "key": key}).first()
    if prior is None:
        return None
    if prior.benefit_code != benefit or prior.response.get("_credential") != _fingerprint(
            presented):
        raise IdempotencyKeyReused.at("Idempotency-Key",
                                      "already used for another credential or benefit",
                                      location="headers")
    return {k: v for k, v in prior.response.items() if not k.startswith("_")}


def _claim(partner: Principal, idempotency_key: str | None) -> bytes:
    """What marks a credential as taken in Redis: who took it, under which key (hashed)."""
    if idempotency_key is None:
        return b"1"
    return hashlib.sha256(f"{partner.id}:{idempotency_key}".encode()).hexdigest()[:32].encode()


def _await_previous(session: Session, deps: Deps, partner: Principal, key: str,
                    benefit: str, presented: str, used_key: str) -> dict[str, Any] | None:
    """The answer of the request under ``key`` still in flight, once it is committed; None
    if that takes too long or the request gave the credential back (it failed)."""
    claim = _claim(partner, key)
    deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(IN_FLIGHT_POLL_SECONDS)
        restart_reading(session)  # see what the other request committed meanwhile
        replay = _previous(session, partner, key, benefit, presented)
        if replay is not None:
            return replay
        if deps.kv.get(used_key) != claim:
            return None
    return None


class _AlreadyRecorded(Exception):
    """The verification's row met a unique constraint (another answer is recorded), so it
    was not written."""


class _Mark:
    """The Redis mark that takes a credential, given back unless the verification is kept."""

    def __init__(self, deps: Deps, key: str) -> None:
        self._deps, self._key, self._kept = deps, key, False

    def keep(self) -> None:
        self._kept = True

    def release(self) -> None:
        if not self._kept:
            self._deps.kv.delete(self._key)


def _fingerprint(presented: str) -> str:
    return hashlib.sha256(presented.encode()).hexdigest()[:32]


def _decide_and_record(session: Session, deps: Deps, partner: Principal, held: _Holder,
                       rule: BenefitView, credential: str, idempotency_key: str | None,
                       now: datetime) -> dict[str, Any]:
    score, tier, granted = _tier_and_grant(session, held, rule, now)
    decided = with_eligibility(rule, granted, held.black_listed)
    eligible, reason = bool(decided.eligible), decided.reason
    # Recorded once per (partner, citizen); a returning citizen costs no write.
    subject = (pseudonym(deps, partner.id, held.bidx) if held.known
               else remember(session, deps, partner.id, held.bidx))
    verification_id = uuid.uuid4()
    response: dict[str, Any] = {
        "id": str(verification_id),
        "decision": "eligible" if eligible else "standard_terms",
        "reason": reason,
        "benefit": {"code": rule.code, "name_zh": rule.name_zh, "name_en": rule.name_en,
                    "limits": dict(rule.rule.grants) if eligible else {}},
        "tier": tier,
        "subject": subject,
        "expires_at": held.expires_at.isoformat(),
    }
    # The verification's row and its access-log entry: one statement on PostgreSQL.
    if not append_after(session, _record_statement(session), {
        "id": verification_id, "partner_id": partner.id, "idempotency_key": idempotency_key,
        "credential_jti": held.jti, "subject_bidx": held.bidx, "benefit_code": rule.code,
        "decision": response["decision"], "created_at": now, "offline": False,
        "response": {**response, "_credential": _fingerprint(credential),
                     "_inputs": _inputs(rule, score, granted, held.black_listed)}},
            Access(subject_bidx=held.bidx, actor_type="partner", actor_id=str(partner.id),
                   actor_name=partner.client_name or "unknown", action="verification",
                   scope=f"benefit:{rule.code}", purpose=f"verify {rule.code}"), now=now):
        raise _AlreadyRecorded()  # nothing of this verification is written
    return response


def _inputs(rule: BenefitView, score: int, met: bool, listed: bool) -> dict[str, Any]:
    """What the answer was decided from, kept with it for the citizen's explanation (never
    part of the partner's answer: keys starting with ``_`` are not replayed)."""
    inputs: dict[str, Any] = {"score": score, "min_score": rule.min_score,
                              "conditions_met": met, "black_listed": listed}
    if "clean_years" in rule.limits:
        inputs["clean_years_required"] = rule.limits["clean_years"]
    return inputs


def verify(session: Session, deps: Deps, partner: Principal, *, credential: str, benefit: str,
           idempotency_key: str | None = None) -> dict[str, Any]:
    now = deps.clock()
    # A short code typed in groups is the same code: one spelling for the lookup, the rate
    # limit and the Idempotency-Key's fingerprint.
    credential = tokens.normalize_short_code(credential) or credential
    replay = _previous(session, partner, idempotency_key, benefit, credential)
    if replay is not None:
        return replay
    rule = _rule(session, deps, partner, benefit)
    held = _credential(session, deps, partner, credential, now)
    used_key = USED_PREFIX + held.jti
    ttl = max(60, int((held.expires_at - now).total_seconds()) + 120)
    claim = _claim(partner, idempotency_key)
    if not deps.kv.set(used_key, claim, ttl=ttl, only_if_absent=True):
        # A concurrent retry with the same key may have just finished: answer as it did.
        replay = _previous(session, partner, idempotency_key, benefit, credential)
        if replay is not None:
            return replay
        if idempotency_key is not None and deps.kv.get(used_key) == claim:
            # This partner's first request under this key holds the credential and is being
            # recorded right now (a client retry after a timeout, say): its answer is ours.
            replay = _await_previous(session, deps, partner, idempotency_key, benefit,
                                     credential, used_key)
            if replay is not None:
                return replay
            raise VerificationInProgress()
        raise CredentialUsed()
    # Nothing recorded means the credential was not used: unless this unit commits, the
    # citizen may show it again.
    mark = _Mark(deps, used_key)
    after_rollback(session, mark.release)
    try:
        response = _decide_and_record(session, deps, partner, held, rule, credential,
                                      idempotency_key, now)
    except _AlreadyRecorded:
        # The database already holds a verification of this credential (say Redis lost its
        # state): the unique jti is the last line of defence against a second use. Or a
        # concurrent request under the same Idempotency-Key was recorded first: then nothing
        # of this credential was, and that request's answer (or a reused key) is the answer.
        recorded = session.scalar(select(Verification.id).where(
            Verification.credential_jti == held.jti)) is not None
        if recorded:
            mark.keep()
        else:
            mark.release()
        replay = _previous(session, partner, idempotency_key, benefit, credential)
        if replay is not None:
            return replay
        if not recorded:
            raise RuntimeError("verification refused by a database constraint") from None
        raise CredentialUsed() from None
    DECISIONS.labels(response["decision"]).inc()
    return response


@dataclass(frozen=True)
class VerificationRef:
    """What another domain (benefit sessions) may know of a partner's verification: no
    credential, no pseudonym; ``limits`` are the amounts granted (empty unless eligible)."""

    id: uuid.UUID
    partner_id: uuid.UUID
    subject_bidx: bytes
    benefit_code: str
    decision: str  # eligible | standard_terms
    created_at: datetime
    tier: str
    limits: dict[str, int]


_REF = select(Verification.id, Verification.partner_id, Verification.subject_bidx,
              Verification.benefit_code, Verification.decision, Verification.created_at,
              Verification.response).where(Verification.id == bindparam("id"),
                                           owned_by(Verification.partner_id,
                                                    bindparam("partner_id")),
                                           # An offline one is the partner's own account of
                                           # a check: it grants nothing here.
                                           Verification.offline.is_(False))


def verification_ref_query() -> Select[Any]:
    """The statement :func:`verification_of` runs (parameters ``id`` and ``partner_id``),
    for a caller that adds columns of its own to the same round trip; its first seven
    columns make a ref with :func:`verification_ref_of`."""
    return _REF


def verification_ref_of(row: Any) -> VerificationRef:
    """The ref from a row of :func:`verification_ref_query` (its first seven columns)."""
    response: dict[str, Any] = row[6] or {}
    benefit = response.get("benefit") or {}
    limits = {str(k): int(v) for k, v in (benefit.get("limits") or {}).items()}
    return VerificationRef(id=row[0], partner_id=row[1], subject_bidx=bytes(row[2]),
                           benefit_code=row[3], decision=row[4], created_at=row[5],
                           tier=str(response.get("tier", rules.TIER_LOWEST)), limits=limits)


def verification_of(session: Session, partner_id: uuid.UUID,
                    verification_id: uuid.UUID) -> VerificationRef | None:
    """This partner's online verification ``verification_id``; None if there is none, it is
    another partner's (the caller answers 404 alike, telling nothing) or it was uploaded
    after an offline check (its decision is the partner's, not ours)."""
    row = session.connection().execute(
        _REF, {"id": verification_id, "partner_id": partner_id}).first()
    if row is None:
        return None
    return verification_ref_of(row)


@dataclass(frozen=True)
class EligibilityAnswer:
    """An answer given to a partner about this citizen (an automated decision), with what it
    was decided from. ``inputs`` is empty for answers recorded before they were kept."""

    id: uuid.UUID
    partner_id: uuid.UUID
    created_at: datetime
    benefit_code: str
    benefit_name_zh: str
    decision: str  # eligible | standard_terms
    reason: str | None  # below_threshold | black_list_entry | None
    tier: str
    limits: dict[str, int]
    inputs: dict[str, Any]


def _answer(row: Any) -> EligibilityAnswer:
    response: dict[str, Any] = row.response or {}
    benefit = response.get("benefit") or {}
    return EligibilityAnswer(
        id=row.id, partner_id=row.partner_id, created_at=row.created_at,
        benefit_code=row.benefit_code, benefit_name_zh=str(benefit.get("name_zh") or
                                                           row.benefit_code),
        decision=row.decision, reason=response.get("reason"),
        tier=str(response.get("tier", "")),
        limits={str(k): int(v) for k, v in (benefit.get("limits") or {}).items()},
        inputs=dict(response.get("_inputs") or {}))


_ANSWERS = select(Verification.id, Verification.partner_id, Verification.created_at,
                  Verification.benefit_code, Verification.decision, Verification.response)


def answers_about(session: Session, bidx: bytes) -> list[EligibilityAnswer]:
    """Every verification answer given about this subject, newest first."""
    return [_answer(r) for r in session.execute(
        _ANSWERS.where(Verification.subject_bidx == bidx)
        .order_by(Verification.created_at.desc(), Verification.id))]


def answer_about(session: Session, bidx: bytes,
                 verification_id: uuid.UUID) -> EligibilityAnswer | None:
    """One answer about this subject; None if there is none (or it is about another)."""
    row = session.execute(_ANSWERS.where(Verification.id == verification_id,
                                         Verification.subject_bidx == bidx)).first()
    return None if row is None else _answer(row)
