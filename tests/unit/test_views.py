"""The services' frozen views carry exactly the fields of the schema that dumps them: a field
missing from a view would silently vanish from the answer, an extra one would never show."""

from __future__ import annotations

import dataclasses

import pytest
from marshmallow import Schema

from xinyi.audit import schemas as audit_schemas
from xinyi.audit import service as audit_service
from xinyi.consents import schemas as consent_schemas
from xinyi.consents import views as consent_views
from xinyi.credentials import schemas as credential_schemas
from xinyi.credentials import tokens as credential_tokens
from xinyi.records import schemas as record_schemas
from xinyi.records import views as record_views
from xinyi.stats import schemas as stats_schemas
from xinyi.stats import views as stats_views

PAIRS = [
    (consent_views.PartnerView, consent_schemas.PartnerOut),
    (consent_views.CitizenRequestView, consent_schemas.CitizenConsentRequestOut),
    (consent_views.ConsentView, consent_schemas.ConsentOut),
    (consent_views.PartnerRequestView, consent_schemas.PartnerConsentRequestOut),
    (record_views.CitizenRecordView, record_schemas.CitizenRecordOut),
    (record_views.ListEntryView, record_schemas.ListEntryOut),
    (stats_views.DistrictView, stats_schemas.DistrictOut),
    (stats_views.RecordCount, stats_schemas.DomainCount),
    (stats_views.DayQueries, stats_schemas.DayCount),
    (stats_views.DayVerifications, stats_schemas.DayVerificationCount),
    (stats_views.DistrictCoverage, stats_schemas.DistrictCoverageOut),
    (stats_views.Coverage, stats_schemas.CoverageOut),
    (stats_views.BenefitUse, stats_schemas.BenefitUseOut),
    (stats_views.DefaultCounts, stats_schemas.DefaultsOut),
    (stats_views.RepairCounts, stats_schemas.RepairsOut),
    (stats_views.ObjectionCounts, stats_schemas.ObjectionsOut),
    (stats_views.DeadlineCompliance, stats_schemas.DeadlineOut),
    (stats_views.Statistics, stats_schemas.StatsOut),
    (audit_service.Actor, audit_schemas.ActorOut),
    (audit_service.Query, audit_schemas.QueryOut),
    (audit_service.ChainHead, audit_schemas.ChainHeadOut),
    (credential_tokens.VerifierConfiguration, credential_schemas.ConfigurationOut),
]


@pytest.mark.parametrize(("view", "schema"), PAIRS, ids=[v.__name__ for v, _ in PAIRS])
def test_view_has_the_fields_of_its_schema(view: type, schema: type[Schema]) -> None:
    assert dataclasses.is_dataclass(view)
    params = view.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    attributes = {f.attribute or name for name, f in schema().dump_fields.items()}
    assert {f.name for f in dataclasses.fields(view)} == attributes
