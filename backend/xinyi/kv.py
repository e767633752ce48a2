"""The key-value port: Redis in production, an in-process store for one process only.

Only ephemeral state lives here (one-time codes, replay guards, rate limits, caches, token
revocations that expire with the token); nothing that must survive a crash.

An unreachable Redis raises :class:`~xinyi.errors.ServiceUnavailable` (503 with Retry-After)
from every method, quickly: callers fail closed and their unit of work rolls back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from xinyi.errors import ServiceUnavailable

log = logging.getLogger(__name__)
_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def redis_options() -> dict[str, Any]:
    """Client options for every Redis connection. A dead Redis must answer in well under a
    second, not after redis-py's default of ten retries with backoff (seconds during which a
    gunicorn worker serves nobody). No retry is needed for a connection that died with a
    restart: the pool replaces a closed connection when it hands it out."""
    return {"socket_timeout": 0.5, "socket_connect_timeout": 0.25,
            "retry": Retry(NoBackoff(), 0)}


@contextmanager
def reachable(store: str) -> Iterator[None]:
    """Turn an unreachable Redis into :class:`ServiceUnavailable`, logged in one line with the
    cause's type only: its text names hosts, and a traceback adds nothing to a known outage."""
    try:
        yield
    except _UNREACHABLE as exc:
        log.warning("%s unreachable (%s)", store, type(exc).__name__,
                    extra={"event": "store_unreachable", "store": store})
        raise ServiceUnavailable() from None


class KeyValue(Protocol):
    """Every method raises :class:`ServiceUnavailable` when the store cannot be reached."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, *, ttl: int, only_if_absent: bool = False) -> bool:
        """Store ``value`` for ``ttl`` seconds; with ``only_if_absent`` it is atomic claim."""
        ...

    def set_many(self, items: list[tuple[str, bytes, int]]) -> None:
        """Store each ``(key, value, ttl)``, in one round trip where the store allows."""
        ...

    def delete(self, key: str) -> None: ...

    def ping(self) -> None: ...


class RedisKeyValue:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, **redis_options())

    def get(self, key: str) -> bytes | None:
        with reachable("kv"):
            value = self.client.get(key)
        return bytes(value) if value is not None else None

    def set(self, key: str, value: bytes, *, ttl: int, only_if_absent: bool = False) -> bool:
        with reachable("kv"):
            return bool(self.client.set(key, value, ex=ttl, nx=only_if_absent))

    def set_many(self, items: list[tuple[str, bytes, int]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, value, ttl in items:
            pipe.set(key, value, ex=ttl)
        with reachable("kv"):
            pipe.execute()

    def delete(self, key: str) -> None:
        with reachable("kv"):
            self.client.delete(key)

    def ping(self) -> None:
        with reachable("kv"):
            self.client.ping()


class MemoryKeyValue:
    """Valid for a single process only: two gunicorn workers would not share it."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= now:
            del self._data[key]
            return None
        return item[0]

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._live(key, time.monotonic())

    def set(self, key: str, value: bytes, *, ttl: int, only_if_absent: bool = False) -> bool:
        now = time.monotonic()
        with self._lock:
            if only_if_absent and self._live(key, now) is not None:
                return False
            self._data[key] = (value, now + ttl)
            if len(self._data) > 100_000:
                for k in [k for k, (_, exp) in self._data.items() if exp <= now]:
                    del self._data[k]
            return True

    def set_many(self, items: list[tuple[str, bytes, int]]) -> None:
        for key, value, ttl in items:
            self.set(key, value, ttl=ttl)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def ping(self) -> None:
        return None


def make_kv(url: str | None) -> KeyValue:
    if url:
        return RedisKeyValue(url)
    log.warning("no XINYI_REDIS_URL: using the in-process store, valid for one process only")
    return MemoryKeyValue()
