"""Benefit sessions over HTTP: partners open and close them, citizens see theirs, staff edit
the rules (the logic is in :mod:`xinyi.benefits.service` and :mod:`xinyi.benefits.terms`)."""

from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from xinyi.benefits import service, terms
from xinyi.benefits.schemas import (
    CitizenSessionArgs,
    CitizenSessionOut,
    CloseIn,
    ExtendIn,
    OpenIn,
    RuleOut,
    RulePatchIn,
    RulesOut,
    SessionOut,
)
from xinyi.credentials.schemas import IdempotencyHeaders
from xinyi.schemas import page_of, page_schema
from xinyi.web import db, deps, principal, requires

partner_blp = Blueprint("benefit_sessions", __name__,
                        url_prefix="/v1/partner/benefit-sessions",
                        description="Deposit-free benefit sessions (信用免押)")
me_blp = Blueprint("me_benefit_sessions", __name__, url_prefix="/v1/me/benefit-sessions",
                   description="The citizen's benefit sessions and what happens next")
admin_blp = Blueprint("admin_benefit_rules", __name__, url_prefix="/v1/admin/benefit-rules",
                      description="Staff edit the benefit rules and session terms")


def _key(headers: dict[str, Any]) -> str | None:
    key: str | None = headers.get("idempotency_key")
    return key


@partner_blp.route("", methods=["POST"])
@requires("partner")
@partner_blp.arguments(IdempotencyHeaders, location="headers")
@partner_blp.arguments(OpenIn)
@partner_blp.response(201, SessionOut)
def open_session(headers: dict[str, Any], body: dict[str, Any]) -> service.SessionView:
    """Open a session on your `eligible` verification (once, within 10 minutes). Never a
    refusal for a limit or the citizen's cap: the amount is split into `waived_fen` and
    `charge_normally_fen`."""
    return service.open_session(db(), deps(), principal(), idempotency_key=_key(headers),
                                verification_id=body["verification_id"],
                                amount_fen=body["amount_fen"], due_at=body["due_at"],
                                reference=body["reference"])


@partner_blp.route("/<uuid:session_id>", methods=["GET"])
@requires("partner")
@partner_blp.response(200, SessionOut)
def get_session(session_id: uuid.UUID) -> service.SessionView:
    """One of your sessions (another partner's is a 404)."""
    return service.get_session(db(), deps(), principal(), session_id)


@partner_blp.route("/<uuid:session_id>/close", methods=["POST"])
@requires("partner")
@partner_blp.arguments(IdempotencyHeaders, location="headers")
@partner_blp.arguments(CloseIn)
@partner_blp.response(200, SessionOut)
def close_session(headers: dict[str, Any], body: dict[str, Any],
                  session_id: uuid.UUID) -> service.SessionView:
    """Close an open or overdue session: `fulfilled` (nothing owed, even if late: no record)
    or `defaulted` (owed ≥ 1 fen; grace starts and the citizen is notified). Twice: 409."""
    return service.close_session(db(), deps(), principal(), session_id,
                                 outcome=body["outcome"],
                                 amount_owed_fen=body["amount_owed_fen"],
                                 idempotency_key=_key(headers))


@partner_blp.route("/<uuid:session_id>/extend", methods=["POST"])
@requires("partner")
@partner_blp.arguments(IdempotencyHeaders, location="headers")
@partner_blp.arguments(ExtendIn)
@partner_blp.response(200, SessionOut)
def extend_session(headers: dict[str, Any], body: dict[str, Any],
                   session_id: uuid.UUID) -> service.SessionView:
    """Move an open session's due date, once, at most 30 days past the original."""
    return service.extend_session(db(), deps(), principal(), session_id,
                                  due_at=body["due_at"], idempotency_key=_key(headers))


@partner_blp.route("/<uuid:session_id>/cancel", methods=["POST"])
@requires("partner")
@partner_blp.arguments(IdempotencyHeaders, location="headers")
@partner_blp.response(200, SessionOut)
def cancel_session(headers: dict[str, Any], session_id: uuid.UUID) -> service.SessionView:
    """Cancel an open session within 15 minutes of opening (nothing owed)."""
    return service.cancel_session(db(), deps(), principal(), session_id,
                                  idempotency_key=_key(headers))


@partner_blp.route("/<uuid:session_id>/settle", methods=["POST"])
@requires("partner")
@partner_blp.arguments(IdempotencyHeaders, location="headers")
@partner_blp.response(200, SessionOut)
def settle_session(headers: dict[str, Any], session_id: uuid.UUID) -> service.SessionView:
    """The citizen paid a defaulted session during grace: no record, ever."""
    return service.settle_session(db(), deps(), principal(), session_id,
                                  idempotency_key=_key(headers))


@me_blp.route("", methods=["GET"])
@requires("citizen")
@me_blp.arguments(CitizenSessionArgs, location="query")
@me_blp.response(200, page_schema(CitizenSessionOut))
def my_sessions(args: dict[str, Any]) -> dict[str, Any]:
    """Your open and past sessions, newest first: partner, amounts, due date, state, and
    what happens next and when."""
    items, total = service.citizen_sessions(db(), deps(), principal().id, page=args["page"],
                                            page_size=args["page_size"])
    return page_of(items, total, args)


@admin_blp.route("", methods=["GET"])
@requires("operator", "auditor")
@admin_blp.response(200, RulesOut)
def list_rules() -> dict[str, Any]:
    """Every benefit rule with its session terms (grace days, exposure cap per tier)."""
    return {"items": terms.list_rules(db())}


@admin_blp.route("/<string:code>", methods=["PATCH"])
@requires("operator")
@admin_blp.arguments(RulePatchIn)
@admin_blp.response(200, RuleOut)
def patch_rule(body: dict[str, Any], code: str) -> terms.RuleView:
    """Change a rule's threshold, limits, exposure caps or grace days (0 allowed); the
    change is logged with what it was before."""
    return terms.update_rule(db(), deps(), principal(), code, body)
