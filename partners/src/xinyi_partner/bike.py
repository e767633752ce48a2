"""Bike kit (信易行): deposit-free unlock, lock with the fee, and the rides' events.

    client = BikeClient("https://api.xinyi.example.cn", "xyk_…")
    ride = client.unlock(qr_text, bike_id="B-1024", deposit_fen=29900, due_at=due)
    ride = client.lock(ride.id, ended_at=now, fee_fen=150)        # paid: fulfilled
    ride = client.lock(ride.id, ended_at=now, fee_fen=150, paid_fen=0)  # unpaid: a default
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
    iso,
    parse_time,
)

__all__ = ["BikeClient", "BikeEvents", "Ride", "RideEnded", "RideFeeUnpaid", "RideOverdue",
           "RideRecorded", "RideSettled", "RideStarted"]


@dataclass(frozen=True)
class Ride(AdapterAnswer):
    bike_id: str
    ended_at: datetime | None
    fee_fen: int | None
    unpaid_fen: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ride:
        return cls(**AdapterAnswer.common(data), bike_id=data["bike_id"],
                   ended_at=parse_time(data.get("ended_at")), fee_fen=data.get("fee_fen"),
                   unpaid_fen=data["unpaid_fen"])


class BikeClient(AdapterClient):
    """``/v1/adapters/bike`` with a bike operator's API key."""

    kind = "bike"

    def unlock(self, credential: str, *, bike_id: str, deposit_fen: int, due_at: datetime,
               reference: str | None = None, idempotency_key: str | None = None) -> Ride:
        body: dict[str, Any] = {"credential": credential, "bike_id": bike_id,
                                "deposit_fen": deposit_fen, "due_at": iso(due_at)}
        if reference is not None:
            body["reference"] = reference
        return Ride.from_json(self._post("/rides", body, idempotency_key))

    def lock(self, ride_id: str, *, ended_at: datetime, fee_fen: int,
             paid_fen: int | None = None, idempotency_key: str | None = None) -> Ride:
        """End the ride; ``paid_fen`` below ``fee_fen`` reports the rest as a default."""
        body: dict[str, Any] = {"ended_at": iso(ended_at), "fee_fen": fee_fen}
        if paid_fen is not None:
            body["paid_fen"] = paid_fen
        return Ride.from_json(self._post(f"/rides/{ride_id}/lock", body, idempotency_key))

    def settle(self, ride_id: str, *, idempotency_key: str | None = None) -> Ride:
        return Ride.from_json(self._post(f"/rides/{ride_id}/settle", {}, idempotency_key))

    def get(self, ride_id: str) -> Ride:
        return Ride.from_json(self._get(f"/rides/{ride_id}"))


class RideStarted(SessionEvent):
    TYPE = "bike.ride_started"


class RideEnded(SessionEvent):
    TYPE = "bike.ride_ended"


class RideOverdue(SessionEvent):
    TYPE = "bike.ride_overdue"


class RideFeeUnpaid(SessionEvent):
    TYPE = "bike.ride_fee_unpaid"


class RideSettled(SessionEvent):
    TYPE = "bike.ride_settled"


class RideRecorded(SessionEvent):
    TYPE = "bike.ride_recorded"


EVENTS = {**GENERIC_EVENTS, **event_classes(RideStarted, RideEnded, RideOverdue,
                                            RideFeeUnpaid, RideSettled, RideRecorded)}


class BikeEvents(EventDispatcher):
    def __init__(self, secret: str, *, tolerance_seconds: int = 300) -> None:
        super().__init__(secret, EVENTS, tolerance_seconds=tolerance_seconds)
