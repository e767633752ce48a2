from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from xinyi.audit import service
from xinyi.audit.schemas import QueryPage
from xinyi.citizens.service import citizen_bidx
from xinyi.schemas import PageArgs, page_of
from xinyi.web import db, principal, requires

me_blp = Blueprint("me_queries", __name__, url_prefix="/v1/me",
                   description="Who read the citizen's data (查询记录)")


@me_blp.route("/queries", methods=["GET"])
@requires("citizen")
@me_blp.arguments(PageArgs, location="query")
@me_blp.response(200, QueryPage)
def my_queries(args: dict[str, Any]) -> dict[str, Any]:
    """Every read of your data by someone else (who, when, scope, consent, purpose), newest
    first; the entries are hash-chained so that none can be altered or dropped unnoticed.
    Each entry carries its `hash` and `prev_hash`, and `chain` the head (last `seq` and
    `hash`): docs/access-log.md shows how to recompute the chain from these answers alone."""
    session = db()
    entries, total, head = service.entries_for(
        session, citizen_bidx(session, principal().id), page=args["page"],
        page_size=args["page_size"])
    return {**page_of([service.describe(e) for e in entries], total, args), "chain": head}
