"""Each kind's webhook events: the generic session events in the kind's own words.

A benefit session of a library partner that becomes overdue is, to that library, a
``library.loan_overdue``. The payload is the generic event's (ids, state, amounts, dates; no
personal data); only the type differs. This module is plain data for the webhook catalogue,
derived from the registry, so a new kind's events come with its module.
"""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import Schema

from xinyi.adapters.registry import KINDS
from xinyi.benefits.events import SessionData


@dataclass(frozen=True)
class KindEvent:
    """One catalogue entry: the outbox ``topic`` it comes from, and the payload value that
    selects it (``{"kind": "library"}``: the session payload names its partner's kind). Put
    before the generic entry of the same topic, it is what a partner of that kind gets."""

    name: str  # the public type, "library.loan_overdue"
    version: int
    kind: str  # the partner kind that receives it
    topic: str  # the generic event it stands for ("benefit_session.overdue")
    description: str
    schema: type[Schema] = SessionData  # the generic event's data, unchanged

    @property
    def match(self) -> dict[str, str]:
        return {"kind": self.kind}


_SAYS = {
    "benefit_session.opened": "opened: part of the amount is waived on credit",
    "benefit_session.closed": "closed by the partner (fulfilled or defaulted)",
    "benefit_session.overdue": "past its due date and not closed; the citizen was notified",
    "benefit_session.defaulted": "defaulted: the grace period started, the citizen was told",
    "benefit_session.settled": "settled during grace: no record will be written",
    "benefit_session.recorded": "grace ended unsettled: a minor default record was written",
}

CATALOGUE: tuple[KindEvent, ...] = tuple(
    KindEvent(name=kind_type, version=1, kind=spec.kind, topic=generic,
              description=f"{spec.kind} {spec.noun}: {_SAYS[generic]}")
    for spec in KINDS.values() for generic, kind_type in spec.events.items())


def kind_event_type(kind: str | None, generic: str) -> str | None:
    """The type a partner of ``kind`` receives for the generic event ``generic`` (None: the
    kind has no word of its own for it)."""
    spec = KINDS.get(kind or "")
    return spec.events.get(generic) if spec is not None else None
