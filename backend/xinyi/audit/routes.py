from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from xinyi.audit import sealer, service
from xinyi.audit.schemas import (
    ConsistencyArgs,
    ConsistencyOut,
    EntryProofOut,
    QueryPage,
    SignedTreeHeadOut,
    TreeHeadPage,
)
from xinyi.citizens.service import citizen_bidx
from xinyi.schemas import PageArgs, page_of
from xinyi.web import db, principal, public, requires

me_blp = Blueprint("me_queries", __name__, url_prefix="/v1/me",
                   description="Who read the citizen's data (查询记录)")
transparency_blp = Blueprint("transparency", __name__, url_prefix="/v1/transparency",
                             description="The access log's signed Merkle tree heads and "
                                         "proofs (public, no personal data)")


@me_blp.route("/queries", methods=["GET"])
@requires("citizen")
@me_blp.arguments(PageArgs, location="query")
@me_blp.response(200, QueryPage)
def my_queries(args: dict[str, Any]) -> dict[str, Any]:
    """Every read of your data by someone else (who, when, scope, consent, purpose), newest
    first. An entry is `pending` for the seconds until the sealer gives it its place; then
    it carries its `seq`, `hash` and `prev_hash` in your chain, and `chain` is the head
    (last `seq` and `hash`): docs/access-log.md shows how to recompute the chain from these
    answers alone, and `/v1/me/queries/{id}/proof` proves an entry is in the signed log."""
    session = db()
    entries, total, head = service.entries_for(
        session, citizen_bidx(session, principal().id), page=args["page"],
        page_size=args["page_size"])
    return {**page_of([service.describe(e, s) for e, s in entries], total, args),
            "chain": head}


@me_blp.route("/queries/<uuid:entry_id>/proof", methods=["GET"])
@requires("citizen")
@me_blp.response(200, EntryProofOut)
def my_query_proof(entry_id: uuid.UUID) -> dict[str, Any]:
    """The inclusion proof (RFC 9162 §2.1.3) of one entry of your log against the latest
    signed tree head; 409 `entry_pending` (with Retry-After) until a head covers it."""
    session = db()
    return sealer.entry_proof(session, citizen_bidx(session, principal().id), entry_id)


@transparency_blp.route("/tree-head", methods=["GET"])
@public
@transparency_blp.response(200, SignedTreeHeadOut)
def tree_head() -> dict[str, Any]:
    """The latest signed tree head of the access log, with the audit key that signed it."""
    return sealer.signed_head(db())


@transparency_blp.route("/tree-heads", methods=["GET"])
@public
@transparency_blp.arguments(PageArgs, location="query")
@transparency_blp.response(200, TreeHeadPage)
def tree_heads(args: dict[str, Any]) -> dict[str, Any]:
    """Every signed tree head, newest first, so that anyone can keep copies."""
    heads, total = sealer.heads_page(db(), page=args["page"], page_size=args["page_size"])
    return page_of([sealer.head_json(h) for h in heads], total, args)


@transparency_blp.route("/consistency", methods=["GET"])
@public
@transparency_blp.arguments(ConsistencyArgs, location="query")
@transparency_blp.response(200, ConsistencyOut)
def consistency(args: dict[str, Any]) -> dict[str, Any]:
    """The consistency proof (RFC 9162 §2.1.4) between two signed tree sizes: the tree of
    size `to` extends the one of size `from` unchanged."""
    return sealer.consistency(db(), args["from_"], args["to"])
