"""Managing logins and API-key principals, for the credit office's administration API.

Staff accounts, disabling any account, and the API-key principals (partners, volunteer
organisations and data providers) with their keys. The admin domain's routes call this; it
lives with the models it changes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from xinyi.auth.models import (
    ALL_CATALOGUE,
    STAFF_ROLES,
    Account,
    ApiClient,
    ApiKey,
    AuthSession,
    CatalogueGrant,
)
from xinyi.auth.passwords import password_problems
from xinyi.auth.service import (
    PhoneTaken,
    create_account,
    forget_api_keys,
    is_key_id,
    new_api_key,
    phone_taken,
)
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
    catalogue_codes: list[str] | None = None  # a data provider's grants, "*" for all


# The catalogue's codes, asked only when a provider's grants are checked: the catalogue belongs
# to the records domain, which depends on this one, so the caller looks them up.
KnownCodes = Callable[[], Collection[str]]


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
    codes = None if client.type != "provider" else _granted(session, client.id)
    return ClientView(client.id, client.type, client.name, client.kind, client.created_at,
                      client.disabled_at, keys, issued, codes)


def _granted(session: Session, client_id: uuid.UUID) -> list[str]:
    return list(session.scalars(select(CatalogueGrant.catalogue_code)
                                .where(CatalogueGrant.client_id == client_id)
                                .order_by(CatalogueGrant.catalogue_code)))


def _checked_codes(codes: Sequence[str], known: KnownCodes) -> list[str]:
    """The grant as stored (sorted, each code once), or every problem with it named."""
    wanted = sorted(set(codes))
    if not wanted:
        raise ValidationFailed.at("catalogue_codes", "must name at least one catalogue item",
                                  detail=f'Grant catalogue items by code, or "{ALL_CATALOGUE}"'
                                         " for every item")
    if ALL_CATALOGUE in wanted:
        if len(wanted) > 1:
            raise ValidationFailed.at(
                "catalogue_codes", f'"{ALL_CATALOGUE}" grants every item and stands alone',
                detail=f'Send either "{ALL_CATALOGUE}" or the codes of the items granted')
        return wanted
    catalogue = known()
    unknown = [(i, code) for i, code in enumerate(codes) if code not in catalogue]
    if unknown:
        # Codes are tame identifiers (the schema allows nothing else), never personal data.
        named = ", ".join(sorted({code for _, code in unknown}))
        first, *more = [(f"catalogue_codes.{i}", "no catalogue item has this code")
                        for i, _ in unknown]
        raise ValidationFailed.at(*first, *more, detail=f"No catalogue item has the code {named}")
    return wanted


def _grant(session: Session, deps: Deps, client_id: uuid.UUID, codes: list[str]) -> None:
    """Make ``codes`` the provider's grants, and log what changed (codes and ids only)."""
    before = set(_granted(session, client_id))
    added, removed = sorted(set(codes) - before), sorted(before - set(codes))
    if removed:
        session.execute(delete(CatalogueGrant).where(
            CatalogueGrant.client_id == client_id, CatalogueGrant.catalogue_code.in_(removed)))
    now = deps.clock()
    session.add_all([CatalogueGrant(client_id=client_id, catalogue_code=code, granted_at=now)
                     for code in added])
    session.flush()
    if added or removed:
        log.info("provider catalogue changed", extra={
            "event": "provider_catalogue_changed", "client_id": str(client_id),
            "granted": added, "revoked": removed})


def _check_kind(client_type: str, kind: str | None) -> None:
    if client_type == "partner" and kind not in PARTNER_KINDS:
        raise ValidationFailed.at("kind", f"must be one of {', '.join(PARTNER_KINDS)}",
                                  detail="kind is required for partners")


def create_client(session: Session, deps: Deps, *, client_type: str, name: str,
                  kind: str | None, catalogue_codes: Sequence[str] | None = None,
                  known_codes: KnownCodes = frozenset) -> ClientView:
    """A new principal with its first key; a data provider also with the catalogue items it
    may push (required: ``["*"]`` grants all of them, explicitly)."""
    _check_kind(client_type, kind)
    if (client_type == "provider") != (catalogue_codes is not None):
        raise ValidationFailed.at("catalogue_codes", "required for data providers, and only "
                                  "for them", detail="catalogue_codes is for data providers")
    codes = None if catalogue_codes is None else _checked_codes(catalogue_codes, known_codes)
    now = deps.clock()
    client = ApiClient(id=uuid.uuid4(), type=client_type, name=name.strip(), kind=kind,
                       created_at=now)
    key, plaintext = new_api_key(client.id)
    key.created_at = now
    session.add_all([client, key])
    session.flush()
    log.info("api client created", extra={"event": "client_created", "client_id": str(client.id),
                                          "client_type": client_type})
    if codes is not None:
        _grant(session, deps, client.id, codes)
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
        forget_api_keys(session, deps)
        log.info("api key revoked", extra={"event": "key_revoked", "key_id": key.id})


def set_client_disabled(session: Session, deps: Deps, client_type: str, client_id: uuid.UUID,
                        disabled: bool) -> ClientView:
    """A disabled principal's keys stop working on the very next request of this process,
    and of any other within the key cache's lifetime (under a second: auth/keycache.py)."""
    client = _client(session, client_type, client_id)
    client.disabled_at = deps.clock() if disabled else None
    forget_api_keys(session, deps)
    session.flush()
    return _view(session, client)


def set_catalogue(session: Session, deps: Deps, client_id: uuid.UUID,
                  catalogue_codes: Sequence[str], known_codes: KnownCodes) -> ClientView:
    """Replace a data provider's grants. Records it pushed before keep standing; from the next
    item on, only the items granted now are accepted."""
    client = _client(session, "provider", client_id)
    codes = _checked_codes(catalogue_codes, known_codes)
    # One change at a time per provider: two at once would both add a code and collide.
    session.execute(select(ApiClient.id).where(ApiClient.id == client.id).with_for_update())
    _grant(session, deps, client.id, codes)
    return _view(session, client)


def client_names(session: Session, client_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The display names of these API clients (partners), for the citizen's own views."""
    if not client_ids:
        return {}
    rows = session.execute(select(ApiClient.id, ApiClient.name)
                           .where(ApiClient.id.in_(list(client_ids)))).all()
    return {row[0]: row[1] for row in rows}


def client_names_sql() -> Any:
    """``(id, name)`` of every API client as a subquery, for set-based writers that join
    it (a hash join over the small clients table) rather than bring rows into Python."""
    return select(ApiClient.id, ApiClient.name).subquery("client_names")
