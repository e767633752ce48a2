"""What the statistics service hands its routes: frozen snapshots, one per response schema in
``stats/schemas.py`` (a unit test holds each to its schema). Counts only: nothing here can
name a person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class DistrictView:
    """``DistrictOut``: a district and the resident population staff set for it."""

    code: str
    name: str
    resident_population: int | None
    updated_at: datetime


@dataclass(frozen=True)
class RecordCount:
    """``DomainCount``: active records of one domain, severity and polarity."""

    domain: str
    severity: str | None
    polarity: str
    records: int


@dataclass(frozen=True)
class DayQueries:
    """``DayCount``: reads of citizens' data by others on one day (Asia/Shanghai)."""

    date: str
    queries: int


@dataclass(frozen=True)
class DayVerifications:
    """``DayVerificationCount``: partners' verification answers of one decision on one day."""

    date: str
    decision: str
    verifications: int


@dataclass(frozen=True)
class DistrictCoverage:
    """``DistrictCoverageOut``: people with a score in one district against its residents."""

    code: str
    name: str | None
    resident_population: int | None
    scored: int
    coverage: float | None
    meets_target: bool | None


@dataclass(frozen=True)
class Coverage:
    """``CoverageOut``: score coverage of residents, in total and per district."""

    target: float
    resident_population: int | None
    scored: int
    coverage: float | None
    meets_target: bool | None
    scored_without_population: int
    scored_district_unknown: int
    districts: tuple[DistrictCoverage, ...]


@dataclass(frozen=True)
class BenefitUse:
    """``BenefitUseOut``: sessions of one benefit at one partner kind."""

    benefit_code: str
    partner_kind: str
    opened: int
    fulfilled: int
    cancelled: int
    amount_fen: int
    waived_fen: int


@dataclass(frozen=True)
class DefaultCounts:
    """``DefaultsOut``."""

    defaulted: int
    in_grace: int
    settled: int
    recorded: int


@dataclass(frozen=True)
class RepairCounts:
    """``RepairsOut``."""

    requested: int
    pending: int
    approved: int
    rejected: int


@dataclass(frozen=True)
class ObjectionCounts:
    """``ObjectionsOut``: objections (异议) by outcome."""

    filed: int
    open: int
    corrected: int
    deleted: int
    upheld: int


@dataclass(frozen=True)
class DeadlineCompliance:
    """``DeadlineOut``: how one kind of case keeps its working-day deadline."""

    kind: str
    decided: int
    decided_on_time: int
    on_time_share: float | None
    open: int
    open_past_due: int


@dataclass(frozen=True)
class Statistics:
    """``StatsOut``."""

    as_of: datetime
    citizens_covered: int
    registered_citizens: int
    records_by_domain_and_severity: tuple[RecordCount, ...]
    queries_per_day: tuple[DayQueries, ...]
    verifications_per_day: tuple[DayVerifications, ...]
    coverage: Coverage
    benefits: tuple[BenefitUse, ...]
    defaults: DefaultCounts
    repairs: RepairCounts
    objections: ObjectionCounts
    deadlines: tuple[DeadlineCompliance, ...]
