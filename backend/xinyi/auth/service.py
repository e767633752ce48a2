"""Login, token rotation with reuse detection, logout, and authentication of every request."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect

from xinyi.auth.models import (
    ALL_CATALOGUE,
    Account,
    ApiClient,
    ApiKey,
    AuthSession,
    CatalogueGrant,
    RefreshToken,
)
from xinyi.auth.passwords import password_problems as password_problems  # for other domains
from xinyi.auth.principal import Principal
from xinyi.auth.tokens import TokenRejected
from xinyi.deps import Deps
from xinyi.errors import Conflict, InvalidLogin, NotFound, Unauthorized
from xinyi.pii import InvalidIdentifier, PhoneNumber
from xinyi.uow import unique_or

log = logging.getLogger(__name__)
API_KEY_PREFIX = "xyk_"
_KEY_ID = re.compile(r"[0-9a-f]{1,32}")  # new_api_key makes 16; the column holds 32


class RefreshReused(Unauthorized):
    """A used refresh token came back: the same answer as any refusal, but the revocation of
    its login family that it caused is committed."""

    keeps_work = True


def is_key_id(value: str) -> bool:
    """Could this be an API key id? One that cannot (a NUL, say) must not reach the database."""
    return _KEY_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


def _sha256(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def _issue_pair(session: Session, deps: Deps, auth_session: AuthSession) -> TokenPair:
    now = deps.clock()
    refresh = "xyr_" + secrets.token_urlsafe(32)
    session.add(RefreshToken(session_id=auth_session.id, token_hash=_sha256(refresh),
                             issued_at=now))
    access = deps.tokens.issue(account_id=auth_session.account_id, session_id=auth_session.id,
                               role=auth_session.account.role, now=now)
    return TokenPair(access, refresh, deps.settings.access_token_seconds)


def login(session: Session, deps: Deps, *, phone: str, password: str,
          client_address: str) -> TokenPair:
    limits = deps.settings
    deps.limiter.hit(limits.login_limit_per_address, "login-addr", client_address)
    try:
        parsed = PhoneNumber.parse(phone)
        phone_key = deps.bidx(parsed.value, kind="phone")
    except InvalidIdentifier:
        parsed, phone_key = None, _sha256(phone)
    # Keyed by the blind index, never by the phone number itself. Tight per address, so that
    # guesses from one address do not lock the owner out of another; loose per phone, so
    # that only an attack from many addresses does. A refused hit is not counted: a stopped
    # address spends none of the phone's budget.
    phone_id = phone_key.hex()[:32]
    deps.limiter.hit(limits.login_limit_per_phone_address, "login-phone-addr", phone_id,
                     client_address)
    deps.limiter.hit(limits.login_limit_per_phone, "login-phone", phone_id)
    account = None
    if parsed is not None:
        account = session.scalar(select(Account).where(Account.phone_bidx == phone_key))
    ok = deps.passwords.verify(account.password_hash if account else None, password)
    if account is None or not ok or account.disabled_at is not None:
        log.info("login refused", extra={"event": "login_refused"})
        raise InvalidLogin()
    now = deps.clock()
    auth_session = AuthSession(account=account, account_id=account.id, created_at=now,
                               expires_at=now + timedelta(days=deps.settings.refresh_token_days))
    session.add(auth_session)
    session.flush()
    pair = _issue_pair(session, deps, auth_session)
    log.info("login", extra={"event": "login", "account_id": str(account.id)})
    return pair


def refresh(session: Session, deps: Deps, *, refresh_token: str) -> TokenPair:
    now = deps.clock()
    stored = session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == _sha256(refresh_token))
        .with_for_update(of=RefreshToken)
    )
    if stored is None:
        raise Unauthorized()
    family = stored.session
    if family.revoked_at is not None or family.expires_at <= now:
        raise Unauthorized()
    if family.account.disabled_at is not None:
        raise Unauthorized()
    if stored.used_at is not None:
        # A used token came back: someone holds a copy. Revoke the whole family (RFC 9700 §4.14).
        family.revoked_at, family.revoked_reason = now, "refresh_reuse"
        log.warning("refresh token reuse: family revoked",
                    extra={"event": "refresh_reuse", "session_id": str(family.id)})
        raise RefreshReused()
    claimed = session.execute(
        update(RefreshToken).where(RefreshToken.id == stored.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Unauthorized()
    return _issue_pair(session, deps, family)


def logout(session: Session, deps: Deps, principal: Principal) -> None:
    if principal.session_id is None:
        return
    family = session.get(AuthSession, principal.session_id)
    if family is not None and family.revoked_at is None:
        family.revoked_at, family.revoked_reason = deps.clock(), "logout"


_SESSION_CHECK = (
    select(AuthSession.account_id, AuthSession.revoked_at, Account.disabled_at, Account.role,
           Account.password_changed_at)
    .join(Account, Account.id == AuthSession.account_id)
    .where(AuthSession.id == bindparam("sid")))
_KEY_CHECK = (
    select(ApiKey.secret_hash, ApiKey.revoked_at, ApiKey.client_id, ApiClient.type,
           ApiClient.kind, ApiClient.name, ApiClient.disabled_at)
    .join(ApiClient, ApiClient.id == ApiKey.client_id)
    .where(ApiKey.id == bindparam("kid")))


def authenticate(session: Session, deps: Deps, authorization: str | None) -> Principal:
    """Turn an ``Authorization`` header into a principal, or raise the one uniform 401."""
    if not authorization:
        raise Unauthorized()
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized()
    credential = credential.strip()
    if credential.startswith(API_KEY_PREFIX):
        return _authenticate_api_key(session, deps, credential)
    now = deps.clock()
    try:
        claims = deps.tokens.verify(credential, now=now)
    except TokenRejected:
        raise Unauthorized() from None
    # One Core query on the hot path (every citizen and staff request), no ORM identity map.
    family = session.connection().execute(_SESSION_CHECK, {"sid": claims.session_id}).first()
    if (
        family is None
        or family.account_id != claims.account_id
        or family.revoked_at is not None
        or family.disabled_at is not None
        or family.role != claims.role
        or claims.issued_at < family.password_changed_at.replace(microsecond=0)
    ):
        raise Unauthorized()
    return Principal(kind=claims.role, id=claims.account_id, session_id=claims.session_id)


def _authenticate_api_key(session: Session, deps: Deps, credential: str) -> Principal:
    parts = credential.split("_", 2)
    if len(parts) != 3 or not is_key_id(parts[1]) or not parts[2] or len(credential) > 200:
        raise Unauthorized()
    # At most API_KEY_CACHE_SECONDS old (only keys that exist are kept); the secret is
    # checked against it on every request.
    key = deps.api_keys.get_or_load(
        parts[1], lambda: session.connection().execute(_KEY_CHECK, {"kid": parts[1]}).first(),
        keep=lambda row: row is not None)
    if key is None or key.revoked_at is not None or key.disabled_at is not None:
        raise Unauthorized()
    if not hmac.compare_digest(key.secret_hash, _sha256(parts[2])):
        raise Unauthorized()
    return Principal(kind=key.type, id=key.client_id, key_id=parts[1],
                     client_kind=key.kind, client_name=key.name)


def new_api_key(client_id: uuid.UUID) -> tuple[ApiKey, str]:
    """A fresh key row and the one-time plaintext ``xyk_<id>_<secret>``."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return ApiKey(id=key_id, client_id=client_id, secret_hash=_sha256(secret)), (
        f"{API_KEY_PREFIX}{key_id}_{secret}"
    )


def purge_expired_logins(session: Session, deps: Deps) -> tuple[int, int]:
    """Delete login families that expired or were revoked more than 30 days ago, with their
    refresh tokens; returns (families, tokens)."""
    cutoff = deps.clock() - timedelta(days=30)
    stale = select(AuthSession.id).where(
        (AuthSession.expires_at < cutoff) | (AuthSession.revoked_at < cutoff))
    tokens = session.execute(delete(RefreshToken).where(RefreshToken.session_id.in_(stale)))
    families = session.execute(delete(AuthSession).where(AuthSession.id.in_(stale)))
    return (int(families.rowcount),  # type: ignore[attr-defined]
            int(tokens.rowcount))  # type: ignore[attr-defined]


def provider_disabled(session: Session, client_id: uuid.UUID) -> bool | None:
    """Whether the data provider ``client_id`` is disabled; None if no provider has this id."""
    row = session.execute(select(ApiClient.type, ApiClient.disabled_at)
                          .where(ApiClient.id == client_id)).first()
    if row is None or row.type != "provider":
        return None
    return row.disabled_at is not None


# ---- what other domains may know of an API-key principal ---------------------------------

@dataclass(frozen=True)
class AuthorisedItems:
    """The catalogue items a data provider may push records of: ask ``code in items``.

    The records domain checks every pushed or imported record against it; the grants
    themselves are kept here, with the provider (``PUT /v1/admin/providers/{id}/catalogue``).
    """

    codes: frozenset[str]

    def __contains__(self, code: object) -> bool:
        return ALL_CATALOGUE in self.codes or code in self.codes


def authorised_items(session: Session, client_id: uuid.UUID) -> AuthorisedItems:
    """What the data provider ``client_id`` may push; nothing for a provider without grants
    or an id that is no provider (fail closed)."""
    return AuthorisedItems(frozenset(session.scalars(
        select(CatalogueGrant.catalogue_code).where(CatalogueGrant.client_id == client_id))))


@dataclass(frozen=True)
class ClientRef:
    """A partner, volunteer organisation or data provider, as another domain sees it."""

    id: uuid.UUID
    type: str
    name: str
    kind: str | None
    disabled: bool


def _ref(client: ApiClient) -> ClientRef:
    return ClientRef(client.id, client.type, client.name, client.kind,
                     client.disabled_at is not None)


def client_ref(session: Session, client_id: uuid.UUID) -> ClientRef | None:
    """The principal with this id, or None."""
    client = session.get(ApiClient, client_id)
    return None if client is None else _ref(client)


def client_refs(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ClientRef]:
    """The principals with these ids, by id (one query)."""
    wanted = set(ids)
    if not wanted:
        return {}
    return {c.id: _ref(c) for c in session.scalars(
        select(ApiClient).where(ApiClient.id.in_(wanted)))}


def active_partners(session: Session, *, page: int,
                    page_size: int) -> tuple[list[ClientRef], int]:
    """One page of the partners not disabled, by name, and how many there are: the public
    partner directory lists them (names and kinds only; keys stay here)."""
    live = (ApiClient.type == "partner", ApiClient.disabled_at.is_(None))
    total = session.scalar(select(func.count()).select_from(ApiClient).where(*live)) or 0
    partners = session.scalars(
        select(ApiClient).where(*live).order_by(ApiClient.name, ApiClient.id)
        .limit(page_size).offset((page - 1) * page_size))
    return [_ref(c) for c in partners], total


def client_name_of(client_id: Any) -> ScalarSelect[str]:
    """Query piece: the name of the principal whose id is ``client_id`` (a column)."""
    return select(ApiClient.name).where(ApiClient.id == client_id).scalar_subquery()


# Accounts as other domains see them: citizens registers logins and shows their phone, audit
# names partners. They get these functions, never the models.

class PhoneTaken(Conflict):
    code = "phone_taken"
    title = "An account with this phone number already exists"


def _phone_bidx(deps: Deps, phone: PhoneNumber) -> bytes:
    return deps.bidx(phone.value, kind="phone")


def phone_taken(session: Session, deps: Deps, phone: PhoneNumber) -> bool:
    """Is there a login for this phone? Asked before the costly password hash."""
    bidx = _phone_bidx(deps, phone)
    return session.scalar(select(Account.id).where(Account.phone_bidx == bidx)) is not None


def create_account(session: Session, deps: Deps, *, role: str, phone: PhoneNumber,
                   password: str, now: datetime) -> uuid.UUID:
    """Add and flush a login for a checked phone and password; returns its id.

    The phone's unique index is the race guard: an account for this phone made meanwhile
    (committed, or concurrent on PostgreSQL) raises :class:`PhoneTaken`, rolling back only this
    insert. Callers ask :func:`phone_taken` first, in the order their own checks answer."""
    account = Account(
        id=uuid.uuid4(), role=role, created_at=now, password_changed_at=now,
        phone_enc=deps.cipher.encrypt(phone.value, context="accounts.phone"),
        phone_bidx=_phone_bidx(deps, phone), password_hash=deps.passwords.hash(password))
    with unique_or(session, PhoneTaken):
        session.add(account)
    return account.id


def _account(session: Session, account_id: uuid.UUID) -> Account:
    account = session.get(Account, account_id)  # one read however many of these are asked
    if account is None:
        raise NotFound("No such account")
    return account


def account_phone(session: Session, deps: Deps, account_id: uuid.UUID) -> PhoneNumber:
    """The login's phone number, decrypted (callers show it masked)."""
    encrypted = _account(session, account_id).phone_enc
    return PhoneNumber(deps.cipher.decrypt(encrypted, context="accounts.phone"))


def account_created_at(session: Session, account_id: uuid.UUID) -> datetime:
    return _account(session, account_id).created_at


def client_name(session: Session, client_id: uuid.UUID) -> str | None:
    """An API-key principal's display name, e.g. the partner named in a citizen's access log."""
    return session.scalar(select(ApiClient.name).where(ApiClient.id == client_id))


def client_named(session: Session, client_type: str, name: str) -> ClientRef | None:
    """The principal of this type with exactly this name (the demo seeding finds its own)."""
    client = session.scalar(select(ApiClient).where(ApiClient.type == client_type,
                                                    ApiClient.name == name).limit(1))
    return None if client is None else _ref(client)
