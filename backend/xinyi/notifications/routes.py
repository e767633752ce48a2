from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from xinyi.notifications import service
from xinyi.notifications.schemas import InboxArgs, InboxOut, NotificationOut
from xinyi.schemas import page_of
from xinyi.web import db, deps, principal, requires

blp = Blueprint("me_notifications", __name__, url_prefix="/v1/me",
                description="The citizen's inbox of notices")


@blp.route("/notifications", methods=["GET"])
@requires("citizen")
@blp.arguments(InboxArgs, location="query")
@blp.response(200, InboxOut)
def inbox(args: dict[str, Any]) -> dict[str, Any]:
    """Your notices, newest first, with how many are unread."""
    items, total, unread = service.inbox(db(), principal().id, unread=args.get("unread"),
                                         page=args["page"], page_size=args["page_size"])
    return {**page_of(items, total, args), "unread": unread}


@blp.route("/notifications/<uuid:notification_id>/read", methods=["POST"])
@requires("citizen")
@blp.response(200, NotificationOut)
def mark_read(notification_id: uuid.UUID) -> service.NotificationView:
    """Mark one of your notices read."""
    return service.mark_read(db(), deps(), principal().id, notification_id)
