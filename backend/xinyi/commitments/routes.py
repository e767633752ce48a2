from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from xinyi.commitments import service
from xinyi.commitments.schemas import (
    CommitmentBreachIn,
    CommitmentIn,
    CommitmentOut,
    CommitmentTextIn,
    CommitmentTextOut,
    CommitmentTextsOut,
    ProviderCommitmentsArgs,
    ProviderCommitmentsOut,
)
from xinyi.schemas import PageArgs, page_of, page_schema
from xinyi.web import db, deps, principal, public, requires

texts_blp = Blueprint("commitment_texts", __name__, url_prefix="/v1",
                      description="Published credit commitment texts (信用承诺)")
me_blp = Blueprint("me_commitments", __name__, url_prefix="/v1/me",
                   description="Your credit commitments (信用承诺)")
provider_blp = Blueprint("provider_commitments", __name__, url_prefix="/v1/provider",
                         description="Commitments of people a provider holds records for")
admin_blp = Blueprint("admin_commitments", __name__, url_prefix="/v1/admin",
                      description="Publishing commitment texts (operators)")


@texts_blp.route("/commitment-texts", methods=["GET"])
@public
@texts_blp.response(200, CommitmentTextsOut)
def texts() -> dict[str, Any]:
    """The current version of each commitment text; older versions stay valid for the
    commitments given under them."""
    return {"items": service.current_texts(db())}


@admin_blp.route("/commitment-texts", methods=["POST"])
@requires("operator")
@admin_blp.arguments(CommitmentTextIn)
@admin_blp.response(201, CommitmentTextOut)
def publish(body: dict[str, Any]) -> service.TextView:
    """Publish a new version of a purpose's text (version 1 for a new purpose). The
    catalogue item a breach becomes must exist and be negative."""
    return service.publish_text(db(), deps(), principal(), **body)


@me_blp.route("/commitments", methods=["POST"])
@requires("citizen")
@me_blp.arguments(CommitmentIn)
@me_blp.response(201, CommitmentOut)
def give(body: dict[str, Any]) -> service.CommitmentView:
    """Give a signed commitment to a published text (purpose and version; an unknown one
    is 422 `unknown_commitment_text` naming the field)."""
    return service.give(db(), deps(), principal().id, **body)


@me_blp.route("/commitments", methods=["GET"])
@requires("citizen")
@me_blp.arguments(PageArgs, location="query")
@me_blp.response(200, page_schema(CommitmentOut))
def mine(args: dict[str, Any]) -> dict[str, Any]:
    """Your commitments, newest first, with their status and signature."""
    items, total = service.my_commitments(db(), principal().id, page=args["page"],
                                          page_size=args["page_size"])
    return page_of(items, total, args)


@me_blp.route("/commitments/<uuid:commitment_id>/revoke", methods=["POST"])
@requires("citizen")
@me_blp.response(200, CommitmentOut)
def revoke(commitment_id: uuid.UUID) -> service.CommitmentView:
    """Revoke a commitment whose text allows it (else 409 `commitment_not_revocable`);
    one no longer active is 409 `commitment_not_active`."""
    return service.revoke(db(), deps(), principal().id, commitment_id)


@provider_blp.route("/commitments", methods=["GET"])
@requires("provider")
@provider_blp.arguments(ProviderCommitmentsArgs, location="query")
@provider_blp.response(200, ProviderCommitmentsOut)
def lookup(args: dict[str, Any]) -> dict[str, Any]:
    """The commitments of a person you hold records for; anyone else is 404, like an
    unknown person. Each answer is an entry in the person's access log."""
    return {"items": service.provider_commitments(db(), deps(), principal(),
                                                  args["id_number"])}


@provider_blp.route("/commitments/<uuid:commitment_id>/breach", methods=["POST"])
@requires("provider")
@provider_blp.arguments(CommitmentBreachIn)
@provider_blp.response(200, CommitmentOut)
def breach(body: dict[str, Any], commitment_id: uuid.UUID) -> service.CommitmentView:
    """Report that the commitment was broken: the citizen is notified, and after the
    grace it becomes a record under the item its text names (objectionable like any
    record). Once per commitment (409 `commitment_already_breached`); a revoked one is 409
    `commitment_revoked`."""
    return service.report_breach(db(), deps(), principal(), commitment_id, **body)
