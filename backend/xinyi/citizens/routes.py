from __future__ import annotations

from flask_smorest import Blueprint

from xinyi.auth.schemas import ProfileOut
from xinyi.citizens import service
from xinyi.web import db, deps, principal, requires

blp = Blueprint("me", __name__, url_prefix="/v1/me", description="The citizen's own data")


@blp.route("", methods=["GET"])
@requires("citizen")
@blp.response(200, ProfileOut)
def me() -> service.Profile:
    """The citizen's masked profile."""
    return service.profile(db(), deps(), principal().id)
