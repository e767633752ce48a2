from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from xinyi.consents import directory, service
from xinyi.consents.schemas import (
    CitizenConsentRequestOut,
    ConsentGrantIn,
    ConsentOut,
    ConsentRequestIn,
    ConsentsArgs,
    DirectoryPartnerOut,
    PartnerConsentRequestOut,
    ReportArgs,
    ReportOut,
    WithdrawalOut,
)
from xinyi.consents.views import (
    CitizenRequestView,
    ConsentView,
    PartnerRequestView,
    ReportView,
    Withdrawal,
)
from xinyi.schemas import PageArgs, page_of, page_schema
from xinyi.web import db, deps, principal, public, requires

partner_blp = Blueprint("partner_consents", __name__, url_prefix="/v1/partner",
                        description="Consent requests and consented reports (授权查询)")
me_blp = Blueprint("me_consents", __name__, url_prefix="/v1/me",
                   description="The citizen's consents: requests to decide, grants, revocations")
directory_blp = Blueprint("partner_directory", __name__, url_prefix="/v1",
                          description="The public partner directory (合作机构名录)")


@partner_blp.route("/consent-requests", methods=["POST"])
@requires("partner")
@partner_blp.arguments(ConsentRequestIn)
@partner_blp.response(201, PartnerConsentRequestOut)
def request_consent(body: dict[str, Any]) -> PartnerRequestView:
    """Ask a citizen you verified (by your pseudonym) for consent; lapses after 7 days."""
    return service.request_consent(db(), deps(), principal(), **body)


@partner_blp.route("/consent-requests/<uuid:request_id>", methods=["GET"])
@requires("partner")
@partner_blp.response(200, PartnerConsentRequestOut)
def get_consent_request(request_id: uuid.UUID) -> PartnerRequestView:
    """One of your consent requests, with its decision."""
    return service.partner_request(db(), deps(), principal(), request_id)


@partner_blp.route("/reports/<string:subject>", methods=["GET"])
@requires("partner")
@partner_blp.arguments(ReportArgs, location="query")
@partner_blp.response(200, ReportOut)
def report(args: dict[str, Any], subject: str) -> ReportView:
    """The citizen's report as far as your live consent allows; every read is registered in
    the citizen's query log."""
    return service.report(db(), deps(), principal(), subject, **args)


@me_blp.route("/consent-requests", methods=["GET"])
@requires("citizen")
@me_blp.arguments(PageArgs, location="query")
@me_blp.response(200, page_schema(CitizenConsentRequestOut))
def pending_requests(args: dict[str, Any]) -> dict[str, Any]:
    """Requests from partners waiting for your decision, newest first."""
    items, total = service.pending_requests(db(), deps(), principal().id, **args)
    return page_of(items, total, args)


@me_blp.route("/consent-requests/<uuid:request_id>/approve", methods=["POST"])
@requires("citizen")
@me_blp.response(201, ConsentOut)
def approve_request(request_id: uuid.UUID) -> ConsentView:
    """Approve a request: a consent for its scope, purpose and duration."""
    return service.approve_request(db(), deps(), principal().id, request_id)


@me_blp.route("/consent-requests/<uuid:request_id>/deny", methods=["POST"])
@requires("citizen")
@me_blp.response(200, CitizenConsentRequestOut)
def deny_request(request_id: uuid.UUID) -> CitizenRequestView:
    """Deny a request."""
    return service.deny_request(db(), deps(), principal().id, request_id)


@me_blp.route("/consents", methods=["GET"])
@requires("citizen")
@me_blp.arguments(ConsentsArgs, location="query")
@me_blp.response(200, page_schema(ConsentOut))
def my_consents(args: dict[str, Any]) -> dict[str, Any]:
    """Your consents, live and past, newest first."""
    items, total = service.citizen_consents(db(), deps(), principal().id, **args)
    return page_of(items, total, args)


@me_blp.route("/consents", methods=["POST"])
@requires("citizen")
@me_blp.arguments(ConsentGrantIn)
@me_blp.response(201, ConsentOut)
def grant(body: dict[str, Any]) -> ConsentView:
    """Authorise a partner directly, without a request from it."""
    return service.grant(db(), deps(), principal().id, **body)


@me_blp.route("/consents/<uuid:consent_id>/revoke", methods=["POST"])
@requires("citizen")
@me_blp.response(200, ConsentOut)
def revoke(consent_id: uuid.UUID) -> ConsentView:
    """Revoke a consent at once: the partner's next read is refused."""
    return service.revoke(db(), deps(), principal().id, consent_id)


@me_blp.route("/consents:revoke-all", methods=["POST"])
@requires("citizen")
@me_blp.response(200, WithdrawalOut)
def revoke_all() -> Withdrawal:
    """Revoke every live consent at once (全部撤回): each partner's next read is refused, each
    gets a `consent.revoked` event, and requests still pending are denied. Answers how many
    consents were revoked (0 when none was live: asking twice is harmless)."""
    return service.revoke_all(db(), deps(), principal().id)


@directory_blp.route("/partners", methods=["GET"])
@public
@directory_blp.arguments(PageArgs, location="query")
@directory_blp.response(200, page_schema(DirectoryPartnerOut))
def partners(args: dict[str, Any]) -> dict[str, Any]:
    """Active partners by name, with the benefits they offer and the consent scopes they may
    ask for: choose one here to grant a consent (`POST /v1/me/consents`)."""
    items, total = directory.partner_directory(db(), **args)
    return page_of(items, total, args)
