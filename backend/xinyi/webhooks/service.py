"""Webhooks (Standard Webhooks 1.0): what other domains and the worker may use.

* :mod:`.endpoints` — a partner's endpoints (create, change, delete, rotate, test);
* :mod:`.dispatch` — outbox events → per-partner feed events → deliveries;
* :mod:`.feed` — the feed and :func:`message_body`, the one builder of a message's bytes;
* :mod:`.catalogue` — every public event type and the schema of its data;
* :mod:`.retention` — the purge of what was delivered long ago.

Other domains never write feed events or deliveries: they :func:`xinyi.outbox.service.emit`
an internal event in their own transaction, and the dispatcher does the rest.
"""

from __future__ import annotations

from xinyi.deps import Deps
from xinyi.uow import run_in_unit
from xinyi.webhooks.dispatch import dispatch_batch
from xinyi.webhooks.endpoints import set_enabled, signing_secrets
from xinyi.webhooks.feed import message_body, message_id
from xinyi.webhooks.retention import purge_batch

__all__ = ["dispatch_batch", "dispatch_pending", "message_body", "message_id",
           "purge_delivered", "set_enabled", "signing_secrets"]


def dispatch_pending(deps: Deps, *, batch: int = 1000) -> int:
    """Dispatch every waiting outbox event, one unit of work per batch; returns how many.
    Stops early if another dispatcher holds the lock (it is doing the same work)."""
    total = 0
    while handled := run_in_unit(deps.db.sessions,
                                 lambda session: dispatch_batch(session, deps, batch=batch)):
        total += handled
    return total


def purge_delivered(deps: Deps, *, batch: int = 5000) -> int:
    """Apply the retention period, one unit of work per batch; returns the rows deleted."""
    total = 0
    while deleted := run_in_unit(deps.db.sessions,
                                 lambda session: purge_batch(session, deps, batch=batch)):
        total += deleted
    return total
