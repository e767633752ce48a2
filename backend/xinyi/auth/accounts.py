"""Managing logins and API-key principals, for the credit office's administration API.

Staff accounts, disabling any account, and the API-key principals (partners, volunteer
organisations and data providers) with their keys. The admin domain's routes call this; it
lives with the models it changes.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xinyi.auth.models import STAFF_ROLES, Account, ApiClient, ApiKey, AuthSession
from xinyi.auth.passwords import password_problems
from xinyi.auth.service import PhoneTaken, create_account, is_key_id, new_api_key, phone_taken
from xinyi.deps import Deps
from xinyi.errors import Conflict, NotFound, ValidationFailed
from xinyi.partner_kinds import PARTNER_KINDS
from xinyi.pii import InvalidIdentifier, PhoneNumber

log = logging.getLogger(__name__)

MAX_LIVE_KEYS = 2


class TooManyKeys(Conflict):
    code = "too_many_live_keys"
    title = "This principal already has two live keys: revoke one before adding another"


@dataclass(frozen=True)
class IssuedKey:
    id: str
    api_key: str
    created_at: datetime


@dataclass(frozen=True)
class ClientView:
    id: uuid.UUID
    type: str
    name: str
    kind: str | None
    created_at: datetime
    disabled_at: datetime | None
    keys: list[ApiKey]
    api_key: IssuedKey | None = None


def create_staff(session: Session, deps: Deps, *, phone: str, password: str, role: str) -> Account:
    if role not in STAFF_ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(STAFF_ROLES)}")
    try:
        parsed = PhoneNumber.parse(phone)
    except InvalidIdentifier as exc:
        raise ValidationFailed(f"phone {exc}") from None
    if problems := password_problems(password):
        raise ValidationFailed("password " + "; ".join(problems))
    if phone_taken(session, deps, parsed):
        raise PhoneTaken()
    account_id = create_account(session, deps, role=role, phone=parsed, password=password,
                                now=deps.clock())
    log.info("staff created", extra={"event": "staff_created", "account_id": str(account_id),
                                     "role": role})
    return session.get_one(Account, account_id)


def set_account_disabled(session: Session, deps: Deps, account_id: uuid.UUID,
                         disabled: bool) -> None:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account")
    account.disabled_at = deps.clock() if disabled else None
    if disabled:
        for family in session.scalars(select(AuthSession).where(
                AuthSession.account_id == account_id, AuthSession.revoked_at.is_(None))):
            family.revoked_at, family.revoked_reason = deps.clock(), "disabled"


def _view(session: Session, client: ApiClient, issued: IssuedKey | None = None) -> ClientView:
    keys = list(session.scalars(
        select(ApiKey).where(ApiKey.client_id == client.id).order_by(ApiKey.created_at)))
    return ClientView(client.id, client.type, client.name, client.kind, client.created_at,
                      client.disabled_at, keys, issued)


def _check_kind(client_type: str, kind: str | None) -> None:
    if client_type == "partner" and kind not in PARTNER_KINDS:
        raise ValidationFailed.at("kind", f"must be one of {', '.join(PARTNER_KINDS)}",
                                  detail="kind is required for partners")


def create_client(session: Session, deps: Deps, *, client_type: str, name: str,
                  kind: str | None) -> ClientView:
    _check_kind(client_type, kind)
    now = deps.clock()
    client = ApiClient(id=uuid.uuid4(), type=client_type, name=name.strip(), kind=kind,
                       created_at=now)
    key, plaintext = new_api_key(client.id)
    key.created_at = now
    session.add_all([client, key])
    session.flush()
    log.info("api client created", extra={"event": "client_created", "client_id": str(client.id),
                                          "client_type": client_type})
    return _view(session, client, IssuedKey(key.id, plaintext, key.created_at))


def _client(session: Session, client_type: str, client_id: uuid.UUID) -> ApiClient:
    client = session.get(ApiClient, client_id)
    if client is None or client.type != client_type:
        raise NotFound(f"No such {client_type}")
    return client


def get_client(session: Session, client_type: str, client_id: uuid.UUID) -> ClientView:
    return _view(session, _client(session, client_type, client_id))


def list_clients(session: Session, client_type: str, *, page: int,
                 page_size: int) -> tuple[list[ClientView], int]:
    total = session.scalar(
        select(func.count()).select_from(ApiClient).where(ApiClient.type == client_type)) or 0
    clients = session.scalars(
        select(ApiClient).where(ApiClient.type == client_type)
        .order_by(ApiClient.created_at, ApiClient.id)
        .limit(page_size).offset((page - 1) * page_size))
    return [_view(session, c) for c in clients], total


def add_key(session: Session, deps: Deps, client_type: str, client_id: uuid.UUID) -> IssuedKey:
    """Rotation: a second live key lets the partner switch over without downtime."""
    client = _client(session, client_type, client_id)
    live = session.scalar(select(func.count()).select_from(ApiKey).where(
        ApiKey.client_id == client.id, ApiKey.revoked_at.is_(None))) or 0
    if live >= MAX_LIVE_KEYS:
        raise TooManyKeys()
    key, plaintext = new_api_key(client.id)
    key.created_at = deps.clock()
    session.add(key)
    session.flush()
    log.info("api key added", extra={"event": "key_added", "client_id": str(client.id),
                                     "key_id": key.id})
    return IssuedKey(key.id, plaintext, key.created_at)


def revoke_key(session: Session, deps: Deps, client_type: str, client_id: uuid.UUID,
               key_id: str) -> None:
    client = _client(session, client_type, client_id)
    key = session.get(ApiKey, key_id) if is_key_id(key_id) else None
    if key is None or key.client_id != client.id:
        raise NotFound("No such key")
    if key.revoked_at is None:
        key.revoked_at = deps.clock()
        log.info("api key revoked", extra={"event": "key_revoked", "key_id": key.id})


def set_client_disabled(session: Session, deps: Deps, client_type: str, client_id: uuid.UUID,
                        disabled: bool) -> ClientView:
    """A disabled principal's keys stop working on the very next request (checked per call)."""
    client = _client(session, client_type, client_id)
    client.disabled_at = deps.clock() if disabled else None
    session.flush()
    return _view(session, client)
