"""Request and response schemas of the statistics and the districts (``/v1/admin``)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.schemas import FullMatch, PageArgs, StrictSchema, WholeNumber
from xinyi.stats.service import DISTRICT_CODE, MAX_POPULATION

# The path parameter's rule, as the OpenAPI document states it: the one the service checks.
DISTRICT_CODE_PATTERN = f"^{DISTRICT_CODE.pattern}$"
DISTRICT_CODE_PARAMETER = {
    "in": "path", "name": "code", "required": True,
    "description": "Six-digit administrative division code (行政区划代码, GB/T 2260), the "
                   "code a resident ID number starts with, e.g. 370102",
    "schema": {"type": "string", "pattern": DISTRICT_CODE_PATTERN},
}


class StatsArgs(StrictSchema):
    refresh = fields.Boolean(load_default=False, metadata={
        "description": "Compute the figures now instead of answering the cached ones "
                       "(at most five minutes old)"})


class DistrictIn(StrictSchema):
    name = fields.String(required=True, validate=[
        validate.Length(min=1, max=100),
        FullMatch(r"^[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$",
                  error="must start with a letter and hold no control characters")],
        metadata={"example": "历下区"})
    resident_population = WholeNumber(
        required=True, allow_none=True, validate=validate.Range(min=1, max=MAX_POPULATION),
        metadata={"description": "Resident population (常住人口); null while not known "
                                 "(the district's coverage is then null)"})


class DistrictArgs(PageArgs):
    pass


class DistrictOut(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    resident_population = fields.Integer(required=True, allow_none=True)
    updated_at = fields.DateTime(required=True)


class DomainCount(Schema):
    domain = fields.String(required=True)
    severity = fields.String(allow_none=True)
    polarity = fields.String(required=True)
    records = fields.Integer(required=True)


class DayCount(Schema):
    date = fields.String(required=True)
    queries = fields.Integer(required=True)


class DayVerificationCount(Schema):
    date = fields.String(required=True, metadata={"description": "Day in Asia/Shanghai"})
    decision = fields.String(required=True, metadata={
        "description": "The answer given: eligible or standard_terms"})
    verifications = fields.Integer(required=True)


class DistrictCoverageOut(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True, allow_none=True, metadata={
        "description": "As staff set it; null for a district no one has set"})
    resident_population = fields.Integer(required=True, allow_none=True)
    scored = fields.Integer(required=True, metadata={
        "description": "People with a score whose ID number was issued in this district"})
    coverage = fields.Float(required=True, allow_none=True, metadata={
        "description": "scored ÷ resident_population (4 decimals); null when the population "
                       "is not set"})
    meets_target = fields.Boolean(required=True, allow_none=True)


class CoverageOut(Schema):
    target = fields.Float(required=True, metadata={"description": "0.7: the policy's 70 %"})
    resident_population = fields.Integer(required=True, allow_none=True, metadata={
        "description": "Sum over the districts whose population is set"})
    scored = fields.Integer(required=True, metadata={
        "description": "People with a score in those districts"})
    coverage = fields.Float(required=True, allow_none=True)
    meets_target = fields.Boolean(required=True, allow_none=True)
    scored_without_population = fields.Integer(required=True, metadata={
        "description": "People with a score in districts whose population is not set"})
    scored_district_unknown = fields.Integer(required=True, metadata={
        "description": "People with a score whose district is not recorded yet (stored "
                       "before districts were kept, until the backfill reaches them)"})
    districts = fields.List(fields.Nested(DistrictCoverageOut), required=True)


class BenefitUseOut(Schema):
    benefit_code = fields.String(required=True)
    partner_kind = fields.String(required=True)
    opened = fields.Integer(required=True, metadata={"description": "Sessions opened"})
    fulfilled = fields.Integer(required=True)
    cancelled = fields.Integer(required=True)
    amount_fen = fields.Integer(required=True, metadata={
        "description": "Sum of the sessions' amounts, cancelled ones left out"})
    waived_fen = fields.Integer(required=True, metadata={
        "description": "Sum of the parts waived on credit, cancelled ones left out"})


class DefaultsOut(Schema):
    defaulted = fields.Integer(required=True, metadata={
        "description": "Benefit sessions that went into default"})
    in_grace = fields.Integer(required=True)
    settled = fields.Integer(required=True, metadata={
        "description": "Paid within grace: no record written"})
    recorded = fields.Integer(required=True, metadata={
        "description": "Grace ended unpaid: a minor market-default record was written"})


class RepairsOut(Schema):
    requested = fields.Integer(required=True)
    pending = fields.Integer(required=True)
    approved = fields.Integer(required=True)
    rejected = fields.Integer(required=True)


class ObjectionsOut(Schema):
    filed = fields.Integer(required=True)
    open = fields.Integer(required=True)
    corrected = fields.Integer(required=True)
    deleted = fields.Integer(required=True)
    upheld = fields.Integer(required=True)


class DeadlineOut(Schema):
    kind = fields.String(required=True, metadata={
        "description": "repairs, disputes or decision_reviews"})
    decided = fields.Integer(required=True)
    decided_on_time = fields.Integer(required=True, metadata={
        "description": "Decided on or before the due date (working days)"})
    on_time_share = fields.Float(required=True, allow_none=True, metadata={
        "description": "decided_on_time ÷ decided (4 decimals); null when none is decided"})
    open = fields.Integer(required=True)
    open_past_due = fields.Integer(required=True)


class StatsOut(Schema):
    as_of = fields.DateTime(required=True, metadata={
        "description": "When these figures were computed (they are cached for 5 minutes)"})
    citizens_covered = fields.Integer(required=True, metadata={
        "description": "People with at least one record or a score"})
    registered_citizens = fields.Integer(required=True)
    records_by_domain_and_severity = fields.List(fields.Nested(DomainCount), required=True)
    queries_per_day = fields.List(fields.Nested(DayCount), required=True, metadata={
        "description": "Reads of citizens' data by others, last 30 days (Asia/Shanghai)"})
    verifications_per_day = fields.List(fields.Nested(DayVerificationCount), required=True,
                                        metadata={"description": "Partners' verification "
                                                  "answers, last 30 days (Asia/Shanghai)"})
    coverage = fields.Nested(CoverageOut, required=True, metadata={
        "description": "Score coverage of residents against the 70 % target"})
    benefits = fields.List(fields.Nested(BenefitUseOut), required=True)
    defaults = fields.Nested(DefaultsOut, required=True)
    repairs = fields.Nested(RepairsOut, required=True)
    objections = fields.Nested(ObjectionsOut, required=True)
    deadlines = fields.List(fields.Nested(DeadlineOut), required=True, metadata={
        "description": "Working-day deadline compliance per kind of case"})
