from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from xinyi.scoring import service
from xinyi.scoring.schemas import BenefitsOut, CreditOut
from xinyi.web import db, deps, principal, public, requires

blp = Blueprint("scoring", __name__, url_prefix="/v1",
                description="Scores and the benefits they grant")


@blp.route("/benefits", methods=["GET"])
@public
@blp.response(200, BenefitsOut)
def benefits() -> dict[str, Any]:
    """Every benefit rule with its threshold (transparency: R4, R6)."""
    return {"items": service.benefit_rules(db())}


@blp.route("/me/credit", methods=["GET"])
@requires("citizen")
@blp.response(200, CreditOut)
def my_credit() -> service.CreditReport:
    """The citizen's score, tier, benefits and the contribution of every record."""
    return service.credit_report(db(), principal().id, now=deps().clock())
