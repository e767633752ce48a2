"""Login, token rotation and logout. ``POST /v1/auth/register`` is on this blueprint too but
is defined by the citizens domain (``xinyi.citizens.routes``), which depends on auth, not the
other way round."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from xinyi.auth import service
from xinyi.auth.schemas import LoginIn, RefreshIn, TokenPairOut
from xinyi.web import client_address, db, deps, principal, public, requires

blp = Blueprint("auth", __name__, url_prefix="/v1/auth", description="Citizen and staff login")


@blp.route("/login", methods=["POST"])
@public
@blp.arguments(LoginIn)
@blp.response(200, TokenPairOut)
def login(body: dict[str, Any]) -> service.TokenPair:
    """Log in a citizen or staff member; rate-limited per phone and per client address."""
    return service.login(db(), deps(), client_address=client_address(), **body)


@blp.route("/refresh", methods=["POST"])
@public
@blp.arguments(RefreshIn)
@blp.response(200, TokenPairOut)
def refresh(body: dict[str, Any]) -> service.TokenPair:
    """Rotate a refresh token; presenting a used one revokes the whole login."""
    return service.refresh(db(), deps(), refresh_token=body["refresh_token"])


@blp.route("/logout", methods=["POST"])
@requires("citizen", "operator", "reviewer", "auditor")
@blp.response(204)
def logout() -> None:
    """End this login: its access and refresh tokens stop working at once."""
    service.logout(db(), deps(), principal())
