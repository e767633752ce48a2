"""A small per-process, per-app cache with expiry, for hot-path reads that may be seconds old
(signing keys, benefit rules). Each app (and so each test) gets its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class LocalCache:
    """``ttl_seconds``: how long a loaded value is served. ``max_entries``: past this many,
    the expired entries are dropped (and everything, if none has expired). ``clock``: the
    monotonic clock (a test moves its own)."""

    def __init__(self, ttl_seconds: float = 10.0, *, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._data: dict[Any, tuple[float, Any]] = {}

    def get_or_load(self, name: Any, load: Callable[[], T], *,
                    keep: Callable[[T], bool] | None = None) -> T:
        """The cached value of ``name``, or ``load()``; a loaded value is kept only if
        ``keep(value)`` (default: always)."""
        with self._lock:
            hit = self._data.get(name)
            if hit and hit[0] > self._clock():
                return hit[1]  # type: ignore[no-any-return]
        value = load()
        if keep is not None and not keep(value):
            return value
        with self._lock:
            now = self._clock()
            if len(self._data) >= self._max:
                self._data = {k: v for k, v in self._data.items() if v[0] > now}
                if len(self._data) >= self._max:
                    self._data.clear()
            self._data[name] = (now + self.ttl, value)
        return value

    def forget(self, name: Any) -> None:
        with self._lock:
            self._data.pop(name, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
