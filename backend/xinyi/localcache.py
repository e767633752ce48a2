"""A small per-process, per-app cache with expiry, for hot-path reads that may be seconds old
(signing keys, benefit rules). Each app (and so each test) gets its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class LocalCache:
    def __init__(self, ttl_seconds: float = 10.0) -> None:
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._data: dict[Any, tuple[float, Any]] = {}

    def get_or_load(self, name: Any, load: Callable[[], T]) -> T:
        with self._lock:
            hit = self._data.get(name)
            if hit and hit[0] > time.monotonic():
                return hit[1]  # type: ignore[no-any-return]
        value = load()
        with self._lock:
            self._data[name] = (time.monotonic() + self._ttl, value)
        return value

    def forget(self, name: Any) -> None:
        with self._lock:
            self._data.pop(name, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
