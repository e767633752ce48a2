"""The benefit sessions' webhook event types, as plain data for the event catalogue.

Each is sent to the one partner whose session it is (the outbox row's ``partner_id``); the
payload (:func:`xinyi.benefits.service.event_payload`) holds ids, state, amounts and dates,
never the citizen. The webhook catalogue (``xinyi.webhooks.catalogue.EVENT_TYPES``) takes
these entries as they are: name, version, ``data`` schema, description, outbox topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import Schema, fields

STATES = ["open", "fulfilled", "cancelled", "overdue", "defaulted", "settled", "recorded"]


class SessionData(Schema):
    """``data`` of every ``benefit_session.*`` event (dump only)."""

    session_id = fields.UUID(required=True)
    verification_id = fields.UUID(required=True)
    benefit_code = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "Your partner kind"})
    state = fields.String(required=True, metadata={"enum": STATES})
    reference = fields.String(required=True, metadata={"description": "Your own reference"})
    amount_fen = fields.Integer(required=True)
    waived_fen = fields.Integer(required=True)
    charge_normally_fen = fields.Integer(required=True)
    amount_owed_fen = fields.Integer(required=True, allow_none=True)
    due_at = fields.String(required=True, metadata={"format": "date-time"})
    grace_until = fields.String(required=True, allow_none=True,
                                metadata={"format": "date-time"})
    record_id = fields.UUID(required=True, allow_none=True, metadata={
        "description": "The default record written after grace (`recorded` only)"})


@dataclass(frozen=True)
class SessionEventType:
    name: str
    version: int
    schema: type[Schema]
    description: str
    topic: str


def _entry(name: str, description: str) -> SessionEventType:
    topic = f"benefit_session.{name}"
    return SessionEventType(topic, 1, SessionData, description, topic)


EVENT_TYPES: tuple[SessionEventType, ...] = (
    _entry("opened", "You opened a session: the split into waived and normally charged."),
    _entry("closed", "A session of yours was closed: fulfilled, defaulted or cancelled "
                     "(`state` says which)."),
    _entry("overdue", "A session of yours passed its due date unclosed; the citizen was "
                      "reminded."),
    _entry("defaulted", "A session of yours defaulted (you declared it, or it stayed "
                        "overdue 30 days); the grace period runs to `grace_until`."),
    _entry("settled", "A defaulted session was settled within grace: no record."),
    _entry("recorded", "Grace ended unsettled: a minor default record was written "
                       "(`record_id`); the citizen may object to it."),
)
