"""Hospitals (信易医): treat first, pay later.

``POST /v1/adapters/hospital/encounters {credential, department, due_at}`` opens a credit
line: the benefit's ``credit_line_fen``, within the citizen's remaining cap (the session's
waived amount is the line). ``…/encounters/{id}/bills {items}`` draws on it: what fits in
the line is deferred, the rest is paid now as usual. ``…/encounters/{id}/settle {paid_fen}``
records payments of the deferred amount; when nothing is outstanding the encounter closes
(fulfilled, or settled if it had defaulted). Unpaid by the due date, the session becomes
overdue and, if never settled, a default.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, validate

from xinyi.adapters import base
from xinyi.adapters.models import AdapterRecord
from xinyi.adapters.schemas import DATE_TIME, AdapterOut, amount, credential, due_at, reference
from xinyi.errors import ValidationFailed
from xinyi.partner_kinds import PartnerKind
from xinyi.schemas import FullMatch, StrictSchema

MAX_ITEMS = 200


class EncounterIn(StrictSchema):
    credential = credential()
    department = fields.String(required=True, validate=validate.Length(min=1, max=100))
    due_at = due_at("When the deferred amount must be paid", required=True)
    reference = reference()


class BillItemIn(StrictSchema):
    code = fields.String(required=True, validate=FullMatch(
        r"^[\x21-\x7e]{1,64}$", error="1-64 visible ASCII characters"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    amount_fen = amount("The item's price", required=True)


class BillIn(StrictSchema):
    items = fields.List(fields.Nested(BillItemIn), required=True,
                        validate=validate.Length(min=1, max=MAX_ITEMS))


class PaymentIn(StrictSchema):
    paid_fen = amount("What the citizen paid of the deferred amount", required=True)


class BillOut(Schema):
    id = fields.String(required=True)
    total_fen = fields.Integer(required=True)
    deferred_fen = fields.Integer(required=True, metadata={"description": "Drawn on the line"})
    pay_now_fen = fields.Integer(required=True, metadata={
        "description": "Beyond the line: charge it now as usual"})
    billed_at = fields.String(required=True, metadata=DATE_TIME)


class EncounterOut(AdapterOut):
    department = fields.String(required=True)
    credit_line_fen = fields.Integer(required=True)
    line_left_fen = fields.Integer(required=True)
    bills = fields.List(fields.Nested(BillOut), required=True)
    deferred_fen = fields.Integer(required=True)
    paid_fen = fields.Integer(required=True)
    outstanding_fen = fields.Integer(required=True)


def _render(record: AdapterRecord, now: datetime) -> dict[str, Any]:
    del now
    d = record.details
    deferred = sum(b["deferred_fen"] for b in d["bills"])
    return {"department": d["department"], "credit_line_fen": record.waived_fen,
            "line_left_fen": record.waived_fen - deferred,
            "bills": [{k: v for k, v in b.items() if k != "items"} for b in d["bills"]],
            "deferred_fen": deferred, "paid_fen": d["paid_fen"],
            "outstanding_fen": deferred - d["paid_fen"]}


def _open(call: base.Call, body: dict[str, Any]) -> base.Outcome:
    base.check_due("due_at", body["due_at"], call.now)

    def terms(limits: Mapping[str, int]) -> base.Terms:
        return base.Terms(limits.get("credit_line_fen", 0))

    return base.open_record(call, KIND, credential=body["credential"], terms=terms,
                            due_at=body["due_at"], reference=body.get("reference"),
                            details={"department": body["department"], "bills": [],
                                     "paid_fen": 0})


def _bill(call: base.Call, record: AdapterRecord, body: dict[str, Any]) -> base.Outcome:
    base.must_be_open(record)
    for i, item in enumerate(body["items"]):
        base.check_amount(f"items.{i}.amount_fen", item["amount_fen"], allow_zero=False)
    total = sum(item["amount_fen"] for item in body["items"])
    base.check_amount("items", total, allow_zero=False)
    d = record.details
    left = record.waived_fen - sum(b["deferred_fen"] for b in d["bills"])
    if record.session_id is not None:
        state = base.session_state(call, record)
        if state not in base.REPORTABLE:
            left = 0  # a line that defaulted lends nothing more
    deferred = min(total, left)
    bill = {"id": str(uuid.uuid4()), "total_fen": total, "deferred_fen": deferred,
            "pay_now_fen": total - deferred, "billed_at": call.now.isoformat(),
            "items": body["items"]}
    base.set_details(call, record, {**d, "bills": [*d["bills"], bill]})
    return base.Outcome(record)


def _settle(call: base.Call, record: AdapterRecord, body: dict[str, Any]) -> base.Outcome:
    d = record.details
    paid = body["paid_fen"]
    base.check_amount("paid_fen", paid, allow_zero=True)
    outstanding = sum(b["deferred_fen"] for b in d["bills"]) - d["paid_fen"]
    if paid > outstanding:
        raise ValidationFailed.at("paid_fen", "must not exceed the outstanding amount")
    if record.status != "open" and (record.session_id is None
                                    or base.session_state(call, record) != "defaulted"):
        base.must_be_open(record)
    base.set_details(call, record, {**d, "paid_fen": d["paid_fen"] + paid})
    if paid < outstanding:
        return base.Outcome(record)
    if record.session_id is not None and base.session_state(call, record) == "defaulted":
        return base.settle(call, KIND, record)
    return base.Outcome(record, base.close(call, KIND, record, owed_fen=0, scope="close"))


KIND = base.KindSpec(
    kind=PartnerKind.HOSPITAL.value,
    benefit="hospital.pay_later",
    noun="encounters",
    description="Hospitals (信易医): treat first, pay later on a credit line",
    answer=EncounterOut,
    render=_render,
    operations=(
        base.Operation("open", "", EncounterIn,
                       "Open an encounter with a credit line (the benefit's credit_line_fen "
                       "within the citizen's remaining cap)", opens=_open, status=201),
        base.Operation("bills", "/<uuid:record_id>/bills", BillIn,
                       "Bill items: drawn on the line, the rest paid now", acts=_bill),
        base.Operation("settle", "/<uuid:record_id>/settle", PaymentIn,
                       "The citizen paid (part of) the deferred amount; nothing outstanding "
                       "closes the encounter", acts=_settle),
    ),
    events={
        "benefit_session.opened": "hospital.encounter_opened",
        "benefit_session.closed": "hospital.encounter_closed",
        "benefit_session.overdue": "hospital.encounter_overdue",
        "benefit_session.defaulted": "hospital.encounter_defaulted",
        "benefit_session.settled": "hospital.encounter_settled",
        "benefit_session.recorded": "hospital.encounter_recorded",
    },
)
