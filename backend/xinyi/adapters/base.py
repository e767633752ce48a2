"""What every kind shares: open from a credential, the common answer, idempotent writes.

A kind module declares a :class:`KindSpec` (its benefit, its nouns, its operations, its event
names) and writes only its own rules; this module does the rest:

* :func:`open_record` verifies the credential for the kind's benefit and, when the decision
  is ``eligible``, opens a benefit session for the kind's amount. A credential that is not
  eligible, or a citizen whose exposure cap is used up, still gets a record (201) with
  ``session_id: null``, nothing waived and the normal terms: a kind never refuses service
  (R6). Bad input is refused (4xx) before anything is verified, and changes nothing.
* :func:`write` runs a kind's write under a row lock and an ``Idempotency-Key``: the same key
  and body get the stored answer; the same key with another body is a 422.
* :func:`close` / :func:`settle` end the record's session in the partner's words.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from marshmallow import Schema
from sqlalchemy import select
from sqlalchemy.orm import Session

from xinyi.adapters.errors import (
    KindMismatch,
    NothingToSettle,
    RecordClosed,
    RecordNotFound,
)
from xinyi.adapters.models import AdapterRecord
from xinyi.auth.principal import Principal
from xinyi.benefits import service as benefits
from xinyi.benefits import terms as session_terms
from xinyi.credentials import verification
from xinyi.credentials.verification import verification_of
from xinyi.dbutil import owned_by
from xinyi.deps import Deps
from xinyi.errors import ValidationFailed
from xinyi.idempotency import idempotent

MAX_AMOUNT_FEN = 100_000_000  # ¥1,000,000: the ceiling of every amount (the rule)
MAX_DUE_DAYS = 90
# States of a session on which the partner may still report the outcome.
REPORTABLE = frozenset({"open", "overdue"})


@dataclass(frozen=True)
class Call:
    """One request to an adapter: who calls, in which unit, under which Idempotency-Key."""

    session: Session
    deps: Deps
    partner: Principal
    idempotency_key: str | None = None

    @property
    def now(self) -> datetime:
        return self.deps.clock()


@dataclass(frozen=True)
class Terms:
    """What a kind asks of the session: the amount at stake and how much of it may be
    waived by the kind's own rule (None: the benefit's limit alone)."""

    amount_fen: int
    waivable_fen: int | None = None


@dataclass
class Outcome:
    """A kind write's result: the record and the session as the write left it."""

    record: AdapterRecord
    session: benefits.SessionView | None = None


# (call, body) -> Outcome, for a write that creates the record.
Opener = Callable[[Call, dict[str, Any]], Outcome]
# (call, locked record, body) -> Outcome, for a write on an existing record.
Action = Callable[[Call, AdapterRecord, dict[str, Any]], Outcome]


@dataclass(frozen=True)
class Operation:
    """One write route: ``POST /v1/adapters/<kind>/<noun><path>``."""

    name: str  # the endpoint's name and the Idempotency-Key's scope ("returns")
    path: str  # "" (opens a record) or "/<uuid:record_id>/returns"
    body: type[Schema]
    summary: str
    opens: Opener | None = None
    acts: Action | None = None
    status: int = 200


@dataclass(frozen=True)
class KindSpec:
    """A kind as the registry knows it: adding a kind is one module declaring one of these."""

    kind: str  # a PartnerKind value
    benefit: str  # the benefit rule its credential is verified for
    noun: str  # the collection in its own words ("loans")
    description: str
    answer: type[Schema]  # the response schema: the common fields plus the kind's own
    render: Callable[[AdapterRecord, datetime], dict[str, Any]]  # the kind's own fields
    operations: tuple[Operation, ...]
    # Generic session event -> this kind's event type ("benefit_session.overdue" ->
    # "library.loan_overdue"); empty for a kind without sessions.
    events: Mapping[str, str] = field(default_factory=dict)
    # The record's state when it has no session (a session's state wins otherwise).
    closed_state: str = "closed"


def check_kind(spec: KindSpec, partner: Principal) -> None:
    if partner.client_kind != spec.kind:
        raise KindMismatch(spec.kind, partner.client_kind)


def check_amount(name: str, value: int, *, allow_zero: bool) -> None:
    """Integer fen, not negative, zero only where allowed, at most ¥1,000,000."""
    if value < 0 or (value == 0 and not allow_zero):
        raise ValidationFailed.at(name, "must be positive" if not allow_zero
                                  else "must not be negative")
    if value > MAX_AMOUNT_FEN:
        raise ValidationFailed.at(name, f"must be at most {MAX_AMOUNT_FEN} fen (¥1,000,000)")


def check_due(name: str, due_at: datetime, now: datetime) -> None:
    if due_at <= now:
        raise ValidationFailed.at(name, "must be in the future")
    if due_at > now + timedelta(days=MAX_DUE_DAYS):
        raise ValidationFailed.at(name, f"must be at most {MAX_DUE_DAYS} days ahead")


def _room(call: Call, verification_id: uuid.UUID) -> int:
    """What is left of the citizen's exposure cap: with none left, no session is opened
    (a session waiving nothing would only be noise to the partner and the citizen)."""
    ref = verification_of(call.session, call.partner.id, verification_id)
    if ref is None:
        return 0
    cap = session_terms.terms_of(call.session, ref.benefit_code).cap_for(ref.tier)
    return cap - benefits.exposure_of(call.session, ref.subject_bidx)


def open_record(call: Call, spec: KindSpec, *, credential: str,
                terms: Callable[[Mapping[str, int]], Terms], due_at: datetime | None,
                reference: str | None, details: dict[str, Any]) -> Outcome:
    """Verify, then open a session for what ``terms`` (given the granted limits, empty for
    standard terms) says is at stake; record it either way."""
    now = call.now
    record_id = uuid.uuid4()
    answer = verification.verify(call.session, call.deps, call.partner, credential=credential,
                                 benefit=spec.benefit)
    eligible = answer["decision"] == "eligible"
    limits: Mapping[str, int] = answer["benefit"]["limits"] if eligible else {}
    wanted = terms(limits)
    reference = reference or str(record_id)
    view: benefits.SessionView | None = None
    verification_id = uuid.UUID(answer["id"])
    if (eligible and due_at is not None and wanted.amount_fen > 0 and spec.events
            and wanted.waivable_fen != 0 and _room(call, verification_id) > 0):
        view = benefits.open_session(
            call.session, call.deps, call.partner,
            verification_id=verification_id, amount_fen=wanted.amount_fen,
            due_at=due_at, reference=reference,
            waivable_fen=wanted.waivable_fen)
        if view.waived_fen == 0:
            # The cap was used up meanwhile (a concurrent open elsewhere): normal terms,
            # and no session to follow up — nothing of it is on credit.
            benefits.cancel_session(call.session, call.deps, call.partner, view.id)
            view = None
    waived = view.waived_fen if view is not None else 0
    record = AdapterRecord(
        id=record_id, kind=spec.kind, partner_id=call.partner.id,
        verification_id=verification_id, decision=answer["decision"],
        session_id=view.id if view is not None else None, status="open",
        reference=reference, amount_fen=wanted.amount_fen, waived_fen=waived,
        charge_normally_fen=wanted.amount_fen - waived, due_at=due_at, details=details,
        created_at=now, updated_at=now)
    call.session.add(record)
    return Outcome(record, view)


def locked(call: Call, spec: KindSpec, record_id: uuid.UUID) -> AdapterRecord:
    """This partner's record of this kind, locked for the write (another's: 404)."""
    record = call.session.scalar(
        select(AdapterRecord).where(AdapterRecord.id == record_id,
                                    owned_by(AdapterRecord.partner_id, call.partner.id),
                                    AdapterRecord.kind == spec.kind).with_for_update())
    if record is None:
        raise RecordNotFound()
    return record


def owned(call: Call, spec: KindSpec, record_id: uuid.UUID) -> AdapterRecord:
    record = call.session.scalar(
        select(AdapterRecord).where(AdapterRecord.id == record_id,
                                    owned_by(AdapterRecord.partner_id, call.partner.id),
                                    AdapterRecord.kind == spec.kind))
    if record is None:
        raise RecordNotFound()
    return record


def must_be_open(record: AdapterRecord) -> None:
    if record.status != "open":
        raise RecordClosed()


def set_details(call: Call, record: AdapterRecord, details: dict[str, Any]) -> None:
    """Replace the kind's fields (a new object, so the ORM sees the change)."""
    record.details = json.loads(json.dumps(details))
    record.updated_at = call.now


def covered(record: AdapterRecord, unpaid_fen: int) -> int:
    """The part of an unpaid amount reported as a default: at most what the card waived
    (the deposit it stood in for); beyond that the partner's claim is an ordinary one."""
    return min(unpaid_fen, record.waived_fen)


def close(call: Call, spec: KindSpec, record: AdapterRecord, *, owed_fen: int,
          scope: str) -> benefits.SessionView | None:
    """Close the record; its session, if one is still reportable, closes ``fulfilled``
    (nothing owed) or ``defaulted`` with ``owed_fen``. A session that already defaulted by
    itself (30 days overdue) keeps its state: the partner settles it instead."""
    now = call.now
    record.status, record.closed_at, record.updated_at = "closed", now, now
    if record.session_id is None:
        return None
    view = benefits.get_session(call.session, call.deps, call.partner, record.session_id)
    if view.state not in REPORTABLE:
        return view
    return benefits.close_session(
        call.session, call.deps, call.partner, record.session_id,
        outcome="defaulted" if owed_fen > 0 else "fulfilled", amount_owed_fen=owed_fen)


def settle(call: Call, spec: KindSpec, record: AdapterRecord) -> Outcome:
    """The citizen paid what was owed during grace: the session is settled, no record."""
    if record.session_id is None:
        raise NothingToSettle()
    view = benefits.settle_session(call.session, call.deps, call.partner, record.session_id)
    if record.status == "open":
        record.status, record.closed_at = "closed", call.now
    record.updated_at = call.now
    return Outcome(record, view)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def answer(call: Call, spec: KindSpec, outcome: Outcome) -> dict[str, Any]:
    """The common answer ``{id, session_id, state, waived_fen, charge_normally_fen, due_at,
    reference, …}`` plus the kind's own fields, JSON-ready (it is what a replay returns)."""
    record, view = outcome.record, outcome.session
    if view is None and record.session_id is not None:
        view = benefits.get_session(call.session, call.deps, call.partner, record.session_id)
    state = view.state if view is not None else (
        "open" if record.status == "open" else spec.closed_state)
    common: dict[str, Any] = {
        "id": str(record.id), "kind": record.kind,
        "session_id": str(record.session_id) if record.session_id else None,
        "decision": record.decision, "state": state, "status": record.status,
        "amount_fen": record.amount_fen, "waived_fen": record.waived_fen,
        "charge_normally_fen": record.charge_normally_fen,
        "amount_owed_fen": view.amount_owed_fen if view is not None else None,
        "due_at": _iso(record.due_at), "reference": record.reference,
        "created_at": _iso(record.created_at), "closed_at": _iso(record.closed_at),
        "next_step": view.next_step if view is not None else None,
        "next_step_at": _iso(view.next_step_at) if view is not None else None,
    }
    return {**common, **spec.render(record, call.now)}


def write(call: Call, spec: KindSpec, operation: Operation, body: dict[str, Any],
          record_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Run one of the kind's writes under its Idempotency-Key and give its answer.

    The key is claimed (:func:`xinyi.idempotency.idempotent`) before any work, so a retry
    racing its first request waits for it and replays its answer; the verification and the
    session beneath are then called without a key of their own."""
    check_kind(spec, call.partner)
    operation_name = f"adapter.{spec.kind}.{operation.name}" + (
        f":{record_id}" if record_id is not None else "")

    def run() -> dict[str, Any]:
        if operation.opens is not None:
            outcome = operation.opens(call, body)
        else:
            assert operation.acts is not None and record_id is not None
            outcome = operation.acts(call, locked(call, spec, record_id), body)
        call.session.flush()
        return answer(call, spec, outcome)

    return idempotent(call.session, owner_id=call.partner.id, key=call.idempotency_key,
                      operation=operation_name, body=body, now=call.now, run=run,
                      dump=dict, load=dict)


def read(call: Call, spec: KindSpec, record_id: uuid.UUID) -> dict[str, Any]:
    check_kind(spec, call.partner)
    return answer(call, spec, Outcome(owned(call, spec, record_id)))


def session_state(call: Call, record: AdapterRecord) -> str | None:
    """The current state of the record's session (None without one)."""
    if record.session_id is None:
        return None
    return benefits.get_session(call.session, call.deps, call.partner, record.session_id).state
