from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from xinyi.disputes import service
from xinyi.disputes.schemas import DisputeIn, DisputeOut, DisputeQueueArgs, ResolveIn
from xinyi.schemas import PageArgs, page_of, page_schema
from xinyi.web import db, deps, principal, requires

me_blp = Blueprint("me_disputes", __name__, url_prefix="/v1/me",
                   description="Objections (异议) to the citizen's records")
provider_blp = Blueprint("provider_disputes", __name__, url_prefix="/v1/provider",
                         description="Objections to the provider's records")
admin_blp = Blueprint("admin_disputes", __name__, url_prefix="/v1/admin",
                      description="Objections, for reviewers")


@me_blp.route("/disputes", methods=["POST"])
@requires("citizen")
@me_blp.arguments(DisputeIn)
@me_blp.response(201, DisputeOut)
def file_dispute(body: dict[str, Any]) -> service.DisputeView:
    """Object to one of your records; one open objection per record (409 `dispute_open`).
    The record shows as under objection until it is resolved (15 working days)."""
    return service.file(db(), deps(), principal().id, body)


@me_blp.route("/disputes", methods=["GET"])
@requires("citizen")
@me_blp.arguments(PageArgs, location="query")
@me_blp.response(200, page_schema(DisputeOut))
def my_disputes(args: dict[str, Any]) -> dict[str, Any]:
    items, total = service.my_disputes(db(), deps(), principal().id, page=args["page"],
                                       page_size=args["page_size"])
    return page_of(items, total, args)


@me_blp.route("/disputes/<uuid:dispute_id>", methods=["GET"])
@requires("citizen")
@me_blp.response(200, DisputeOut)
def my_dispute(dispute_id: uuid.UUID) -> service.DisputeView:
    return service.my_dispute(db(), deps(), principal().id, dispute_id)


def _queue(args: dict[str, Any]) -> dict[str, Any]:
    items, total = service.queue(db(), deps(), principal(), status=args.get("status"),
                                 page=args["page"], page_size=args["page_size"])
    return page_of(items, total, args)


def _resolve(body: dict[str, Any], dispute_id: uuid.UUID) -> service.DisputeView:
    return service.resolve(db(), deps(), principal(), dispute_id, outcome=body["outcome"],
                           reason=body["reason"], correction=body.get("correction"))


@provider_blp.route("/disputes", methods=["GET"])
@requires("provider")
@provider_blp.arguments(DisputeQueueArgs, location="query")
@provider_blp.response(200, page_schema(DisputeOut))
def provider_queue(args: dict[str, Any]) -> dict[str, Any]:
    """Objections to your records, open first by deadline (access-logged)."""
    return _queue(args)


@provider_blp.route("/disputes/<uuid:dispute_id>/resolve", methods=["POST"])
@requires("provider")
@provider_blp.arguments(ResolveIn)
@provider_blp.response(200, DisputeOut)
def provider_resolve(body: dict[str, Any], dispute_id: uuid.UUID) -> service.DisputeView:
    """Resolve an objection to one of your records: corrected, deleted or upheld, with a
    reason (a second resolution is 409 `dispute_resolved`)."""
    return _resolve(body, dispute_id)


@admin_blp.route("/disputes", methods=["GET"])
@requires("reviewer")
@admin_blp.arguments(DisputeQueueArgs, location="query")
@admin_blp.response(200, page_schema(DisputeOut))
def admin_queue(args: dict[str, Any]) -> dict[str, Any]:
    """Every objection, open first by deadline (access-logged)."""
    return _queue(args)


@admin_blp.route("/disputes/<uuid:dispute_id>/resolve", methods=["POST"])
@requires("reviewer")
@admin_blp.arguments(ResolveIn)
@admin_blp.response(200, DisputeOut)
def admin_resolve(body: dict[str, Any], dispute_id: uuid.UUID) -> service.DisputeView:
    """Resolve any objection: corrected, deleted or upheld, with a reason."""
    return _resolve(body, dispute_id)
