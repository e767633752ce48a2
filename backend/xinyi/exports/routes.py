from __future__ import annotations

import uuid
from typing import Any

from flask import Response, request, url_for
from flask_smorest import Blueprint
from werkzeug.exceptions import MethodNotAllowed

from xinyi.exports import document, service
from xinyi.exports.schemas import ExportArgs, ExportIn, ExportOut
from xinyi.web import db, deps, principal, public, requires

me_blp = Blueprint("me_exports", __name__, url_prefix="/v1/me",
                   description="Everything held about you, to take away (个人信息导出)")
schema_blp = Blueprint("export_schema", __name__, url_prefix="/v1",
                       description="The published schema of the citizen's export")

_FILE_DOC = {"responses": {"200": {"description": "The export file", "content": {
    "application/json": {"schema": {"type": "object", "description":
                                    "The export document: see GET /v1/export-schema"}},
    "application/zip": {"schema": {"type": "string", "format": "binary"}}}}}}


def _file(export: service.ExportFile) -> Response:
    return Response(export.content, mimetype=export.media_type, headers={
        "Content-Disposition": f'attachment; filename="{export.filename}"',
        "Cache-Control": "no-store"})


@me_blp.route("/export", methods=["GET"])
@requires("citizen")
@me_blp.arguments(ExportArgs, location="query")
@me_blp.doc(**_FILE_DOC)
def export_now(args: dict[str, Any]) -> Response:
    """Everything held about you as one JSON document (`format=json`, the default; schema
    at `/v1/export-schema`) or a ZIP of that document and one CSV per section
    (`format=zip`). A large export is refused with 413 `export_too_large`: request it with
    `POST /v1/me/exports` instead. Each export is written in your access log."""
    return _file(service.export_now(db(), deps(), principal().id, fmt=args["format"]))


@me_blp.route("/exports", methods=["POST"])
@requires("citizen")
@me_blp.arguments(ExportIn, required=False)  # no body: {"format": "json"}
@me_blp.response(202, ExportOut, headers={"Location": {
    "description": "The export's status", "schema": {"type": "string"}}})
def request_export(body: dict[str, Any]) -> tuple[service.ExportView, dict[str, str]]:
    """Build an export in the background; follow `Location` until it is `ready`, then
    download it once within the hour. One export may be queued or building at a time
    (409 `export_in_progress`)."""
    view = service.request_export(db(), deps(), principal().id, fmt=body["format"])
    return view, {"Location": url_for("me_exports.export_status", export_id=view.id)}


@me_blp.route("/exports/<uuid:export_id>", methods=["GET"])
@requires("citizen")
@me_blp.response(200, ExportOut)
def export_status(export_id: uuid.UUID) -> service.ExportView:
    return service.export_status(db(), deps(), principal().id, export_id)


@me_blp.route("/exports/<uuid:export_id>/download", methods=["GET"])
@requires("citizen")
@me_blp.doc(**_FILE_DOC)
def download(export_id: uuid.UUID) -> Response:
    """The file, once, with your bearer token in the `Authorization` header (never in the
    URL). Downloaded already, expired or not yours: 404 `export_not_found`."""
    if request.method == "HEAD":  # Flask adds HEAD to every GET: it must not use the file up
        raise MethodNotAllowed(valid_methods=["GET"])
    return _file(service.download(db(), deps(), principal().id, export_id))


@schema_blp.route("/export-schema", methods=["GET"])
@public
@schema_blp.response(200, content_type="application/schema+json")
def export_schema() -> Response:
    """The JSON Schema (draft 2020-12) of the export document."""
    return Response(document.schema_text(), mimetype="application/schema+json",
                    headers={"Cache-Control": "public, max-age=3600"})
