from __future__ import annotations

import uuid
from typing import Any

from flask import Response
from flask_smorest import Blueprint

from xinyi.repairs import hours, service
from xinyi.repairs.schemas import (
    DecideIn,
    RepairIn,
    RepairOut,
    RepairQueueArgs,
    ServiceHoursOut,
)
from xinyi.schemas import PageArgs, page_of, page_schema
from xinyi.web import db, deps, principal, requires

me_blp = Blueprint("me_repairs", __name__, url_prefix="/v1/me",
                   description="Credit repair (信用修复) and service hours")
admin_blp = Blueprint("admin_repairs", __name__, url_prefix="/v1/admin",
                      description="The repair queue and decisions (reviewers)")


@me_blp.route("/service-hours", methods=["GET"])
@requires("citizen")
@me_blp.response(200, ServiceHoursOut)
def service_hours() -> hours.ServiceHoursView:
    """Your service hours, what they count towards (the score within the yearly cap, the
    repair of each record) and what you need next."""
    return hours.service_hours(db(), deps(), principal().id)


@me_blp.route("/repairs", methods=["POST"])
@requires("citizen")
@me_blp.arguments(RepairIn)
@me_blp.response(201, RepairOut)
def apply(body: dict[str, Any]) -> service.RepairView:
    """Apply to repair one of your records. Judged at once against the catalogue rules: a
    refusal (`repair_not_eligible`) names everything missing; an accepted application is
    decided within 3 working days."""
    return service.apply(db(), deps(), principal().id, body)


@me_blp.route("/repairs", methods=["GET"])
@requires("citizen")
@me_blp.arguments(PageArgs, location="query")
@me_blp.response(200, page_schema(RepairOut))
def my_repairs(args: dict[str, Any]) -> dict[str, Any]:
    items, total = service.my_repairs(db(), deps(), principal().id, page=args["page"],
                                      page_size=args["page_size"])
    return page_of(items, total, args)


@me_blp.route("/repairs/<uuid:repair_id>", methods=["GET"])
@requires("citizen")
@me_blp.response(200, RepairOut)
def my_repair(repair_id: uuid.UUID) -> service.RepairView:
    return service.my_repair(db(), deps(), principal().id, repair_id)


@me_blp.route("/repairs/<uuid:repair_id>/decision.pdf", methods=["GET"])
@requires("citizen")
@me_blp.response(200, content_type="application/pdf")
def decision_pdf(repair_id: uuid.UUID) -> Response:
    """The written decision (信用修复决定书), once decided."""
    body = service.decision_pdf(db(), principal().id, repair_id)
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="repair-{repair_id}.pdf"',
        "Cache-Control": "no-store"})


@admin_blp.route("/repairs", methods=["GET"])
@requires("reviewer")
@admin_blp.arguments(RepairQueueArgs, location="query")
@admin_blp.response(200, page_schema(RepairOut))
def repair_queue(args: dict[str, Any]) -> dict[str, Any]:
    """The repair queue, pending first by deadline; `overdue=true` for those past it. Each
    citizen shown gets an entry in their access log."""
    items, total = service.queue(db(), deps(), principal(), status=args.get("status"),
                                 overdue=args.get("overdue"), page=args["page"],
                                 page_size=args["page_size"])
    return page_of(items, total, args)


@admin_blp.route("/repairs/<uuid:repair_id>", methods=["GET"])
@requires("reviewer")
@admin_blp.response(200, RepairOut)
def review(repair_id: uuid.UUID) -> service.RepairView:
    return service.review(db(), deps(), principal(), repair_id)


@admin_blp.route("/repairs/<uuid:repair_id>/decide", methods=["POST"])
@requires("reviewer")
@admin_blp.arguments(DecideIn)
@admin_blp.response(200, RepairOut)
def decide(body: dict[str, Any], repair_id: uuid.UUID) -> service.RepairView:
    """Decide once (a second decision is 409 `repair_decided`); reviewers only."""
    return service.decide(db(), deps(), principal(), repair_id, **body)
