"""Schemas every kind shares: the common answer and the common request fields."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from xinyi.schemas import FullMatch, StrictSchema, WholeNumber

DATE_TIME = {"format": "date-time"}
STATES = ["open", "closed", "admitted", "fulfilled", "cancelled", "overdue", "defaulted",
          "settled", "recorded"]


def amount(description: str, **kwargs: Any) -> fields.Field[Any]:
    """Integer fen; the range is checked by the adapter (naming the rule)."""
    return WholeNumber(metadata={"description": description + " (integer fen)"}, **kwargs)


def credential() -> fields.Field[Any]:
    return fields.String(required=True, validate=validate.Length(min=1, max=8192), metadata={
        "description": "The citizen's QR payload (XY1:…) or 18-digit short code"})


def _printable(value: str) -> bool:
    if not value.isprintable() or value != value.strip():
        raise ValidationError("printable characters without surrounding spaces")
    return True


def reference() -> fields.Field[Any]:
    return fields.String(validate=[validate.Length(min=1, max=100), _printable], metadata={
        "description": "Your own reference, 1-100 printable characters (default: the id)"})


class AdapterOut(Schema):
    """The common answer of every kind."""

    id = fields.String(required=True, metadata={"description": "This record's id"})
    kind = fields.String(required=True)
    session_id = fields.String(required=True, allow_none=True, metadata={
        "description": "The benefit session; null when nothing is waived (standard terms, "
                       "a used-up cap, or a kind without sessions)"})
    decision = fields.String(required=True, validate=validate.OneOf(
        ["eligible", "standard_terms"]))
    state = fields.String(required=True, validate=validate.OneOf(STATES), metadata={
        "description": "The session's state, or without one `open`/`closed` (`admitted` for "
                       "an entry)"})
    status = fields.String(required=True, validate=validate.OneOf(["open", "closed"]),
                           metadata={"description": "Whether the record itself is finished"})
    amount_fen = fields.Integer(required=True)
    waived_fen = fields.Integer(required=True, metadata={
        "description": "Covered on credit (deposit waived, credit line)"})
    charge_normally_fen = fields.Integer(required=True, metadata={
        "description": "Charge this part as you would anyone without the card"})
    amount_owed_fen = fields.Integer(required=True, allow_none=True)
    due_at = fields.String(required=True, allow_none=True, metadata=DATE_TIME)
    reference = fields.String(required=True)
    created_at = fields.String(required=True, metadata=DATE_TIME)
    closed_at = fields.String(required=True, allow_none=True, metadata=DATE_TIME)
    next_step = fields.String(required=True, allow_none=True)
    next_step_at = fields.String(required=True, allow_none=True, metadata=DATE_TIME)


class SettleIn(StrictSchema):
    """Nothing to say: the citizen paid what the default owed, during grace."""


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time with its offset (a naive one is refused), handed on in UTC."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        from datetime import UTC

        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise self.make_error("invalid", input=value, obj_type="datetime") from None


def due_at(description: str = "When it is due back (ISO 8601 with offset)",
           **kwargs: Any) -> fields.Field[Any]:
    return UtcDateTime(format="iso", metadata={"description": description, **DATE_TIME},
                       **kwargs)


def barcode() -> fields.Field[Any]:
    return fields.String(required=True, validate=FullMatch(
        r"^[\x21-\x7e]{1,64}$", error="1-64 visible ASCII characters"))
