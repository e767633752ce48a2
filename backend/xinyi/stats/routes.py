from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from xinyi.schemas import page_of, page_schema
from xinyi.stats import service
from xinyi.stats.schemas import (
    DISTRICT_CODE_PARAMETER,
    DistrictArgs,
    DistrictIn,
    DistrictOut,
    StatsArgs,
    StatsOut,
)
from xinyi.stats.views import DistrictView, Statistics
from xinyi.web import db, deps, principal, requires

blp = Blueprint("admin_stats", __name__, url_prefix="/v1/admin",
                description="Statistics for the credit office and the districts' populations")


@blp.route("/stats", methods=["GET"])
@requires("operator", "reviewer", "auditor")
@blp.arguments(StatsArgs, location="query")
@blp.response(200, StatsOut)
def stats(args: dict[str, Any]) -> Statistics:
    """Coverage, query, verification, benefit, default, repair, objection and deadline
    figures for the credit office (R13): counts only, never a person; cached for 5 minutes
    (`as_of` says when they were computed, `refresh=true` computes them now)."""
    return service.statistics(db(), deps(), refresh=args["refresh"])


@blp.route("/districts", methods=["GET"])
@requires("operator", "reviewer", "auditor")
@blp.arguments(DistrictArgs, location="query")
@blp.response(200, page_schema(DistrictOut))
def districts(args: dict[str, Any]) -> dict[str, Any]:
    """The districts whose resident population is set, by code."""
    items, total = service.districts(db(), page=args["page"], page_size=args["page_size"])
    return page_of(items, total, args)


@blp.route("/districts/<string:code>", methods=["PUT"], parameters=[DISTRICT_CODE_PARAMETER])
@requires("operator")
@blp.arguments(DistrictIn)
@blp.response(200, DistrictOut)
def set_district(body: dict[str, Any], code: str) -> DistrictView:
    """Set a district's name and resident population (常住人口), the denominator of its score
    coverage; `null` while not known. Logged with what it was before."""
    return service.set_district(db(), deps(), principal(), code, name=body["name"],
                                resident_population=body["resident_population"])
