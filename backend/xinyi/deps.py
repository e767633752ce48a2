"""The components a service needs (their types): :mod:`xinyi.wiring` builds them once from
settings, in the app factory or a command."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import Select
from sqlalchemy.orm import Session

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

#: How long a process may keep serving an API key it read (revocation takes effect within it).
API_KEY_CACHE_SECONDS = 1.0


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
    #: API keys as last read (by key id), for at most API_KEY_CACHE_SECONDS: a key revoked
    #: or a principal disabled in another process is refused within that bound; in this
    #: process at once (the change clears it on commit).
    api_keys: LocalCache = field(
        default_factory=lambda: LocalCache(API_KEY_CACHE_SECONDS, max_entries=10_000))
