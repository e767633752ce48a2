"""The components a service needs (their types): :mod:`xinyi.wiring` builds them once from
settings, in the app factory or a command."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import Select
from sqlalchemy.orm import Session

from xinyi.auth.keycache import KeyCache
from xinyi.auth.passwords import Passwords
from xinyi.auth.ratelimit import RateLimiter
from xinyi.auth.tokens import AccessTokens
from xinyi.config import Settings
from xinyi.db import Database, utcnow
from xinyi.kv import KeyValue
from xinyi.localcache import LocalCache
from xinyi.notify import Sender
from xinyi.pii import BlindIndex, FieldCipher
from xinyi.realname import RealNameVerifier


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
    sender: Sender
    rescore: Rescore
    clock: Callable[[], datetime] = utcnow
    cache: LocalCache = field(default_factory=LocalCache)
    # API-key authentications, each trusted for under a second (auth/keycache.py).
    api_keys: KeyCache = field(default_factory=KeyCache)
