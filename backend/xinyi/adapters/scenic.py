"""Scenic spots (信易游): free entry or a ticket discount, single use, no exposure.

``POST /v1/adapters/scenic/entries {credential, ticket_fen}`` admits a visitor: eligible, the
benefit's ``discount_percent`` (at most ``max_discount_fen``) comes off the ticket; otherwise
the full price. Nothing is lent, so no session is opened and nothing counts against the
citizen's cap. The credential verifies once, so an entry cannot be claimed twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from marshmallow import fields

from xinyi.adapters import base
from xinyi.adapters.models import AdapterRecord
from xinyi.adapters.schemas import AdapterOut, amount, credential, reference
from xinyi.partner_kinds import PartnerKind
from xinyi.schemas import StrictSchema


class EntryIn(StrictSchema):
    credential = credential()
    ticket_fen = amount("The ticket's normal price (0: free entry)", required=True)
    reference = reference()


class EntryOut(AdapterOut):
    discount_percent = fields.Integer(required=True)


def _render(record: AdapterRecord, now: datetime) -> dict[str, Any]:
    del now
    return {"discount_percent": record.details["discount_percent"]}


def _admit(call: base.Call, body: dict[str, Any]) -> base.Outcome:
    ticket = body["ticket_fen"]
    base.check_amount("ticket_fen", ticket, allow_zero=True)
    granted: dict[str, int] = {}

    def terms(limits: Mapping[str, int]) -> base.Terms:
        granted.update(limits)
        return base.Terms(ticket)

    outcome = base.open_record(call, KIND, credential=body["credential"], terms=terms,
                               due_at=None, reference=body.get("reference"), details={})
    percent = granted.get("discount_percent", 0)
    discount = min(ticket * percent // 100, granted.get("max_discount_fen", ticket))
    record = outcome.record
    record.waived_fen, record.charge_normally_fen = discount, ticket - discount
    record.status, record.closed_at = "closed", call.now
    base.set_details(call, record, {"discount_percent": percent if discount else 0})
    return outcome


KIND = base.KindSpec(
    kind=PartnerKind.SCENIC.value,
    benefit="scenic.discount",
    noun="entries",
    description="Scenic spots (信易游): single-use free entry or discount, no exposure",
    answer=EntryOut,
    render=_render,
    operations=(base.Operation("admit", "", EntryIn, "Admit a visitor with the discount",
                               opens=_admit, status=201),),
    closed_state="admitted",
)
