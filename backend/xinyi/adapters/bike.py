"""Shared bikes (信易行): deposit-free rides.

``POST /v1/adapters/bike/rides {credential, bike_id, deposit_fen, due_at}`` unlocks a bike
with the deposit waived (up to the benefit's limit and the citizen's remaining cap).
``…/rides/{id}/lock {ended_at, fee_fen, paid_fen}`` ends the ride: the fee is charged as
usual; what of it stays unpaid (``paid_fen`` defaults to the whole fee) is a default of that
amount, at most the waived deposit (what the card stood in for). ``…/rides/{id}/settle``
records that the citizen paid it during grace.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from marshmallow import fields

from xinyi.adapters import base
from xinyi.adapters.models import AdapterRecord
from xinyi.adapters.schemas import (
    DATE_TIME,
    AdapterOut,
    SettleIn,
    UtcDateTime,
    amount,
    barcode,
    credential,
    due_at,
    reference,
)
from xinyi.errors import ValidationFailed
from xinyi.partner_kinds import PartnerKind
from xinyi.schemas import StrictSchema

CLOCK_SKEW = timedelta(minutes=5)  # a lock's own clock may run a little ahead of ours


class RideIn(StrictSchema):
    credential = credential()
    bike_id = barcode()
    deposit_fen = amount("The deposit you would ask of anyone", required=True)
    due_at = due_at("When the bike must be locked at the latest", required=True)
    reference = reference()


class LockIn(StrictSchema):
    ended_at = UtcDateTime(format="iso", required=True, metadata=DATE_TIME)
    fee_fen = amount("The ride's fee", required=True)
    paid_fen = amount("What of the fee was paid (default: all of it)")


class RideOut(AdapterOut):
    bike_id = fields.String(required=True)
    ended_at = fields.String(required=True, allow_none=True, metadata=DATE_TIME)
    fee_fen = fields.Integer(required=True, allow_none=True)
    unpaid_fen = fields.Integer(required=True, metadata={
        "description": "The fee not paid: reported as a default"})


def _render(record: AdapterRecord, now: datetime) -> dict[str, Any]:
    del now
    d = record.details
    return {"bike_id": d["bike_id"], "ended_at": d.get("ended_at"), "fee_fen": d.get("fee_fen"),
            "unpaid_fen": d.get("unpaid_fen", 0)}


def _unlock(call: base.Call, body: dict[str, Any]) -> base.Outcome:
    base.check_amount("deposit_fen", body["deposit_fen"], allow_zero=False)
    base.check_due("due_at", body["due_at"], call.now)

    def terms(limits: Mapping[str, int]) -> base.Terms:
        del limits  # the benefit's deposit limit applies in the session
        return base.Terms(body["deposit_fen"])

    return base.open_record(call, KIND, credential=body["credential"], terms=terms,
                            due_at=body["due_at"], reference=body.get("reference"),
                            details={"bike_id": body["bike_id"]})


def _lock(call: base.Call, record: AdapterRecord, body: dict[str, Any]) -> base.Outcome:
    base.must_be_open(record)
    fee = body["fee_fen"]
    paid = body.get("paid_fen", fee)
    base.check_amount("fee_fen", fee, allow_zero=True)
    base.check_amount("paid_fen", paid, allow_zero=True)
    if paid > fee:
        raise ValidationFailed.at("paid_fen", "must not exceed fee_fen")
    ended: datetime = body["ended_at"]
    if ended < record.created_at:
        raise ValidationFailed.at("ended_at", "must not be before the ride started")
    if ended > call.now + CLOCK_SKEW:
        raise ValidationFailed.at("ended_at", "must not be in the future")
    base.set_details(call, record, {**record.details, "ended_at": ended.isoformat(),
                                    "fee_fen": fee, "unpaid_fen": fee - paid})
    return base.Outcome(record, base.close(call, KIND, record,
                                           owed_fen=base.covered(record, fee - paid),
                                           scope="lock"))


def _settle(call: base.Call, record: AdapterRecord, body: dict[str, Any]) -> base.Outcome:
    del body
    return base.settle(call, KIND, record)


KIND = base.KindSpec(
    kind=PartnerKind.BIKE.value,
    benefit="bike.deposit_free",
    noun="rides",
    description="Shared bikes (信易行): deposit-free unlock, lock with the fee",
    answer=RideOut,
    render=_render,
    operations=(
        base.Operation("unlock", "", RideIn, "Unlock a bike with the deposit waived",
                       opens=_unlock, status=201),
        base.Operation("lock", "/<uuid:record_id>/lock", LockIn,
                       "End the ride; an unpaid fee is a default of that amount", acts=_lock),
        base.Operation("settle", "/<uuid:record_id>/settle", SettleIn,
                       "The citizen paid the fee during grace: no record", acts=_settle),
    ),
    events={
        "benefit_session.opened": "bike.ride_started",
        "benefit_session.closed": "bike.ride_ended",
        "benefit_session.overdue": "bike.ride_overdue",
        "benefit_session.defaulted": "bike.ride_fee_unpaid",
        "benefit_session.settled": "bike.ride_settled",
        "benefit_session.recorded": "bike.ride_recorded",
    },
)
