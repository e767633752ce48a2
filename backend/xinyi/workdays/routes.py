from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from xinyi.errors import NotFound
from xinyi.timeutil import china_today
from xinyi.web import db, deps, requires
from xinyi.workdays import service
from xinyi.workdays.schemas import YearIn, YearOut, YearsOut

blp = Blueprint("admin_calendar", __name__, url_prefix="/v1/admin",
                description="The official working-day calendar (法定工作日)")


@blp.route("/calendar", methods=["GET"])
@requires("operator", "reviewer", "auditor")
@blp.response(200, YearsOut)
def years() -> dict[str, Any]:
    """Which source each year around this one is counted from."""
    return {"items": service.known_years(db(), china_today(deps().clock()).year)}


@blp.route("/calendar/<int:year>", methods=["GET"])
@requires("operator", "reviewer", "auditor")
@blp.response(200, YearOut)
def year(year: int) -> service.YearView:
    if not 2000 <= year <= 2200:
        raise NotFound("No calendar for this year")
    return service.year_view(db(), year)


@blp.route("/calendar/<int:year>", methods=["PUT"])
@requires("operator")
@blp.arguments(YearIn)
@blp.response(200, YearOut)
def enter_year(body: dict[str, Any], year: int) -> service.YearView:
    """Enter a year the calendar package does not know yet, from the State Council's notice
    (409 `calendar_year_published` for a year it knows). Provisional deadlines are counted
    again by the worker, and staff alerted for each."""
    if not 2000 <= year <= 2200:
        raise NotFound("No calendar for this year")
    return service.enter_year(db(), year, holidays=body["holidays"],
                              workdays=body["workdays"], now=deps().clock())
