"""Admin API for API-key principals; one set of routes serves partners, orgs and providers.

The logic lives with the models it changes, in :mod:`xinyi.auth.accounts`."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any, NamedTuple

from flask_smorest import Blueprint
from marshmallow import Schema

from xinyi.admin.schemas import (
    CatalogueGrantIn,
    ClientCreate,
    ClientCreatedOut,
    ClientOut,
    DisableIn,
    IssuedKeyOut,
    PartnerCreate,
    ProviderCreate,
    ProviderCreatedOut,
    ProviderOut,
)
from xinyi.auth import accounts
from xinyi.records.service import catalogue_codes
from xinyi.schemas import PageArgs, page_of, page_schema
from xinyi.web import db, deps, requires

blp = Blueprint("admin", __name__, url_prefix="/v1/admin",
                description="Credit-office administration (operators)")



class Schemas(NamedTuple):
    create: type[Schema]
    created: type[Schema]
    out: type[Schema]


COLLECTIONS = {"partners": "partner", "orgs": "org", "providers": "provider"}
CLIENT_SCHEMAS = Schemas(ClientCreate, ClientCreatedOut, ClientOut)
SCHEMAS = {"provider": Schemas(ProviderCreate, ProviderCreatedOut, ProviderOut),
           "partner": Schemas(PartnerCreate, ClientCreatedOut, ClientOut)}


def _known_codes() -> Collection[str]:
    return catalogue_codes(db())


def _register(collection: str, client_type: str, schemas: Schemas) -> None:
    name = client_type

    @blp.route(f"/{collection}", methods=["POST"], endpoint=f"create_{name}")
    @requires("operator")
    @blp.doc(summary=f"Create a {client_type}; the response carries its one-time API key")
    @blp.arguments(schemas.create)
    @blp.response(201, schemas.created)
    def create(body: dict[str, Any]) -> accounts.ClientView:
        return accounts.create_client(
            db(), deps(), client_type=client_type, name=body["name"], kind=body.get("kind"),
            catalogue_codes=body.get("catalogue_codes"), known_codes=_known_codes)

    @blp.route(f"/{collection}", methods=["GET"], endpoint=f"list_{name}s")
    @requires("operator", "auditor")
    @blp.doc(summary=f"List {collection}")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(schemas.out))
    def list_(args: dict[str, int]) -> dict[str, Any]:
        items, total = accounts.list_clients(db(), client_type, **args)
        return page_of(items, total, args)

    @blp.route(f"/{collection}/<uuid:client_id>", methods=["GET"], endpoint=f"get_{name}")
    @requires("operator", "auditor")
    @blp.doc(summary=f"One {client_type} with its keys")
    @blp.response(200, schemas.out)
    def get(client_id: uuid.UUID) -> accounts.ClientView:
        return accounts.get_client(db(), client_type, client_id)

    @blp.route(f"/{collection}/<uuid:client_id>/keys", methods=["POST"],
               endpoint=f"add_{name}_key")
    @requires("operator")
    @blp.response(201, IssuedKeyOut)
    def add_key(client_id: uuid.UUID) -> accounts.IssuedKey:
        """Add a second live key for rotation; at most two live keys at once."""
        return accounts.add_key(db(), deps(), client_type, client_id)

    @blp.route(f"/{collection}/<uuid:client_id>/keys/<string:key_id>", methods=["DELETE"],
               endpoint=f"revoke_{name}_key")
    @requires("operator")
    @blp.doc(summary=f"Revoke one of a {client_type}'s keys")
    @blp.response(204)
    def revoke_key(client_id: uuid.UUID, key_id: str) -> None:
        accounts.revoke_key(db(), deps(), client_type, client_id, key_id)

    @blp.route(f"/{collection}/<uuid:client_id>/status", methods=["PUT"],
               endpoint=f"set_{name}_status")
    @requires("operator")
    @blp.arguments(DisableIn)
    @blp.response(200, schemas.out)
    def set_status(body: dict[str, bool], client_id: uuid.UUID) -> accounts.ClientView:
        """Disable or re-enable; a disabled principal's keys stop working at once."""
        return accounts.set_client_disabled(db(), deps(), client_type, client_id,
                                            body["disabled"])


for _collection, _type in COLLECTIONS.items():
    _register(_collection, _type, SCHEMAS.get(_type, CLIENT_SCHEMAS))


@blp.route("/providers/<uuid:client_id>/catalogue", methods=["PUT"])
@requires("operator")
@blp.arguments(CatalogueGrantIn)
@blp.response(200, ProviderOut)
def set_provider_catalogue(body: dict[str, Any], client_id: uuid.UUID) -> accounts.ClientView:
    """Replace the catalogue items a data provider may push (`["*"]`: every item). Records
    already pushed stay; the change is logged with the codes granted and revoked."""
    return accounts.set_catalogue(db(), deps(), client_id, body["catalogue_codes"],
                                  _known_codes)


@blp.route("/accounts/<uuid:account_id>/status", methods=["PUT"])
@requires("operator")
@blp.arguments(DisableIn)
@blp.response(204)
def set_account_status(body: dict[str, bool], account_id: uuid.UUID) -> None:
    """Disable or re-enable a citizen or staff account; its logins end at once."""
    accounts.set_account_disabled(db(), deps(), account_id, body["disabled"])
