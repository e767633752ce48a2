"""A partner's webhook endpoints: create, read, change, delete, rotate the secret, test.

The secret (``whsec_`` + base64 of 32 random bytes) is answered once, on creation and on
rotation, and stored encrypted. After a rotation the previous secret keeps signing next to
the new one for :data:`ROTATION_OVERLAP`, so a receiver can switch without losing a message.
A partner sees only its own endpoints: another's id answers exactly like a missing one.
"""

from __future__ import annotations

import base64
import logging
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from xinyi.auth.principal import Principal
from xinyi.deps import Deps
from xinyi.errors import Conflict, NotFound, ValidationFailed
from xinyi.outbox.service import emit
from xinyi.webhooks.models import WebhookDelivery, WebhookEndpoint
from xinyi.webhooks.ssrf import check_url

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
SECRET_BYTES = 32
SECRET_CONTEXT = "webhook_endpoints.secret"  # noqa: S105 - the cipher's context label
ROTATION_OVERLAP = timedelta(hours=24)
MAX_ENDPOINTS = 20
DEFAULT_RATE_LIMIT = 20


class TooManyEndpoints(Conflict):
    code = "too_many_webhook_endpoints"
    title = f"A partner may have at most {MAX_ENDPOINTS} webhook endpoints"


class EndpointDisabled(Conflict):
    code = "webhook_endpoint_disabled"
    title = "This endpoint is disabled: enable it first"


@dataclass(frozen=True)
class EndpointView:
    """``WebhookEndpointOut`` (and, with the secret, ``WebhookEndpointSecretOut``)."""

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    rate_limit_per_s: int
    created_at: datetime
    updated_at: datetime
    previous_secret_until: datetime | None
    secret: str | None = None


@dataclass(frozen=True)
class TestQueued:
    endpoint_id: uuid.UUID
    type: str
    queued_at: datetime


def _view(endpoint: WebhookEndpoint, now: datetime, secret: str | None = None) -> EndpointView:
    until = endpoint.previous_secret_until
    return EndpointView(
        id=endpoint.id, url=endpoint.url, event_types=list(endpoint.event_types),
        description=endpoint.description, enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason, disabled_at=endpoint.disabled_at,
        rate_limit_per_s=endpoint.rate_limit_per_s, created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
        previous_secret_until=until if until is not None and until > now else None,
        secret=secret)


def _new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _check(deps: Deps, url: str) -> None:
    check_url(url, allow_private=deps.settings.webhook_allow_private,
              require_https=deps.settings.webhook_https_only)


def _types(names: Sequence[str]) -> list[str]:
    return sorted(set(names))


def _own(session: Session, partner: Principal, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.partner_id != partner.id or endpoint.deleted_at is not None:
        raise NotFound("No webhook endpoint of yours has this id")
    return endpoint


def create_endpoint(session: Session, deps: Deps, partner: Principal, *, url: str,
                    event_types: Sequence[str] = (), description: str = "",
                    enabled: bool = True,
                    rate_limit_per_s: int = DEFAULT_RATE_LIMIT) -> EndpointView:
    """A new endpoint; the answer holds its secret, which is never shown again."""
    now = deps.clock()
    _check(deps, url)
    existing = session.scalar(select(func.count()).select_from(WebhookEndpoint).where(
        WebhookEndpoint.partner_id == partner.id, WebhookEndpoint.deleted_at.is_(None))) or 0
    if existing >= MAX_ENDPOINTS:
        raise TooManyEndpoints()
    secret = _new_secret()
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(), partner_id=partner.id, url=url, event_types=_types(event_types),
        description=description, enabled=enabled,
        disabled_reason=None if enabled else "partner", disabled_at=None if enabled else now,
        rate_limit_per_s=rate_limit_per_s,
        secret_enc=deps.cipher.encrypt(secret, context=SECRET_CONTEXT),
        created_at=now, updated_at=now)
    session.add(endpoint)
    session.flush()
    log.info("webhook endpoint created", extra={"event": "webhook_endpoint_created",
                                                "partner_id": str(partner.id),
                                                "endpoint_id": str(endpoint.id)})
    return _view(endpoint, now, secret)


def list_endpoints(session: Session, deps: Deps, partner: Principal, *, page: int,
                   page_size: int) -> tuple[list[EndpointView], int]:
    where = (WebhookEndpoint.partner_id == partner.id, WebhookEndpoint.deleted_at.is_(None))
    total = session.scalar(select(func.count()).select_from(WebhookEndpoint).where(*where)) or 0
    rows = session.scalars(select(WebhookEndpoint).where(*where)
                           .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
                           .limit(page_size).offset((page - 1) * page_size))
    now = deps.clock()
    return [_view(e, now) for e in rows], total


def get_endpoint(session: Session, deps: Deps, partner: Principal,
                 endpoint_id: uuid.UUID) -> EndpointView:
    return _view(_own(session, partner, endpoint_id), deps.clock())


def _deliveries(session: Session, endpoint_id: uuid.UUID, statuses: Sequence[str],
                **values: Any) -> None:
    session.execute(update(WebhookDelivery)
                    .where(WebhookDelivery.endpoint_id == endpoint_id,
                           WebhookDelivery.status.in_(list(statuses)))
                    .values(**values).execution_options(synchronize_session=False))


def set_enabled(session: Session, endpoint: WebhookEndpoint, enabled: bool, now: datetime,
                reason: str = "partner") -> None:
    """Disable (its waiting deliveries are paused, kept) or enable again (paused deliveries
    are due now; the delivery worker sends them in event order). Also used by the delivery
    side when it disables an endpoint that answered 410 or failed for days."""
    if endpoint.enabled == enabled:
        return
    endpoint.enabled, endpoint.updated_at = enabled, now
    if enabled:
        endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None
        # Leases stay: an attempt still in flight from before the disable is recorded by its
        # worker, and no other worker sends the same delivery meanwhile.
        _deliveries(session, endpoint.id, ("paused",), status="pending", next_attempt_at=now)
    else:
        endpoint.disabled_reason, endpoint.disabled_at = reason, now
        _deliveries(session, endpoint.id, ("pending",), status="paused", next_attempt_at=None)


def update_endpoint(session: Session, deps: Deps, partner: Principal, endpoint_id: uuid.UUID,
                    changes: Mapping[str, Any]) -> EndpointView:
    now = deps.clock()
    endpoint = _own(session, partner, endpoint_id)
    if not changes:
        raise ValidationFailed("Nothing to change")
    if "url" in changes:
        _check(deps, changes["url"])
        endpoint.url = changes["url"]
    if "event_types" in changes:
        endpoint.event_types = _types(changes["event_types"])
    for name in ("description", "rate_limit_per_s"):
        if name in changes:
            setattr(endpoint, name, changes[name])
    if "enabled" in changes:
        set_enabled(session, endpoint, changes["enabled"], now)
    endpoint.updated_at = now
    session.flush()
    return _view(endpoint, now)


def delete_endpoint(session: Session, deps: Deps, partner: Principal,
                    endpoint_id: uuid.UUID) -> None:
    """Soft delete: the endpoint disappears for the partner and nothing more is sent to it;
    its waiting deliveries are cancelled (their events stay in the feed)."""
    now = deps.clock()
    endpoint = _own(session, partner, endpoint_id)
    endpoint.deleted_at, endpoint.updated_at, endpoint.enabled = now, now, False
    _deliveries(session, endpoint.id, ("pending", "paused", "dead"), status="cancelled",
                next_attempt_at=None)
    log.info("webhook endpoint deleted", extra={"event": "webhook_endpoint_deleted",
                                                "partner_id": str(partner.id),
                                                "endpoint_id": str(endpoint.id)})


def rotate_secret(session: Session, deps: Deps, partner: Principal,
                  endpoint_id: uuid.UUID) -> EndpointView:
    """A new secret, answered once; the one it replaces keeps signing for 24 hours (a second
    rotation within them retires the first secret at once)."""
    now = deps.clock()
    endpoint = _own(session, partner, endpoint_id)
    secret = _new_secret()
    endpoint.previous_secret_enc = endpoint.secret_enc
    endpoint.previous_secret_until = now + ROTATION_OVERLAP
    endpoint.secret_enc = deps.cipher.encrypt(secret, context=SECRET_CONTEXT)
    endpoint.updated_at = now
    session.flush()
    log.info("webhook secret rotated", extra={"event": "webhook_secret_rotated",
                                              "endpoint_id": str(endpoint.id)})
    return _view(endpoint, now, secret)


def signing_secrets(deps: Deps, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets a message to this endpoint is signed with now: the current one, and the
    previous one during the 24 hours after a rotation."""
    return secrets_of(deps, endpoint.secret_enc, endpoint.previous_secret_enc,
                      endpoint.previous_secret_until, now)


def secrets_of(deps: Deps, secret_enc: bytes, previous_enc: bytes | None,
               previous_until: datetime | None, now: datetime) -> list[str]:
    """:func:`signing_secrets` from an endpoint's columns (the delivery worker reads rows)."""
    out = [deps.cipher.decrypt(secret_enc, context=SECRET_CONTEXT)]
    if previous_enc is not None and previous_until is not None and previous_until > now:
        out.append(deps.cipher.decrypt(previous_enc, context=SECRET_CONTEXT))
    return out


def send_test(session: Session, deps: Deps, partner: Principal,
              endpoint_id: uuid.UUID) -> TestQueued:
    """Queue a ``webhook.test`` event for this endpoint alone (it takes the next ``seq`` of
    the partner's feed like any event)."""
    now = deps.clock()
    endpoint = _own(session, partner, endpoint_id)
    if not endpoint.enabled:
        raise EndpointDisabled()
    emit(session, "webhook.test", {"endpoint_id": str(endpoint.id)}, now=now,
         partner_id=partner.id)
    return TestQueued(endpoint.id, "webhook.test", now)
