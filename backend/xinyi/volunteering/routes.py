from __future__ import annotations

import uuid
from typing import Any

from flask import Response
from flask_smorest import Blueprint

from xinyi.schemas import PageArgs, page_of, page_schema
from xinyi.volunteering import service
from xinyi.volunteering.schemas import (
    MembershipsOut,
    RetractIn,
    ServiceRecordIn,
    ServiceRecordOut,
    VolunteerArgs,
    VolunteerIn,
    VolunteerOut,
)
from xinyi.web import db, deps, principal, requires

org_blp = Blueprint("org", __name__, url_prefix="/v1/org",
                    description="Volunteer organisations: volunteers and service hours")
me_blp = Blueprint("me_volunteering", __name__, url_prefix="/v1/me",
                   description="The organisations that registered the citizen as a volunteer")


@org_blp.route("/volunteers", methods=["POST"])
@requires("org")
@org_blp.arguments(VolunteerIn)
@org_blp.response(201, VolunteerOut)
@org_blp.alt_response(200, schema=VolunteerOut, description="Already registered")
def register(body: dict[str, Any]) -> tuple[service.VolunteerView, int]:
    """Register a volunteer by ID number and name (again after a removal: a new registration)."""
    view, created = service.register_volunteer(db(), deps(), principal(), **body)
    return view, 201 if created else 200


@org_blp.route("/volunteers", methods=["GET"])
@requires("org")
@org_blp.arguments(VolunteerArgs, location="query")
@org_blp.response(200, page_schema(VolunteerOut))
def volunteers(args: dict[str, Any]) -> dict[str, Any]:
    """Your volunteers (masked), newest first; `active=false` includes removed and left ones."""
    items, total = service.org_volunteers(db(), deps(), principal(),
                                          active_only=args["active"], page=args["page"],
                                          page_size=args["page_size"])
    return page_of(items, total, args)


@org_blp.route("/volunteers/<uuid:volunteer_id>", methods=["DELETE"])
@requires("org")
@org_blp.response(204)
def remove(volunteer_id: uuid.UUID) -> None:
    """Remove a volunteer: no more hours can be posted for them; those posted stay."""
    service.remove_volunteer(db(), deps(), principal(), volunteer_id)


@org_blp.route("/service-records", methods=["POST"])
@requires("org")
@org_blp.arguments(ServiceRecordIn)
@org_blp.response(201, ServiceRecordOut)
@org_blp.alt_response(200, schema=ServiceRecordOut,
                      description="The same post again: the record already made")
def post_hours(body: dict[str, Any]) -> tuple[service.ServiceRecordView, int]:
    """Post one activity's hours for one registered volunteer. Idempotent on
    (organisation, activity_ref, volunteer); a different body under that reference is 409.
    Refused, with the rule named: overlapping accepted service (any organisation), over 12
    hours in one China day, the future, over 90 days ago, a volunteer not registered."""
    view, created = service.post_service_record(db(), deps(), principal(), body)
    return view, 201 if created else 200


@org_blp.route("/service-records", methods=["GET"])
@requires("org")
@org_blp.arguments(PageArgs, location="query")
@org_blp.response(200, page_schema(ServiceRecordOut))
def service_records(args: dict[str, Any]) -> dict[str, Any]:
    """The service records you posted, newest first."""
    items, total = service.org_service_records(db(), principal(), page=args["page"],
                                               page_size=args["page_size"])
    return page_of(items, total, args)


@org_blp.route("/service-records/<uuid:record_id>/retract", methods=["POST"])
@requires("org")
@org_blp.arguments(RetractIn)
@org_blp.response(200, ServiceRecordOut)
def retract(body: dict[str, Any], record_id: uuid.UUID) -> service.ServiceRecordView:
    """Retract a service record within 7 days of posting it, with a reason."""
    return service.retract_service_record(db(), deps(), principal(), record_id,
                                          body["reason"])


@me_blp.route("/volunteer-organisations", methods=["GET"])
@requires("citizen")
@me_blp.response(200, MembershipsOut)
def my_orgs() -> dict[str, Any]:
    """The organisations that have you registered as their volunteer."""
    return {"items": service.citizen_orgs(db(), principal().id)}


@me_blp.route("/volunteer-organisations/<uuid:org_id>", methods=["DELETE"])
@requires("citizen")
@me_blp.response(204)
def leave(org_id: uuid.UUID) -> Response | None:
    """Leave an organisation: it can post no more hours for you (those posted stay)."""
    service.leave_org(db(), deps(), principal().id, org_id)
    return None
