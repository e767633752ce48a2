"""Hotels (免押信用住): deposit-free stays.

``POST /v1/adapters/hotel/stays {credential, room, nights, deposit_fen}`` checks a guest in
with the deposit waived. The stay is due ``nights`` days later plus 72 hours: charges found
at checkout or within 72 hours after it may still be put on the stay.
``…/stays/{id}/checkout {charges_fen, paid_fen}`` closes it: nothing unpaid is fulfilled,
an unpaid charge a default of that amount (at most the waived deposit: what the card stood
in for; the rest is the hotel's ordinary claim). After the 72 hours a checkout without charges is
still taken (the guest left, nothing is owed); one with charges is refused
(``checkout_window_closed``). ``…/stays/{id}/settle`` records payment during grace.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from marshmallow import fields, validate

from xinyi.adapters import base
from xinyi.adapters.errors import CheckoutWindowClosed
from xinyi.adapters.models import AdapterRecord
from xinyi.adapters.schemas import DATE_TIME, AdapterOut, SettleIn, amount, credential, reference
from xinyi.errors import ValidationFailed
from xinyi.partner_kinds import PartnerKind
from xinyi.schemas import StrictSchema, WholeNumber

CHARGE_WINDOW = timedelta(hours=72)
MAX_NIGHTS = 60


class StayIn(StrictSchema):
    credential = credential()
    room = fields.String(required=True, validate=validate.Length(min=1, max=32))
    nights = WholeNumber(required=True, validate=validate.Range(1, MAX_NIGHTS))
    deposit_fen = amount("The deposit you would ask of anyone", required=True)
    reference = reference()


class CheckoutIn(StrictSchema):
    charges_fen = amount("Charges against the deposit (minibar, damage…)", required=True)
    paid_fen = amount("What of the charges was paid (default: all of them)")


class StayOut(AdapterOut):
    room = fields.String(required=True)
    nights = fields.Integer(required=True)
    checkout_by = fields.String(required=True, metadata={
        **DATE_TIME, "description": "The last moment charges can be put on the stay"})
    checked_out_at = fields.String(required=True, allow_none=True, metadata=DATE_TIME)
    charges_fen = fields.Integer(required=True, allow_none=True)
    unpaid_fen = fields.Integer(required=True)


def _render(record: AdapterRecord, now: datetime) -> dict[str, Any]:
    del now
    d = record.details
    assert record.due_at is not None
    return {"room": d["room"], "nights": d["nights"], "checkout_by": record.due_at.isoformat(),
            "checked_out_at": d.get("checked_out_at"), "charges_fen": d.get("charges_fen"),
            "unpaid_fen": d.get("unpaid_fen", 0)}


def _check_in(call: base.Call, body: dict[str, Any]) -> base.Outcome:
    base.check_amount("deposit_fen", body["deposit_fen"], allow_zero=False)
    due = call.now + timedelta(days=body["nights"]) + CHARGE_WINDOW

    def terms(limits: Mapping[str, int]) -> base.Terms:
        del limits
        return base.Terms(body["deposit_fen"])

    return base.open_record(call, KIND, credential=body["credential"], terms=terms,
                            due_at=due, reference=body.get("reference"),
                            details={"room": body["room"], "nights": body["nights"]})


def _checkout(call: base.Call, record: AdapterRecord, body: dict[str, Any]) -> base.Outcome:
    base.must_be_open(record)
    charges = body["charges_fen"]
    paid = body.get("paid_fen", charges)
    base.check_amount("charges_fen", charges, allow_zero=True)
    base.check_amount("paid_fen", paid, allow_zero=True)
    if paid > charges:
        raise ValidationFailed.at("paid_fen", "must not exceed charges_fen")
    if charges > 0 and record.due_at is not None and call.now > record.due_at:
        raise CheckoutWindowClosed()
    unpaid = charges - paid
    base.set_details(call, record, {**record.details, "checked_out_at": call.now.isoformat(),
                                    "charges_fen": charges, "unpaid_fen": unpaid})
    return base.Outcome(record, base.close(call, KIND, record, owed_fen=base.covered(
        record, unpaid), scope="checkout"))


def _settle(call: base.Call, record: AdapterRecord, body: dict[str, Any]) -> base.Outcome:
    del body
    return base.settle(call, KIND, record)


KIND = base.KindSpec(
    kind=PartnerKind.HOTEL.value,
    benefit="hotel.deposit_free",
    noun="stays",
    description="Hotels (免押信用住): deposit-free check-in, checkout with charges",
    answer=StayOut,
    render=_render,
    operations=(
        base.Operation("check_in", "", StayIn, "Check a guest in with the deposit waived",
                       opens=_check_in, status=201),
        base.Operation("checkout", "/<uuid:record_id>/checkout", CheckoutIn,
                       "Check out with the charges (at checkout or within 72 h); unpaid "
                       "charges are a default", acts=_checkout),
        base.Operation("settle", "/<uuid:record_id>/settle", SettleIn,
                       "The guest paid the charges during grace: no record", acts=_settle),
    ),
    events={
        "benefit_session.opened": "hotel.stay_checked_in",
        "benefit_session.closed": "hotel.stay_checked_out",
        "benefit_session.overdue": "hotel.stay_unsettled",
        "benefit_session.defaulted": "hotel.stay_defaulted",
        "benefit_session.settled": "hotel.stay_settled",
        "benefit_session.recorded": "hotel.stay_recorded",
    },
)
