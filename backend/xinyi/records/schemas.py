from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_dump, pre_load, validate

from xinyi.records.models import OCCUPATIONS, POLARITIES, SEVERITIES

# The vocabulary of a record, for the schemas of the domains that show records.
__all__ = ["OCCUPATIONS", "POLARITIES", "SEVERITIES"]
from xinyi.schemas import (
    NON_EMPTY,
    FullMatch,
    JsonBoolean,
    PageArgs,
    ProblemSchema,
    StrictSchema,
    WholeNumber,
)
from xinyi.timeutil import CHINA

REF = FullMatch(r"^[A-Za-z0-9._:/-]{1,128}$",
                error="1-128 letters, digits or . _ : / -")


class OccurredAt(fields.Field[date]):
    """An ISO date, or a datetime whose date in Asia/Shanghai is taken (as given if naive)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if not isinstance(value, str) or len(value) > 40:
            raise ValidationError("must be an ISO date (YYYY-MM-DD) or datetime")
        try:
            if len(value) == 10:
                return date.fromisoformat(value)
            moment = datetime.fromisoformat(value)
            # Dates are China dates: a time with an offset is first moved to Asia/Shanghai.
            return (moment if moment.tzinfo is None else moment.astimezone(CHINA)).date()
        except (ValueError, OverflowError):
            raise ValidationError("must be an ISO date (YYYY-MM-DD) or datetime") from None

    def _serialize(self, value: date | None, attr: str | None, obj: Any,
                   **kwargs: Any) -> str | None:
        return None if value is None else value.isoformat()


class RecordItemIn(StrictSchema):
    ref = fields.String(required=True, validate=REF,
                        metadata={"description": "The provider's own reference; idempotency key"})
    id_number = fields.String(required=True, validate=validate.Length(max=32))
    catalogue_code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    occurred_at = OccurredAt(required=True, metadata={"type": "string", "format": "date"})
    summary = fields.String(required=True, validate=validate.Length(min=1, max=500))
    occupation = fields.String(validate=validate.OneOf(OCCUPATIONS), allow_none=True)


class _LooseItems(fields.List[Any]):
    """Documented as a list of records, but each item is validated on its own in the service,
    so one bad item cannot block the others."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValidationError("must be a list")
        return list(value)


class RecordBatchIn(StrictSchema):
    records = _LooseItems(fields.Nested(RecordItemIn), required=True,
                          validate=validate.Length(min=1, max=1000))

    @pre_load
    def _refuse_unstorable_text(self, data: Any, **kwargs: Any) -> Any:
        # The items are checked one by one (RecordItemIn refuses NUL too): a NUL in one item
        # must reject that item only, not the whole batch.
        if isinstance(data, dict):
            super()._refuse_unstorable_text(
                {k: v for k, v in data.items() if k != "records"}, **kwargs)
        return data


class ItemResultOut(Schema):
    ref = fields.Raw(required=True, allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(
        ["created", "unchanged", "rejected"]))
    id = fields.UUID()
    problem = fields.Nested(ProblemSchema)

    @post_dump
    def _drop_empty(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {k: v for k, v in data.items() if v is not None or k == "ref"}


class RecordBatchOut(Schema):
    results = fields.List(fields.Nested(ItemResultOut), required=True)


class RecordPatchIn(StrictSchema):
    JSON_SCHEMA_EXTRA = NON_EMPTY

    catalogue_code = fields.String(validate=validate.Length(min=1, max=64))
    occurred_at = OccurredAt(metadata={"type": "string", "format": "date"})
    summary = fields.String(validate=validate.Length(min=1, max=500))
    occupation = fields.String(validate=validate.OneOf(OCCUPATIONS), allow_none=True)


class ProviderRecordOut(Schema):
    id = fields.UUID(required=True)
    ref = fields.String(required=True, attribute="provider_ref")
    catalogue_code = fields.String(required=True)
    occurred_at = fields.Date(required=True, attribute="occurred_on")
    summary = fields.String(required=True)
    occupation = fields.String(allow_none=True)
    points = fields.Integer(required=True)
    display_until = fields.Date(required=True)
    status = fields.String(required=True)
    archived_reason = fields.String(allow_none=True)


class CitizenRecordOut(Schema):
    id = fields.UUID(required=True)
    catalogue_code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    polarity = fields.String(required=True)
    severity = fields.String(allow_none=True)
    domain = fields.String(required=True)
    occurred_at = fields.Date(required=True)
    summary = fields.String(required=True)
    points = fields.Integer(required=True)
    display_until = fields.Date(required=True)
    repair_from = fields.Date(allow_none=True)
    status = fields.String(required=True)
    archived_reason = fields.String(allow_none=True)
    source = fields.String(required=True)
    repair_hours_required = fields.Integer(allow_none=True, metadata={
        "description": "Volunteer hours a repair by volunteering needs (the catalogue rule "
                       "today); null when volunteering alone never repairs it"})
    under_objection = fields.Boolean(required=True, metadata={
        "description": "An objection (异议) to this record is being handled"})
    objection_note = fields.String(allow_none=True, metadata={
        "description": "Why an objection to it was not upheld, once one was decided so"})


class CitizenRecordsArgs(PageArgs):
    archived = fields.Boolean(load_default=False)


CATALOGUE_CODE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")  # a full match; at most 64 long


def is_catalogue_code(value: str) -> bool:
    return len(value) <= 64 and CATALOGUE_CODE.fullmatch(value) is not None


# What the service's item rules refuse, said in the document: the points' sign and the
# severity follow the polarity, and a serious record is never repaired by volunteering.
ITEM_RULES: Mapping[str, Any] = MappingProxyType({"oneOf": [
    {"properties": {"polarity": {"const": "positive"}, "points": {"minimum": 1},
                    "severity": {"type": "null"}}},
    {"properties": {"polarity": {"const": "negative"}, "points": {"maximum": -1},
                    "severity": {"enum": [s for s in SEVERITIES if s != "serious"]}}},
    {"properties": {"polarity": {"const": "negative"}, "points": {"maximum": -1},
                    "severity": {"const": "serious"},
                    "repairable_by_volunteering": {"const": False}}},
]})


class CatalogueItemSchema(StrictSchema):
    JSON_SCHEMA_EXTRA = ITEM_RULES

    code = fields.String(required=True, validate=[validate.Length(max=64), FullMatch(
        CATALOGUE_CODE.pattern.join("^$"), error="like domain.item, lower case")])
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name_en = fields.String(required=True, validate=validate.Length(min=1, max=200))
    polarity = fields.String(required=True, validate=validate.OneOf(POLARITIES))
    severity = fields.String(required=True, allow_none=True, validate=validate.OneOf(SEVERITIES))
    domain = fields.String(required=True, validate=validate.Length(min=1, max=64))
    points = WholeNumber(required=True, validate=validate.Range(-600, 600))
    display_months = WholeNumber(required=True, validate=validate.Range(1, 240))
    repair_after_months = WholeNumber(required=True, allow_none=True,
                                      validate=validate.Range(0, 240))
    repairable_by_volunteering = JsonBoolean(required=True)
    repair_hours_required = WholeNumber(allow_none=True, validate=validate.Range(0, 2000),
                                        metadata={"description": (
                                            "Volunteer hours a repair by volunteering needs; "
                                            "null when volunteering alone never repairs it. "
                                            "Defaults by severity: minor 10, general 40, "
                                            "serious null")})
    legal_basis = fields.String(required=True, allow_none=True,
                                validate=validate.Length(max=2000))


class CatalogueItemPatch(CatalogueItemSchema):
    """Partial update: use with ``partial=True``; the code never changes."""

    JSON_SCHEMA_EXTRA = NON_EMPTY

    class Meta(StrictSchema.Meta):
        exclude = ("code",)


class CatalogueOut(Schema):
    items = fields.List(fields.Nested(CatalogueItemSchema), required=True)


class ListArgs(PageArgs):
    list = fields.String(validate=validate.OneOf(["red", "black"]))
    include_left = fields.Boolean(load_default=False)


class ListEntryOut(Schema):
    id = fields.UUID(required=True)
    list = fields.String(required=True)
    catalogue_code = fields.String(required=True)
    legal_basis = fields.String(required=True)
    record_id = fields.UUID(required=True)
    subject = fields.String(required=True, metadata={"description": "Masked ID number"})
    entered_at = fields.DateTime(required=True)
    left_at = fields.DateTime(allow_none=True)
    left_reason = fields.String(allow_none=True)

