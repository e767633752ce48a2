"""Admin API for API-key principals; one set of routes serves partners, orgs and providers."""

from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from xinyi.admin import service
from xinyi.admin.schemas import (
    ClientCreate,
    ClientCreatedOut,
    ClientOut,
    DisableIn,
    IssuedKeyOut,
    PartnerCreate,
)
from xinyi.schemas import PageArgs, page_of, page_schema
from xinyi.web import db, deps, requires

blp = Blueprint("admin", __name__, url_prefix="/v1/admin",
                description="Credit-office administration (operators)")

COLLECTIONS = {"partners": "partner", "orgs": "org", "providers": "provider"}


def _register(collection: str, client_type: str) -> None:
    name = client_type

    @blp.route(f"/{collection}", methods=["POST"], endpoint=f"create_{name}")
    @requires("operator")
    @blp.doc(summary=f"Create a {client_type}; the response carries its one-time API key")
    @blp.arguments(PartnerCreate if client_type == "partner" else ClientCreate)
    @blp.response(201, ClientCreatedOut)
    def create(body: dict[str, Any]) -> service.ClientView:
        return service.create_client(db(), deps(), client_type=client_type,
                                     name=body["name"], kind=body.get("kind"))

    @blp.route(f"/{collection}", methods=["GET"], endpoint=f"list_{name}s")
    @requires("operator", "auditor")
    @blp.doc(summary=f"List {collection}")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(ClientOut))
    def list_(args: dict[str, int]) -> dict[str, Any]:
        items, total = service.list_clients(db(), client_type, **args)
        return page_of(items, total, args)

    @blp.route(f"/{collection}/<uuid:client_id>", methods=["GET"], endpoint=f"get_{name}")
    @requires("operator", "auditor")
    @blp.doc(summary=f"One {client_type} with its keys")
    @blp.response(200, ClientOut)
    def get(client_id: uuid.UUID) -> service.ClientView:
        return service.get_client(db(), client_type, client_id)

    @blp.route(f"/{collection}/<uuid:client_id>/keys", methods=["POST"],
               endpoint=f"add_{name}_key")
    @requires("operator")
    @blp.response(201, IssuedKeyOut)
    def add_key(client_id: uuid.UUID) -> service.IssuedKey:
        """Add a second live key for rotation; at most two live keys at once."""
        return service.add_key(db(), deps(), client_type, client_id)

    @blp.route(f"/{collection}/<uuid:client_id>/keys/<string:key_id>", methods=["DELETE"],
               endpoint=f"revoke_{name}_key")
    @requires("operator")
    @blp.doc(summary=f"Revoke one of a {client_type}'s keys")
    @blp.response(204)
    def revoke_key(client_id: uuid.UUID, key_id: str) -> None:
        service.revoke_key(db(), deps(), client_type, client_id, key_id)

    @blp.route(f"/{collection}/<uuid:client_id>/status", methods=["PUT"],
               endpoint=f"set_{name}_status")
    @requires("operator")
    @blp.arguments(DisableIn)
    @blp.response(200, ClientOut)
    def set_status(body: dict[str, bool], client_id: uuid.UUID) -> service.ClientView:
        """Disable or re-enable; a disabled principal's keys stop working at once."""
        return service.set_client_disabled(db(), deps(), client_type, client_id,
                                           body["disabled"])



for _collection, _type in COLLECTIONS.items():
    _register(_collection, _type)


@blp.route("/accounts/<uuid:account_id>/status", methods=["PUT"])
@requires("operator")
@blp.arguments(DisableIn)
@blp.response(204)
def set_account_status(body: dict[str, bool], account_id: uuid.UUID) -> None:
    """Disable or re-enable a citizen or staff account; its logins end at once."""
    service.set_account_disabled(db(), deps(), account_id, body["disabled"])
