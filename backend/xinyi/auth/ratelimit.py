"""Rate limits on top of the ``limits`` library: Redis in production, memory for one process.

They fail closed: with Redis unreachable a hit raises :class:`ServiceUnavailable` (503), so an
outage means no login rather than unlimited attempts.
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from xinyi.errors import RateLimited
from xinyi.kv import reachable, redis_options


class RateLimiter:
    def __init__(self, redis_url: str | None) -> None:
        self._storage = (storage_from_string(redis_url, **redis_options()) if redis_url
                         else storage_from_string("memory://"))
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)

    def hit(self, rule: str, *identifiers: str) -> None:
        """Count one attempt; raise :class:`RateLimited` with a Retry-After once over the rule."""
        item = parse(rule)
        with reachable("rate limiter"):
            if self._limiter.hit(item, "xinyi", *identifiers):
                return
            reset_at, _remaining = self._limiter.get_window_stats(item, "xinyi", *identifiers)
        raise RateLimited(max(1, math.ceil(reset_at - time.time())))

    def clear(self, rule: str, *identifiers: str) -> None:
        with reachable("rate limiter"):
            self._limiter.clear(parse(rule), "xinyi", *identifiers)
