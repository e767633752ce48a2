from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from xinyi.decisions import service
from xinyi.decisions.explain import ID_PATTERN, MAX_ID_LENGTH
from xinyi.decisions.schemas import (
    DecisionArgs,
    DecisionOut,
    QueueReviewOut,
    ReviewDecideIn,
    ReviewIn,
    ReviewOut,
    ReviewQueueArgs,
)
from xinyi.schemas import PageArgs, page_of, page_schema
from xinyi.web import db, deps, principal, requires

me_blp = Blueprint("me_decisions", __name__, url_prefix="/v1/me",
                   description="Automated decisions about the citizen and their human review")
# The decision id's form, stated in the document (the route itself takes any string and
# answers 422 `invalid_decision_id` for one of another form).
DECISION_ID = {"parameters": [{
    "in": "path", "name": "decision_id", "required": True,
    "description": "<kind>:<uuid>, or session_outcome:<uuid>:<step>",
    "schema": {"type": "string", "pattern": ID_PATTERN, "maxLength": MAX_ID_LENGTH}}]}
admin_blp = Blueprint("admin_reviews", __name__, url_prefix="/v1/admin",
                      description="Human reviews of automated decisions, for reviewers")


@me_blp.route("/decisions", methods=["GET"])
@requires("citizen")
@me_blp.arguments(DecisionArgs, location="query")
@me_blp.response(200, page_schema(DecisionOut))
def my_decisions(args: dict[str, Any]) -> dict[str, Any]:
    """Every automated decision about you, newest first: score and tier changes, the answers
    given to partners, what the system did to your benefit sessions and list entries, each
    with its rule and inputs."""
    items, total = service.my_decisions(db(), principal().id, kind=args.get("kind"),
                                        page=args["page"], page_size=args["page_size"])
    return page_of(items, total, args)


@me_blp.route("/decisions/<string:decision_id>", methods=["GET"])
@requires("citizen")
@me_blp.doc(**DECISION_ID)
@me_blp.response(200, DecisionOut)
def my_decision(decision_id: str) -> service.DecisionView:
    return service.my_decision(db(), principal().id, decision_id)


@me_blp.route("/decisions/<string:decision_id>/review", methods=["POST"])
@requires("citizen")
@me_blp.doc(**DECISION_ID)
@me_blp.arguments(ReviewIn)
@me_blp.response(201, ReviewOut)
def request_review(body: dict[str, Any], decision_id: str) -> service.ReviewView:
    """Ask for a human review of one of your decisions (one open per decision: 409
    `review_open`); a reviewer decides within 15 working days."""
    return service.request_review(db(), deps(), principal().id, decision_id,
                                  reason=body["reason"])


@me_blp.route("/reviews", methods=["GET"])
@requires("citizen")
@me_blp.arguments(PageArgs, location="query")
@me_blp.response(200, page_schema(ReviewOut))
def my_reviews(args: dict[str, Any]) -> dict[str, Any]:
    """Your reviews, newest first, with the outcome and its reason once decided."""
    items, total = service.my_reviews(db(), deps(), principal().id, page=args["page"],
                                      page_size=args["page_size"])
    return page_of(items, total, args)


@admin_blp.route("/reviews", methods=["GET"])
@requires("reviewer")
@admin_blp.arguments(ReviewQueueArgs, location="query")
@admin_blp.response(200, page_schema(QueueReviewOut))
def review_queue(args: dict[str, Any]) -> dict[str, Any]:
    """Reviews, open ones first by deadline (access-logged)."""
    items, total = service.queue(db(), deps(), principal(), status=args.get("status"),
                                 overdue=args.get("overdue"), page=args["page"],
                                 page_size=args["page_size"])
    return page_of(items, total, args)


@admin_blp.route("/reviews/<uuid:review_id>/decide", methods=["POST"])
@requires("reviewer")
@admin_blp.arguments(ReviewDecideIn)
@admin_blp.response(200, QueueReviewOut)
def decide_review(body: dict[str, Any], review_id: uuid.UUID) -> service.ReviewView:
    """Decide a review once (a second decision is 409 `review_decided`): confirmed or
    changed, with a reason the citizen reads."""
    return service.decide(db(), deps(), principal(), review_id, outcome=body["outcome"],
                          reason=body["reason"])
