from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from xinyi.alerts import service
from xinyi.alerts.models import StaffAlert
from xinyi.alerts.schemas import AlertArgs, AlertOut
from xinyi.schemas import page_of, page_schema
from xinyi.web import db, deps, requires

blp = Blueprint("admin_alerts", __name__, url_prefix="/v1/admin",
                description="Alerts for the credit office (overdue cases, recomputed deadlines)")


@blp.route("/alerts", methods=["GET"])
@requires("operator", "reviewer")
@blp.arguments(AlertArgs, location="query")
@blp.response(200, page_schema(AlertOut))
def alerts(args: dict[str, Any]) -> dict[str, Any]:
    items, total = service.alerts(db(), open_only=args["open"], page=args["page"],
                                  page_size=args["page_size"])
    return page_of(items, total, args)


@blp.route("/alerts/<uuid:alert_id>/acknowledge", methods=["POST"])
@requires("operator", "reviewer")
@blp.response(200, AlertOut)
def acknowledge(alert_id: uuid.UUID) -> StaffAlert:
    return service.acknowledge(db(), alert_id, deps().clock())
