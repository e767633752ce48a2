"""The citizen's profile, and registration (on the auth blueprint, so its URL and tag stay
``/v1/auth/register`` and ``auth``: importing this module adds the route, before the app
registers that blueprint)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from xinyi.auth.routes import blp as auth_blp
from xinyi.citizens import service
from xinyi.citizens.schemas import ProfileOut, RegisterIn
from xinyi.web import client_address, db, deps, principal, public, requires

blp = Blueprint("me", __name__, url_prefix="/v1/me", description="The citizen's own data")


@auth_blp.route("/register", methods=["POST"])
@public
@auth_blp.arguments(RegisterIn)
@auth_blp.response(201, ProfileOut)
def register(body: dict[str, Any]) -> service.Profile:
    """Register a citizen with real name and ID number (实名注册). Rate-limited per client
    address and per phone. A phone number already in use gets the same answer as a new
    account (its owner is told by SMS): registration never reveals whether a phone has an
    account. An ID number already registered is refused with 409 `id_number_taken`."""
    return service.register(db(), deps(), **body, client_address=client_address())


@blp.route("", methods=["GET"])
@requires("citizen")
@blp.response(200, ProfileOut)
def me() -> service.Profile:
    """The citizen's masked profile."""
    return service.profile(db(), deps(), principal().id)
