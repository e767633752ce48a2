"""Hospital kit (信易医): treat first, pay later, and the encounters' events.

    client = HospitalClient("https://api.xinyi.example.cn", "xyk_…")
    visit = client.open(qr_text, department="内科", due_at=due)   # credit line: visit.waived_fen
    visit = client.bill(visit.id, [BillItem("X-RAY", "胸部X光", 12000)])
    visit = client.settle(visit.id, paid_fen=visit.outstanding_fen)   # closes it
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ._adapter import (
    GENERIC_EVENTS,
    AdapterAnswer,
    AdapterClient,
    EventDispatcher,
    SessionEvent,
    event_classes,
    iso,
    parse_time,
)

__all__ = ["BillItem", "Encounter", "EncounterClosed", "EncounterDefaulted",
           "EncounterOpened", "EncounterOverdue", "EncounterRecorded", "EncounterSettled",
           "HospitalClient", "HospitalEvents"]


@dataclass(frozen=True)
class BillItem:
    code: str
    name: str
    amount_fen: int


@dataclass(frozen=True)
class Bill:
    id: str
    total_fen: int
    deferred_fen: int  # drawn on the credit line
    pay_now_fen: int  # beyond the line: charge it now as usual
    billed_at: datetime | None


@dataclass(frozen=True)
class Encounter(AdapterAnswer):
    department: str
    credit_line_fen: int
    line_left_fen: int
    bills: tuple[Bill, ...]
    deferred_fen: int
    paid_fen: int
    outstanding_fen: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Encounter:
        bills = tuple(Bill(b["id"], b["total_fen"], b["deferred_fen"], b["pay_now_fen"],
                           parse_time(b.get("billed_at"))) for b in data["bills"])
        return cls(**AdapterAnswer.common(data), department=data["department"],
                   credit_line_fen=data["credit_line_fen"],
                   line_left_fen=data["line_left_fen"], bills=bills,
                   deferred_fen=data["deferred_fen"], paid_fen=data["paid_fen"],
                   outstanding_fen=data["outstanding_fen"])


class HospitalClient(AdapterClient):
    """``/v1/adapters/hospital`` with a hospital's API key."""

    kind = "hospital"

    def open(self, credential: str, *, department: str, due_at: datetime,
             reference: str | None = None, idempotency_key: str | None = None) -> Encounter:
        body: dict[str, Any] = {"credential": credential, "department": department,
                                "due_at": iso(due_at)}
        if reference is not None:
            body["reference"] = reference
        return Encounter.from_json(self._post("/encounters", body, idempotency_key))

    def bill(self, encounter_id: str, items: Sequence[BillItem], *,
             idempotency_key: str | None = None) -> Encounter:
        """Bill items: what fits the line is deferred, the rest is paid now."""
        return Encounter.from_json(self._post(
            f"/encounters/{encounter_id}/bills", {"items": [asdict(i) for i in items]},
            idempotency_key))

    def settle(self, encounter_id: str, *, paid_fen: int,
               idempotency_key: str | None = None) -> Encounter:
        """A payment of the deferred amount; nothing outstanding closes the encounter."""
        return Encounter.from_json(self._post(f"/encounters/{encounter_id}/settle",
                                              {"paid_fen": paid_fen}, idempotency_key))

    def get(self, encounter_id: str) -> Encounter:
        return Encounter.from_json(self._get(f"/encounters/{encounter_id}"))


class EncounterOpened(SessionEvent):
    TYPE = "hospital.encounter_opened"


class EncounterClosed(SessionEvent):
    TYPE = "hospital.encounter_closed"


class EncounterOverdue(SessionEvent):
    TYPE = "hospital.encounter_overdue"


class EncounterDefaulted(SessionEvent):
    TYPE = "hospital.encounter_defaulted"


class EncounterSettled(SessionEvent):
    TYPE = "hospital.encounter_settled"


class EncounterRecorded(SessionEvent):
    TYPE = "hospital.encounter_recorded"


EVENTS = {**GENERIC_EVENTS, **event_classes(EncounterOpened, EncounterClosed,
                                            EncounterOverdue, EncounterDefaulted,
                                            EncounterSettled, EncounterRecorded)}


class HospitalEvents(EventDispatcher):
    def __init__(self, secret: str, *, tolerance_seconds: int = 300) -> None:
        super().__init__(secret, EVENTS, tolerance_seconds=tolerance_seconds)
