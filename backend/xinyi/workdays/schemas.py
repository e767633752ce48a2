from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.schemas import StrictSchema


class YearIn(StrictSchema):
    holidays = fields.List(fields.Date(), required=True, validate=validate.Length(max=60),
                           metadata={"description": "Public holidays (法定节假日) off work"})
    workdays = fields.List(fields.Date(), required=True, validate=validate.Length(max=20),
                           metadata={"description": "Make-up working days (调休上班) on a "
                                                    "Saturday or Sunday"})


class YearOut(Schema):
    year = fields.Integer(required=True)
    source = fields.String(required=True, metadata={
        "description": "package (the official calendar package), staff (entered here) or "
                       "provisional (unknown: Monday to Friday)"})
    holidays = fields.List(fields.Date(), required=True)
    workdays = fields.List(fields.Date(), required=True)
    entered_at = fields.DateTime(allow_none=True)


class YearsOut(Schema):
    items = fields.List(fields.Nested(YearOut), required=True)
