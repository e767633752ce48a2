"""The components a service needs, built once from settings in the app factory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import Select
from sqlalchemy.orm import Session

from xinyi.auth.passwords import Passwords
from xinyi.auth.ratelimit import RateLimiter
from xinyi.auth.realname import RealNameVerifier, make_verifier
from xinyi.auth.tokens import AccessTokens
from xinyi.config import Settings
from xinyi.db import Database, utcnow
from xinyi.kv import KeyValue, make_kv
from xinyi.localcache import LocalCache
from xinyi.pii import BlindIndex, FieldCipher
from xinyi.scoring.service import recompute_subjects


class Rescore(Protocol):
    """Recompute the scores of these subjects inside the caller's unit of work. Records and
    registration call it through here, so that they need not import scoring (which reads
    records): the dependency points one way."""

    def __call__(self, session: Session, bidxs: Sequence[bytes] | Select[Any], *,
                 now: datetime, today: date) -> int: ...


@dataclass
class Deps:
    settings: Settings
    db: Database
    kv: KeyValue
    cipher: FieldCipher
    bidx: BlindIndex
    passwords: Passwords
    tokens: AccessTokens
    limiter: RateLimiter
    verifier: RealNameVerifier
    rescore: Rescore
    clock: Callable[[], datetime] = utcnow
    cache: LocalCache = field(default_factory=LocalCache)


def build_deps(settings: Settings) -> Deps:
    return Deps(
        settings=settings,
        db=Database(settings.database_url),
        kv=make_kv(settings.redis_url),
        cipher=FieldCipher(settings.data_keys, settings.data_key_current),
        bidx=BlindIndex(settings.blind_index_key),
        passwords=Passwords(
            time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
        ),
        tokens=AccessTokens(
            settings.jwt_private_key_pem,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_seconds,
        ),
        limiter=RateLimiter(settings.redis_url),
        verifier=make_verifier(settings.realname_verifier),
        rescore=recompute_subjects,
    )
