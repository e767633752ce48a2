"""Explanations of automated decisions and their human review (R7, PIPL art. 24).

``GET /me/decisions`` is a read model over the tables where the decisions are made: the
score history (score and tier changes), the partners' verification answers, the steps the
system took on benefit sessions and the list entries. A citizen asks for a human review of
one (one open per decision); a reviewer decides it within 15 working days, once: ``confirmed``
or ``changed``, with a reason the citizen reads. A ``changed`` review records what was wrong;
a correction of a record that follows goes through the record's own paths (an objection, a
provider's correction), not through the review.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xinyi.alerts.service import raise_alert
from xinyi.audit.service import log_staff_action, staff_read
from xinyi.auth.principal import Principal
from xinyi.auth.service import client_refs
from xinyi.benefits import outcomes as sessions
from xinyi.citizens.service import citizen_bidx
from xinyi.credentials import verification
from xinyi.decisions import explain
from xinyi.decisions.explain import Decision, DecisionRef
from xinyi.decisions.models import DecisionReview
from xinyi.deps import Deps
from xinyi.errors import Conflict, NotFound
from xinyi.jsonable import row
from xinyi.notifications.service import notify
from xinyi.records import entries
from xinyi.records.service import catalogue_by_code
from xinyi.scoring import service as scoring
from xinyi.subjects import personal
from xinyi.subjects.service import subjects_table
from xinyi.timeutil import CHINA, china_today
from xinyi.uow import unique_or
from xinyi.workdays.service import DeadlineCounts, deadline, deadline_counts

log = logging.getLogger(__name__)
REVIEW_WORKING_DAYS = 15
REVIEW_PURPOSE = "自动化决策人工复核 (human review of an automated decision)"
OUTCOME_ZH = {"confirmed": "维持原决定", "changed": "原决定有误，予以纠正"}


class DecisionNotFound(NotFound):
    code = "decision_not_found"
    title = "No decision about you has this id"


class ReviewOpen(Conflict):
    code = "review_open"
    title = "A review of this decision is already open"


class ReviewDecided(Conflict):
    code = "review_decided"
    title = "This review has already been decided"


class ReviewNotFound(NotFound):
    code = "review_not_found"
    title = "No review has this id"


@dataclass(frozen=True)
class ReviewBrief:
    """The latest review of a decision, as shown on the decision."""

    id: uuid.UUID
    status: str
    due_on: date
    decided_at: datetime | None
    outcome_reason: str | None


@dataclass(frozen=True)
class DecisionView:
    id: str
    kind: str
    decided_at: datetime
    outcome: str
    summary_zh: str
    rule: explain.Rule
    inputs: dict[str, Any]
    review: ReviewBrief | None


@dataclass(frozen=True)
class ReviewView:
    id: uuid.UUID
    decision_id: str
    decision_kind: str
    decision: dict[str, Any]
    reason: str
    status: str
    requested_at: datetime
    received_on: date
    due_on: date
    due_provisional: bool
    overdue: bool
    decided_at: datetime | None
    outcome_reason: str | None
    # Staff views only: the subject masked (never a name, never the ID in full).
    subject: str | None = None


# ---- the read model -----------------------------------------------------------------------

class _Names:
    """Partner, benefit and catalogue names, each looked up once per request."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._partners: dict[uuid.UUID, str] = {}
        self._benefits: dict[str, str] | None = None
        self._items: dict[str, str] | None = None

    def load_partners(self, ids: set[uuid.UUID]) -> None:
        missing = ids - set(self._partners)
        self._partners.update({k: v.name for k, v in client_refs(self._session, missing).items()})

    def partner(self, partner_id: uuid.UUID) -> str:
        if partner_id not in self._partners:
            self.load_partners({partner_id})
        return self._partners.get(partner_id) or "合作机构"

    def benefit(self, code: str) -> str:
        if self._benefits is None:
            self._benefits = {b.code: b.name_zh for b in scoring.benefit_rules(self._session)}
        return self._benefits.get(code, code)

    def item(self, code: str) -> str:
        if self._items is None:
            self._items = {c: i.name_zh for c, i in catalogue_by_code(self._session).items()}
        return self._items.get(code, code)


def _sessions(names: _Names, outcome: sessions.SessionOutcome) -> list[Decision]:
    return explain.session_steps(outcome, names.partner(outcome.partner_id),
                                 names.benefit(outcome.benefit_code),
                                 names.item(outcome.default_item))


def _all(session: Session, bidx: bytes, kind: str | None) -> list[Decision]:
    names = _Names(session)
    out: list[Decision] = []
    if kind in (None, "score_change", "tier_change"):
        for change in scoring.score_history(session, bidx):
            if kind in (None, "score_change"):
                out.append(explain.score_change(change))
            tier = explain.tier_change(change) if kind in (None, "tier_change") else None
            if tier is not None:
                out.append(tier)
    if kind in (None, "eligibility"):
        answers = verification.answers_about(session, bidx)
        names.load_partners({a.partner_id for a in answers})
        out += [explain.eligibility(a, names.partner(a.partner_id)) for a in answers]
    if kind in (None, "session_outcome"):
        moved = sessions.system_outcomes(session, bidx)
        names.load_partners({o.partner_id for o in moved})
        for outcome in moved:
            out += _sessions(names, outcome)
    if kind in (None, "list_entry"):
        out += [explain.list_entry(e) for e in entries.entries_about(session, bidx)]
    out.sort(key=lambda d: (d.decided_at, d.id), reverse=True)
    return out


def _one(session: Session, bidx: bytes, ref: DecisionRef) -> Decision:
    found: Decision | None = None
    if ref.kind in ("score_change", "tier_change"):
        change = scoring.score_change(session, bidx, ref.source_id)
        if change is not None:
            found = (explain.score_change(change) if ref.kind == "score_change"
                     else explain.tier_change(change))
    elif ref.kind == "eligibility":
        answer = verification.answer_about(session, bidx, ref.source_id)
        if answer is not None:
            found = explain.eligibility(answer, _Names(session).partner(answer.partner_id))
    elif ref.kind == "session_outcome":
        outcome = sessions.system_outcome(session, bidx, ref.source_id)
        if outcome is not None:
            found = next((d for d in _sessions(_Names(session), outcome)
                          if d.id == str(ref)), None)
    else:
        entry = entries.entry_about(session, bidx, ref.source_id)
        found = None if entry is None else explain.list_entry(entry)
    if found is None:
        raise DecisionNotFound()
    return found


def _briefs(session: Session, bidx: bytes, ids: list[str]) -> dict[str, ReviewBrief]:
    """The latest review of each of these decisions."""
    if not ids:
        return {}
    latest: dict[str, ReviewBrief] = {}
    for r in session.scalars(select(DecisionReview).where(
            DecisionReview.subject_bidx == bidx, DecisionReview.decision_id.in_(ids))
            .order_by(DecisionReview.requested_at, DecisionReview.id)):
        latest[r.decision_id] = ReviewBrief(r.id, r.status, r.due_on, r.decided_at,
                                            r.outcome_reason)
    return latest


def _with_reviews(session: Session, bidx: bytes, decisions: list[Decision]) -> list[DecisionView]:
    briefs = _briefs(session, bidx, [d.id for d in decisions])
    return [DecisionView(d.id, d.kind, d.decided_at, d.outcome, d.summary_zh, d.rule, d.inputs,
                         briefs.get(d.id)) for d in decisions]


def my_decisions(session: Session, account_id: uuid.UUID, *, kind: str | None, page: int,
                 page_size: int) -> tuple[list[DecisionView], int]:
    """Every automated decision about the citizen, newest first (a citizen has at most a few
    thousand, so they are merged in memory and a page is cut from the merge)."""
    bidx = citizen_bidx(session, account_id)
    every = _all(session, bidx, kind)
    start = (page - 1) * page_size
    return _with_reviews(session, bidx, every[start:start + page_size]), len(every)


def my_decision(session: Session, account_id: uuid.UUID, decision_id: str) -> DecisionView:
    ref = explain.parse_id(decision_id)
    bidx = citizen_bidx(session, account_id)
    [view] = _with_reviews(session, bidx, [_one(session, bidx, ref)])
    return view


# ---- reviews ------------------------------------------------------------------------------

def _view(r: DecisionReview, today: date, subject: str | None = None) -> ReviewView:
    return ReviewView(
        id=r.id, decision_id=r.decision_id, decision_kind=r.decision_kind,
        decision=dict(r.decision), reason=r.reason, status=r.status,
        requested_at=r.requested_at, received_on=r.received_on, due_on=r.due_on,
        due_provisional=r.due_provisional, overdue=r.status == "open" and today > r.due_on,
        decided_at=r.decided_at, outcome_reason=r.outcome_reason, subject=subject)


def request_review(session: Session, deps: Deps, account_id: uuid.UUID, decision_id: str, *,
                   reason: str) -> ReviewView:
    """Ask for a human review of one of the citizen's decisions: due in 15 working days."""
    ref = explain.parse_id(decision_id)
    now = deps.clock()
    today = china_today(now)
    bidx = citizen_bidx(session, account_id)
    decision = _one(session, bidx, ref)
    if session.scalar(select(DecisionReview.id).where(
            DecisionReview.decision_id == decision.id,
            DecisionReview.status == "open")) is not None:
        raise ReviewOpen()
    due = deadline(session, today, REVIEW_WORKING_DAYS)
    review = DecisionReview(
        id=uuid.uuid4(), subject_bidx=bidx, decision_id=decision.id,
        decision_kind=decision.kind, decision=decision.snapshot(), reason=reason.strip(),
        status="open", requested_at=now, received_on=today, due_on=due.due_on,
        due_provisional=due.provisional)
    with unique_or(session, ReviewOpen):
        session.add(review)
    notify(session, deps, bidx, "decision_review_received",
           {"decision": decision.label_zh, "received_on": today.isoformat(),
            "due_on": due.due_on.isoformat()}, now=now, ref=f"decision_review:{review.id}",
           dedupe_key=f"decision_review_received:{review.id}")
    log.info("decision review requested", extra={"event": "decision_review_requested",
                                                  "review_id": str(review.id),
                                                  "decision_kind": decision.kind})
    return _view(review, today)


def my_reviews(session: Session, deps: Deps, account_id: uuid.UUID, *, page: int,
               page_size: int) -> tuple[list[ReviewView], int]:
    bidx = citizen_bidx(session, account_id)
    where = [DecisionReview.subject_bidx == bidx]
    total = session.scalar(select(func.count()).select_from(DecisionReview).where(*where)) or 0
    rows = session.scalars(select(DecisionReview).where(*where)
                           .order_by(DecisionReview.requested_at.desc(), DecisionReview.id)
                           .limit(page_size).offset((page - 1) * page_size))
    today = china_today(deps.clock())
    return [_view(r, today) for r in rows], total


def _masked_subjects(session: Session, deps: Deps, bidxs: list[bytes]) -> dict[bytes, str]:
    """Each subject's ID number masked (``110***********1234``), as staff lists show it, or
    the closed-account reference once no key opens it (crypto-shredded)."""
    if not bidxs:
        return {}
    subjects = subjects_table()
    personal.load(session, deps, bidxs)
    return {bytes(b): personal.masked_id_number(session, deps, bytes(b), enc)
            for b, enc in session.execute(select(subjects.c.bidx, subjects.c.id_number_enc)
                                          .where(subjects.c.bidx.in_(set(bidxs))))}


def queue(session: Session, deps: Deps, reviewer: Principal, *, status: str | None,
          overdue: bool | None, page: int, page_size: int) -> tuple[list[ReviewView], int]:
    """Reviews, open ones first by deadline (so the overdue lead); each citizen shown gets
    an access-log entry."""
    now = deps.clock()
    today = china_today(now)
    where: list[Any] = []
    if status:
        where.append(DecisionReview.status == status)
    if overdue is True:
        where += [DecisionReview.status == "open", DecisionReview.due_on < today]
    elif overdue is False:
        where.append((DecisionReview.status != "open") | (DecisionReview.due_on >= today))
    total = session.scalar(select(func.count()).select_from(DecisionReview).where(*where)) or 0
    rows = list(session.scalars(
        select(DecisionReview).where(*where)
        .order_by((DecisionReview.status != "open"), DecisionReview.due_on,
                  DecisionReview.requested_at, DecisionReview.id)
        .limit(page_size).offset((page - 1) * page_size)))
    masked = _masked_subjects(session, deps, [r.subject_bidx for r in rows])
    staff_read(session, [r.subject_bidx for r in rows], staff_id=reviewer.id,
               role=reviewer.kind, action="decision_review_queue", scope="decision_review",
               purpose=REVIEW_PURPOSE, now=now)
    return [_view(r, today, masked.get(bytes(r.subject_bidx), "")) for r in rows], total


def decide(session: Session, deps: Deps, reviewer: Principal, review_id: uuid.UUID, *,
           outcome: str, reason: str) -> ReviewView:
    """Decide once (a second decision is 409); logged as a staff action and in the citizen's
    access log; the citizen is notified and reads the outcome and its reason."""
    now = deps.clock()
    today = china_today(now)
    review = session.scalar(select(DecisionReview).where(DecisionReview.id == review_id)
                            .with_for_update())
    if review is None:
        raise ReviewNotFound()
    if review.status != "open":
        raise ReviewDecided()
    review.status, review.decided_at, review.decided_by = outcome, now, reviewer.id
    review.outcome_reason = reason.strip()
    session.flush()
    staff_read(session, [review.subject_bidx], staff_id=reviewer.id, role=reviewer.kind,
               action=f"decision_review_{outcome}", scope="decision_review",
               purpose=REVIEW_PURPOSE, now=now)
    log_staff_action(session, actor_id=reviewer.id, actor_role=reviewer.kind,
                     action="decision_review.decide", target=f"decision_review:{review.id}",
                     before={"status": "open"},
                     after={"status": outcome, "decision_kind": review.decision_kind},
                     now=now)
    decided_at = datetime.fromisoformat(str(review.decision.get("decided_at")))
    kind_zh = explain.KIND_ZH.get(review.decision_kind, "自动化决策")
    label = f"{kind_zh}（{decided_at.astimezone(CHINA):%Y年%m月%d日}）"
    notify(session, deps, review.subject_bidx, "decision_review_decided",
           {"decision": label, "outcome": OUTCOME_ZH[outcome]}, now=now,
           ref=f"decision_review:{review.id}", dedupe_key=f"decision_review_decided:{review.id}",
           sms=True)
    masked = _masked_subjects(session, deps, [review.subject_bidx])
    log.info("decision review decided", extra={"event": "decision_review_decided",
                                                "review_id": str(review.id),
                                                "outcome": outcome})
    return _view(review, today, masked.get(bytes(review.subject_bidx), ""))


# ---- the worker's sweeps and the export ----------------------------------------------------

def flag_overdue(session: Session, deps: Deps) -> int:
    """An alert to staff for each open review past its deadline (once each)."""
    now = deps.clock()
    late = list(session.scalars(select(DecisionReview.id).where(
        DecisionReview.status == "open", DecisionReview.due_on < china_today(now))))
    for review_id in late:
        raise_alert(session, kind="decision_review_overdue", ref=f"decision_review:{review_id}",
                    text=f"Review {review_id} of an automated decision is past its deadline "
                         "of working days and still open",
                    dedupe_key=f"decision_review_overdue:{review_id}", now=now)
    return len(late)


def recompute_provisional(session: Session, deps: Deps) -> int:
    """Deadlines counted Monday to Friday (a year unknown) counted again once it is known."""
    now = deps.clock()
    changed = 0
    for r in session.scalars(select(DecisionReview).where(DecisionReview.status == "open",
                                                          DecisionReview.due_provisional)):
        due = deadline(session, r.received_on, REVIEW_WORKING_DAYS)
        if due.provisional:
            continue
        moved = due.due_on != r.due_on
        r.due_on, r.due_provisional = due.due_on, False
        changed += moved
        raise_alert(session, kind="deadline_recomputed", ref=f"decision_review:{r.id}",
                    text=f"Review {r.id}: the official calendar is now known; its deadline is "
                         f"{due.due_on.isoformat()}" + (" (moved)" if moved else " (unchanged)"),
                    dedupe_key=f"deadline_recomputed:decision_review:{r.id}", now=now)
    return changed


def deadline_compliance(session: Session, today: date) -> DeadlineCounts:
    """Reviews decided within their 15 working days, and open ones past them (statistics)."""
    r = DecisionReview
    return deadline_counts(session, due_on=r.due_on, decided_at=r.decided_at,
                           is_open=r.status == "open", today=today)


def export_reviews(session: Session, deps: Deps, account_id: uuid.UUID,
                   bidx: bytes) -> list[dict[str, Any]]:
    """The citizen's reviews for their export (the ``decision_reviews`` section): the
    decision as it stood when asked, the reason, the deadline and the outcome."""
    del deps, account_id
    return [row(r, "id", "decision_id", "decision_kind", "decision", "reason", "status",
                "requested_at", "received_on", "due_on", "due_provisional", "decided_at",
                "outcome_reason")
            for r in session.scalars(select(DecisionReview)
                                     .where(DecisionReview.subject_bidx == bidx)
                                     .order_by(DecisionReview.requested_at, DecisionReview.id))]
