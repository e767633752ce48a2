"""Scenic-spot kit (信易游): single-use free entry or discount. Nothing is lent, so there
is no session and no event.

    client = ScenicClient("https://api.xinyi.example.cn", "xyk_…")
    entry = client.admit(qr_text, ticket_fen=8000)
    charge = entry.charge_normally_fen   # the ticket minus the discount
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._adapter import AdapterAnswer, AdapterClient

__all__ = ["Entry", "ScenicClient"]


@dataclass(frozen=True)
class Entry(AdapterAnswer):
    discount_percent: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        return cls(**AdapterAnswer.common(data), discount_percent=data["discount_percent"])


class ScenicClient(AdapterClient):
    """``/v1/adapters/scenic`` with a scenic spot's API key."""

    kind = "scenic"

    def admit(self, credential: str, *, ticket_fen: int, reference: str | None = None,
              idempotency_key: str | None = None) -> Entry:
        body: dict[str, Any] = {"credential": credential, "ticket_fen": ticket_fen}
        if reference is not None:
            body["reference"] = reference
        return Entry.from_json(self._post("/entries", body, idempotency_key))

    def get(self, entry_id: str) -> Entry:
        return Entry.from_json(self._get(f"/entries/{entry_id}"))
