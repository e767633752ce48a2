"""Ed25519 signing keys kept in the database, private halves encrypted with the data key.

Purposes: ``credential`` (QR credentials, published in the JWKS) and ``audit`` (the access
log's tree heads, and its older checkpoints). Rotation retires the current key; a retired key
stays published for the grace its caller names: the credentials domain passes the longest
lifetime of what the key signed (prefetch windows included), which this module cannot know
without depending on it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from xinyi.deps import Deps
from xinyi.jwk import SigningKey, public_key_from_jwk
from xinyi.signing.models import SigningKeyRow
from xinyi.uow import after_commit, after_rollback

PURPOSES = ("credential", "audit", "commitment")


def _context(kid: str) -> str:
    return f"signing_keys.private:{kid}"


def create_key(session: Session, deps: Deps, purpose: str) -> SigningKeyRow:
    key = SigningKey.generate()
    row = SigningKeyRow(kid=key.kid, purpose=purpose, public_jwk=key.public_jwk(),
                        private_enc=deps.cipher.encrypt(key.private_bytes_raw().hex(),
                                                        context=_context(key.kid)),
                        created_at=deps.clock())
    session.add(row)
    return row


def rotate(session: Session, deps: Deps, purpose: str) -> SigningKeyRow:
    """Retire the live key(s) of this purpose and start signing with a new one."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}")
    now = deps.clock()
    for row in session.scalars(select(SigningKeyRow).where(
            SigningKeyRow.purpose == purpose, SigningKeyRow.retired_at.is_(None))):
        row.retired_at = now
    new = create_key(session, deps, purpose)
    after_commit(session, deps.cache.clear)
    return new


def _load_private(deps: Deps, row: SigningKeyRow) -> SigningKey:
    raw = bytes.fromhex(deps.cipher.decrypt(row.private_enc, context=_context(row.kid)))
    key = SigningKey.from_private_bytes_raw(raw)
    if key.kid != row.kid:
        raise RuntimeError("stored signing key does not match its kid")
    return key


def signing_key(session: Session, deps: Deps, purpose: str) -> SigningKey:
    """The newest live key of this purpose, created on first use."""
    return deps.cache.get_or_load(("sign", purpose),
                                  lambda: _load_signing_key(session, deps, purpose))


def _load_signing_key(session: Session, deps: Deps, purpose: str) -> SigningKey:
    row = session.scalar(select(SigningKeyRow).where(
        SigningKeyRow.purpose == purpose, SigningKeyRow.retired_at.is_(None))
        .order_by(SigningKeyRow.created_at.desc()).limit(1))
    if row is None:
        # Created in the caller's unit: should it not commit, the cached key must go too, or
        # this process would sign with a key nobody can verify.
        row = create_key(session, deps, purpose)
        after_rollback(session, lambda: deps.cache.forget(("sign", purpose)))
    return _load_private(deps, row)


def _published(session: Session, purpose: str, now: datetime,
               grace: timedelta) -> list[SigningKeyRow]:
    return list(session.scalars(select(SigningKeyRow).where(
        SigningKeyRow.purpose == purpose,
        SigningKeyRow.retired_at.is_(None) | (SigningKeyRow.retired_at > now - grace))
        .order_by(SigningKeyRow.created_at.desc())))


def public_jwks(session: Session, now: datetime, purpose: str = "credential", *,
                retired_grace: timedelta) -> list[dict[str, Any]]:
    """Live keys and those retired less than ``retired_grace`` ago, newest first."""
    return [dict(row.public_jwk) for row in _published(session, purpose, now, retired_grace)]


def verification_keys(session: Session, deps: Deps, purpose: str = "credential", *,
                      retired_grace: timedelta,
                      fresh: bool = False) -> dict[str, Ed25519PublicKey]:
    """The keys :func:`public_jwks` publishes, by kid. Cached for seconds per purpose (so
    one purpose has one grace); ``fresh`` reads them again (another process may have
    rotated), at most once per cache lifetime: a stream of made-up ``kid`` values costs no
    more reads."""
    if fresh:
        first = object()
        if deps.cache.get_or_load(("verify-reloaded", purpose), lambda: first) is first:
            deps.cache.forget(("verify", purpose))
    return deps.cache.get_or_load(("verify", purpose), lambda: {
        row.kid: public_key_from_jwk(row.public_jwk)
        for row in _published(session, purpose, deps.clock(), retired_grace)})


def any_public_key(session: Session, kid: str) -> Ed25519PublicKey | None:
    """Any key ever used (retired included), e.g. to check an old audit checkpoint."""
    row = session.get(SigningKeyRow, kid)
    return None if row is None else public_key_from_jwk(row.public_jwk)


def public_jwk(session: Session, kid: str) -> dict[str, Any] | None:
    """The public JWK of any key ever used, retired included (to hand out with a signature)."""
    row = session.get(SigningKeyRow, kid)
    return None if row is None else dict(row.public_jwk)
