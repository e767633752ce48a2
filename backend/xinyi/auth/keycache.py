"""API-key authentications remembered in the process for under a second.

Every partner request presents its key; checking it costs a database round trip (the key, its
client and whether either is revoked or disabled). This cache keeps the principal of a key
that authenticated, keyed by the key id **and** a hash of the presented secret, so a wrong
secret never matches an entry made by the right one and goes to the database (and is
refused there) like any other.

How stale an entry may be is the bound on how late a revocation or a disabled partner takes
effect in *another* process: an entry expires ``ttl`` after the moment its database read
**began** (not when it ended), so no process answers from a read older than ``ttl``. The
process that revokes or disables clears its own cache once that commits. Nothing here depends
on Redis, so an outage of Redis neither lengthens the bound nor disables the cache.

Refusals are never cached: a refused key costs the database read each time, as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from xinyi.auth.principal import Principal

DEFAULT_TTL_SECONDS = 0.5  # well inside the 1 s promised for a revocation on every process
MAX_ENTRIES = 4096  # live keys are few (two per client at most); this bounds a flood of them


class KeyCache:
    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= ttl_seconds <= 1:
            raise ValueError("an API key may be trusted without the database for at most 1 s")
        self._ttl, self._clock = ttl_seconds, clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, bytes], tuple[float, Principal]] = {}

    @property
    def ttl_seconds(self) -> float:
        return self._ttl

    def started(self) -> float:
        """The moment a database read begins: pass it to :meth:`put` after the read."""
        return self._clock()

    def get(self, key_id: str, secret_hash: bytes) -> Principal | None:
        entry = self._entries.get((key_id, secret_hash))  # a dict read is atomic
        if entry is None:
            return None
        if entry[0] <= self._clock():
            with self._lock:
                if self._entries.get((key_id, secret_hash)) is entry:
                    del self._entries[(key_id, secret_hash)]
            return None
        return entry[1]

    def put(self, key_id: str, secret_hash: bytes, principal: Principal,
            read_started: float) -> None:
        if self._ttl <= 0:
            return
        expires = read_started + self._ttl
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                now = self._clock()
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
            self._entries[(key_id, secret_hash)] = (expires, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
