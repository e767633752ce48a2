"""``DELETE /v1/me``: closing the account. On the citizens' ``/v1/me`` blueprint (importing
this module adds the route, before the app registers that blueprint), so its tag stays ``me``."""

from __future__ import annotations

from typing import Any

from xinyi.citizens.routes import blp as me_blp
from xinyi.privacy import service
from xinyi.privacy.schemas import CloseAccountIn
from xinyi.web import db, deps, principal, requires


@me_blp.route("", methods=["DELETE"])
@requires("citizen")
@me_blp.arguments(CloseAccountIn)
@me_blp.response(204)
def close_account(body: dict[str, Any]) -> None:
    """Close your account (注销账户), after your password is checked again (a wrong one is 403
    `password_incorrect` and changes nothing; attempts are rate-limited). At once: every login
    ends (this token too: a second call is 401), every consent is revoked (each partner gets
    `consent.revoked`), unused credentials stop verifying, and your inbox is emptied. Your
    personal key is destroyed, so your name, phone and ID number can no longer be read from
    anything stored (crypto-shredding). Records from government sources stay, as the law
    requires, under the blind index of your ID number: registering again shows them again."""
    service.close_account(db(), deps(), principal().id, password=body["password"])
