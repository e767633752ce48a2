"""A bounded, thread-safe memory of credential ids (``jti``) already accepted."""

from __future__ import annotations

import heapq
import threading
from datetime import UTC, datetime

__all__ = ["SeenJtiCache"]


def _timestamp(value: datetime, name: str) -> float:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.timestamp()


class SeenJtiCache:
    """Remembers each ``jti`` until its ``expires_at`` so a credential is accepted only once.

    In memory, per process, safe to share between threads. It holds at most ``max_entries``
    ids: ids whose time has passed are dropped first; if it is still full, the id that would
    expire soonest is dropped (counted in :attr:`evicted_unexpired`; size the cache so that
    this stays zero — at most one entry per credential scanned in the last few minutes).
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int):
            raise TypeError("max_entries must be an int")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []  # (expires_at, jti), same entries as _expiry
        self._lock = threading.Lock()
        self._evicted_unexpired = 0

    @property
    def max_entries(self) -> int:
        return self._max_entries

    @property
    def evicted_unexpired(self) -> int:
        """How many ids were dropped before their time because the cache was full."""
        with self._lock:
            return self._evicted_unexpired

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def clear(self) -> None:
        with self._lock:
            self._expiry.clear()
            self._heap.clear()

    def check_and_add(self, jti: str, expires_at: datetime, *, now: datetime | None = None) -> bool:
        """Atomically: ``False`` if ``jti`` is remembered and not yet past its time; otherwise
        remember it until ``expires_at`` and return ``True``.

        ``now`` defaults to the current time; pass the same clock the caller verified with.
        """
        if not isinstance(jti, str):
            raise TypeError("jti must be a string")
        until = _timestamp(expires_at, "expires_at")
        now_ts = datetime.now(UTC).timestamp() if now is None else _timestamp(now, "now")
        with self._lock:
            self._drop_expired(now_ts)
            if jti in self._expiry:
                return False
            if until <= now_ts:
                return True  # already past its time: nothing to remember
            while len(self._expiry) >= self._max_entries and self._heap:
                self._pop_soonest()
                self._evicted_unexpired += 1
            self._expiry[jti] = until
            heapq.heappush(self._heap, (until, jti))
            return True

    # The two helpers below run with the lock held.

    def _drop_expired(self, now_ts: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now_ts:
            self._pop_soonest()

    def _pop_soonest(self) -> None:
        until, jti = heapq.heappop(self._heap)
        if self._expiry.get(jti) == until:
            del self._expiry[jti]
