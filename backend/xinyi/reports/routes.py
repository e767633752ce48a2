from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from xinyi.reports import service
from xinyi.reports.schemas import (
    DishonestyReportIn,
    DishonestyReportOut,
    ForwardedReportOut,
    ReportDecisionIn,
    ReportQueueArgs,
    ReportTriageOut,
)
from xinyi.schemas import PageArgs, page_of, page_schema
from xinyi.web import db, deps, principal, requires

me_blp = Blueprint("me_reports", __name__, url_prefix="/v1/me",
                   description="Reports of dishonest behaviour (有奖举报) you filed")
admin_blp = Blueprint("admin_reports", __name__, url_prefix="/v1/admin",
                      description="Triage of reports of dishonest behaviour (reviewers)")
provider_blp = Blueprint("provider_reports", __name__, url_prefix="/v1/provider",
                         description="Reports forwarded to a data provider")


@me_blp.route("/reports", methods=["POST"])
@requires("citizen")
@me_blp.arguments(DishonestyReportIn)
@me_blp.response(201, DishonestyReportOut)
def file_report(body: dict[str, Any]) -> service.ReportView:
    """Report dishonest behaviour of a person (by ID number) or an organisation. Who you
    are is shown to the credit office's reviewers only (masked), never to the reported
    party or a provider. Rate-limited per citizen (429)."""
    return service.file_report(db(), deps(), principal().id, **body)


@me_blp.route("/reports", methods=["GET"])
@requires("citizen")
@me_blp.arguments(PageArgs, location="query")
@me_blp.response(200, page_schema(DishonestyReportOut))
def my_reports(args: dict[str, Any]) -> dict[str, Any]:
    """The reports you filed, with their status and outcome."""
    items, total = service.my_reports(db(), deps(), principal().id, page=args["page"],
                                      page_size=args["page_size"])
    return page_of(items, total, args)


@admin_blp.route("/reports", methods=["GET"])
@requires("reviewer")
@admin_blp.arguments(ReportQueueArgs, location="query")
@admin_blp.response(200, page_schema(ReportTriageOut))
def triage_queue(args: dict[str, Any]) -> dict[str, Any]:
    """The report queue, pending first. Each reporter shown (masked) gets an entry in their
    access log."""
    items, total = service.queue(db(), deps(), principal(), status=args.get("status"),
                                 page=args["page"], page_size=args["page_size"])
    return page_of(items, total, args)


@admin_blp.route("/reports/<uuid:report_id>/decide", methods=["POST"])
@requires("reviewer")
@admin_blp.arguments(ReportDecisionIn)
@admin_blp.response(200, ReportTriageOut)
def decide(body: dict[str, Any], report_id: uuid.UUID) -> service.TriageView:
    """Decide once (409 `report_decided` after): `forwarded` (with `provider_id`),
    `rejected`, or `rewarded` (with `reward_fen`)."""
    return service.decide(db(), deps(), principal(), report_id, **body)


@provider_blp.route("/reports", methods=["GET"])
@requires("provider")
@provider_blp.arguments(PageArgs, location="query")
@provider_blp.response(200, page_schema(ForwardedReportOut))
def forwarded(args: dict[str, Any]) -> dict[str, Any]:
    """Reports the credit office forwarded to you, without anything about the reporter."""
    items, total = service.forwarded(db(), deps(), principal(), page=args["page"],
                                     page_size=args["page_size"])
    return page_of(items, total, args)
