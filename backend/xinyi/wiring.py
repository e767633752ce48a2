"""The composition root: builds the components every service gets (:class:`Deps`) from
settings, choosing each port's implementation. Nothing imports this but entry points."""

from __future__ import annotations

from xinyi.auth.passwords import Passwords
from xinyi.auth.ratelimit import RateLimiter
from xinyi.auth.tokens import AccessTokens
from xinyi.config import Settings
from xinyi.db import Database
from xinyi.deps import Deps
from xinyi.kv import make_kv
from xinyi.notify import make_sender
from xinyi.pii import BlindIndex, FieldCipher
from xinyi.realname import make_verifier
from xinyi.scoring.service import recompute_subjects


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
        verifier=make_verifier(settings),
        sender=make_sender(settings.message_sender or "log"),
        rescore=recompute_subjects,
    )
