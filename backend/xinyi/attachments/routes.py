from __future__ import annotations

import uuid
from typing import Any

from flask import Response, request
from flask_smorest import Blueprint

from xinyi.attachments import service
from xinyi.attachments.schemas import AttachmentOut, UploadIn
from xinyi.errors import ValidationFailed
from xinyi.web import db, deps, principal, requires

me_blp = Blueprint("me_attachments", __name__, url_prefix="/v1/me",
                   description="Evidence files for repairs and objections")
admin_blp = Blueprint("admin_attachments", __name__, url_prefix="/v1/admin",
                      description="Evidence files, for reviewers")
provider_blp = Blueprint("provider_attachments", __name__, url_prefix="/v1/provider",
                         description="Evidence files of cases about the provider's records")

@me_blp.before_request
def _allow_upload_size() -> None:
    # Only the upload takes more than the JSON body limit (1 MiB): one file of 2 MiB plus
    # its multipart envelope; anything larger is refused before it is read.
    if request.method == "POST" and request.path.endswith("/attachments"):
        request.max_content_length = service.MAX_BYTES + service.UPLOAD_OVERHEAD


@me_blp.route("/attachments", methods=["POST"])
@requires("citizen")
@me_blp.arguments(UploadIn, location="files")
@me_blp.response(201, AttachmentOut)
def upload(files: dict[str, Any]) -> service.AttachmentView:
    """Upload one evidence file (multipart field `file`): PNG, JPEG or PDF by its content,
    at most 2 MiB. Reference it from a repair or an objection (at most 5 each)."""
    # The upload is its one file: another form field or file is refused, not ignored.
    extra = sorted(set(request.form) | (set(request.files) - {"file"}))
    if extra:
        raise ValidationFailed.at(extra[0], "Unknown field.", location="form",
                                  detail="Only the field `file` may be sent")
    return service.upload(db(), deps(), principal().id, files["file"].read())


def _send(found: service.AttachmentContent) -> Response:
    return Response(found.content, mimetype=found.media_type, headers={
        "Content-Disposition": "attachment", "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


@me_blp.route("/attachments/<uuid:attachment_id>", methods=["GET"])
@requires("citizen")
@me_blp.response(200, content_type="application/octet-stream")
def my_attachment(attachment_id: uuid.UUID) -> Response:
    """One of your own attachments."""
    return _send(service.read(db(), deps(), principal(), attachment_id))


@admin_blp.route("/attachments/<uuid:attachment_id>", methods=["GET"])
@requires("reviewer")
@admin_blp.response(200, content_type="application/octet-stream")
def reviewer_attachment(attachment_id: uuid.UUID) -> Response:
    """An attachment of a repair or an objection (written to its owner's access log)."""
    return _send(service.read(db(), deps(), principal(), attachment_id))


@provider_blp.route("/attachments/<uuid:attachment_id>", methods=["GET"])
@requires("provider")
@provider_blp.response(200, content_type="application/octet-stream")
def provider_attachment(attachment_id: uuid.UUID) -> Response:
    """An attachment of an objection or repair about one of your records (access-logged)."""
    return _send(service.read(db(), deps(), principal(), attachment_id))
