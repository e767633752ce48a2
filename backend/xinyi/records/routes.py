from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from xinyi.records import catalogue, reading, service
from xinyi.records.models import CatalogueItem, CreditRecord
from xinyi.records.schemas import (
    CatalogueItemPatch,
    CatalogueItemSchema,
    CatalogueOut,
    CitizenRecordOut,
    CitizenRecordsArgs,
    ListArgs,
    ListEntryOut,
    ProviderRecordOut,
    RecordBatchIn,
    RecordBatchOut,
    RecordPatchIn,
)
from xinyi.schemas import page_of, page_schema
from xinyi.web import db, deps, principal, public, requires

provider_blp = Blueprint("provider", __name__, url_prefix="/v1/provider",
                         description="Data providers push credit records")
catalog_blp = Blueprint("catalog", __name__, url_prefix="/v1",
                        description="Public catalogue and benefit rules (transparency)")
admin_blp = Blueprint("admin_records", __name__, url_prefix="/v1/admin",
                      description="Catalogue and lists for the credit office")
me_blp = Blueprint("me_records", __name__, url_prefix="/v1/me",
                   description="The citizen's own records")


@provider_blp.route("/records:batch", methods=["POST"])
@requires("provider")
@provider_blp.arguments(RecordBatchIn)
@provider_blp.response(200, RecordBatchOut)
def submit_batch(body: dict[str, Any]) -> dict[str, Any]:
    """Push up to 1,000 records; each is idempotent on its `ref` and reported on its own."""
    return {"results": service.submit_batch(db(), deps(), principal(), body["records"])}


@provider_blp.route("/records/<uuid:record_id>", methods=["GET"])
@requires("provider")
@provider_blp.response(200, ProviderRecordOut)
def get_record(record_id: uuid.UUID) -> CreditRecord:
    """One of this provider's own records."""
    return service.get_provider_record(db(), principal(), record_id)


@provider_blp.route("/records/<uuid:record_id>", methods=["PATCH"])
@requires("provider")
@provider_blp.arguments(RecordPatchIn)
@provider_blp.response(200, ProviderRecordOut)
def correct_record(body: dict[str, Any], record_id: uuid.UUID) -> CreditRecord:
    """Correct one of this provider's records (更正)."""
    return service.correct_record(db(), deps(), principal(), record_id, body)


@provider_blp.route("/records/<uuid:record_id>", methods=["DELETE"])
@requires("provider")
@provider_blp.response(204)
def withdraw_record(record_id: uuid.UUID) -> None:
    """Withdraw one of this provider's records: archived, no longer shown nor scored."""
    service.withdraw_record(db(), deps(), principal(), record_id)


@catalog_blp.route("/catalog", methods=["GET"])
@public
@catalog_blp.response(200, CatalogueOut)
def catalog() -> dict[str, list[CatalogueItem]]:
    """The credit information catalogue (信用信息目录) with every item's rules."""
    return {"items": catalogue.list_catalogue(db())}


@admin_blp.route("/catalogue", methods=["GET"])
@requires("operator", "reviewer", "auditor")
@admin_blp.response(200, CatalogueOut)
def admin_catalogue() -> dict[str, list[CatalogueItem]]:
    return {"items": catalogue.list_catalogue(db())}


@admin_blp.route("/catalogue", methods=["POST"])
@requires("operator")
@admin_blp.arguments(CatalogueItemSchema)
@admin_blp.response(201, CatalogueItemSchema)
def create_catalogue_item(body: dict[str, Any]) -> CatalogueItem:
    """Add a catalogue item."""
    return catalogue.create_catalogue_item(db(), deps(), body)


@admin_blp.route("/catalogue/<string:code>", methods=["PATCH"])
@requires("operator")
@admin_blp.arguments(CatalogueItemPatch(partial=True))
@admin_blp.response(200, CatalogueItemSchema)
def update_catalogue_item(body: dict[str, Any], code: str) -> CatalogueItem:
    """Edit an item; records already recorded keep the rules they were recorded under."""
    return catalogue.update_catalogue_item(db(), deps(), code, body)


@admin_blp.route("/lists", methods=["GET"])
@requires("operator", "reviewer", "auditor")
@admin_blp.arguments(ListArgs, location="query")
@admin_blp.response(200, page_schema(ListEntryOut, name="ListPage"))
def lists(args: dict[str, Any]) -> dict[str, Any]:
    """Red- and black-list entries (masked subjects); only items with a legal basis list.
    Each citizen shown gets an entry in their access log (`GET /v1/me/queries`)."""
    items, total = reading.list_entries(
        db(), deps(), principal(), list_name=args.get("list"), include_left=args["include_left"],
        page=args["page"], page_size=args["page_size"])
    return page_of(items, total, args)


@me_blp.route("/records", methods=["GET"])
@requires("citizen")
@me_blp.arguments(CitizenRecordsArgs, location="query")
@me_blp.response(200, page_schema(CitizenRecordOut))
def my_records(args: dict[str, Any]) -> dict[str, Any]:
    """The citizen's own records; `archived=true` shows expired, repaired and withdrawn ones."""
    items, total = reading.citizen_records(db(), principal().id, **args)
    return page_of(items, total, args)
