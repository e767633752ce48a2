"""Hotel kit (免押信用住): deposit-free check-in, checkout with charges, and the stays'
events (``hotel.stay_unsettled``: past checkout and its 72 hours without a checkout).

    client = HotelClient("https://api.xinyi.example.cn", "xyk_…")
    stay = client.check_in(qr_text, room="1208", nights=2, deposit_fen=50000)
    stay = client.checkout(stay.id, charges_fen=3800)             # paid at the desk
    stay = client.checkout(stay.id, charges_fen=3800, paid_fen=0) # unpaid: a default
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._adapter import (
    GENERIC_EVENTS,
    AdapterAnswer,
    AdapterClient,
    EventDispatcher,
    SessionEvent,
    event_classes,
    parse_time,
)

__all__ = ["HotelClient", "HotelEvents", "Stay", "StayCheckedIn", "StayCheckedOut",
           "StayDefaulted", "StayRecorded", "StaySettled", "StayUnsettled"]


@dataclass(frozen=True)
class Stay(AdapterAnswer):
    room: str
    nights: int
    checkout_by: datetime | None  # the last moment charges can go on the stay
    checked_out_at: datetime | None
    charges_fen: int | None
    unpaid_fen: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Stay:
        return cls(**AdapterAnswer.common(data), room=data["room"], nights=data["nights"],
                   checkout_by=parse_time(data.get("checkout_by")),
                   checked_out_at=parse_time(data.get("checked_out_at")),
                   charges_fen=data.get("charges_fen"), unpaid_fen=data["unpaid_fen"])


class HotelClient(AdapterClient):
    """``/v1/adapters/hotel`` with a hotel's API key."""

    kind = "hotel"

    def check_in(self, credential: str, *, room: str, nights: int, deposit_fen: int,
                 reference: str | None = None, idempotency_key: str | None = None) -> Stay:
        body: dict[str, Any] = {"credential": credential, "room": room, "nights": nights,
                                "deposit_fen": deposit_fen}
        if reference is not None:
            body["reference"] = reference
        return Stay.from_json(self._post("/stays", body, idempotency_key))

    def checkout(self, stay_id: str, *, charges_fen: int, paid_fen: int | None = None,
                 idempotency_key: str | None = None) -> Stay:
        """Check out at the desk or within 72 h; unpaid charges are a default."""
        body: dict[str, Any] = {"charges_fen": charges_fen}
        if paid_fen is not None:
            body["paid_fen"] = paid_fen
        return Stay.from_json(self._post(f"/stays/{stay_id}/checkout", body, idempotency_key))

    def settle(self, stay_id: str, *, idempotency_key: str | None = None) -> Stay:
        return Stay.from_json(self._post(f"/stays/{stay_id}/settle", {}, idempotency_key))

    def get(self, stay_id: str) -> Stay:
        return Stay.from_json(self._get(f"/stays/{stay_id}"))


class StayCheckedIn(SessionEvent):
    TYPE = "hotel.stay_checked_in"


class StayCheckedOut(SessionEvent):
    TYPE = "hotel.stay_checked_out"


class StayUnsettled(SessionEvent):
    TYPE = "hotel.stay_unsettled"


class StayDefaulted(SessionEvent):
    TYPE = "hotel.stay_defaulted"


class StaySettled(SessionEvent):
    TYPE = "hotel.stay_settled"


class StayRecorded(SessionEvent):
    TYPE = "hotel.stay_recorded"


EVENTS = {**GENERIC_EVENTS, **event_classes(StayCheckedIn, StayCheckedOut, StayUnsettled,
                                            StayDefaulted, StaySettled, StayRecorded)}


class HotelEvents(EventDispatcher):
    def __init__(self, secret: str, *, tolerance_seconds: int = 300) -> None:
        super().__init__(secret, EVENTS, tolerance_seconds=tolerance_seconds)
