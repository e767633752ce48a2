"""SeenJtiCache: single use, bounded memory, thread safety."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from xinyi_partner import SeenJtiCache

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_first_sight_then_seen() -> None:
    cache = SeenJtiCache()
    assert cache.check_and_add("a", at(180), now=NOW) is True
    assert cache.check_and_add("a", at(180), now=at(10)) is False
    assert cache.check_and_add("a", at(999), now=at(179)) is False
    assert cache.check_and_add("b", at(180), now=NOW) is True
    assert len(cache) == 2


def test_forgets_after_expiry() -> None:
    cache = SeenJtiCache()
    assert cache.check_and_add("a", at(180), now=NOW)
    assert cache.check_and_add("a", at(400), now=at(180)) is True
    assert cache.check_and_add("a", at(400), now=at(200)) is False


def test_already_expired_entries_are_not_stored() -> None:
    cache = SeenJtiCache()
    assert cache.check_and_add("old", at(-1), now=NOW) is True
    assert len(cache) == 0


def test_bounded_evicts_expired_first() -> None:
    cache = SeenJtiCache(max_entries=3)
    cache.check_and_add("short", at(10), now=NOW)
    cache.check_and_add("long1", at(500), now=NOW)
    cache.check_and_add("long2", at(600), now=NOW)
    assert cache.check_and_add("new", at(700), now=at(20)) is True
    assert len(cache) == 3
    assert cache.evicted_unexpired == 0
    for jti in ("long1", "long2", "new"):
        assert cache.check_and_add(jti, at(900), now=at(21)) is False


def test_bounded_when_full_of_live_entries_drops_the_soonest_to_expire() -> None:
    cache = SeenJtiCache(max_entries=3)
    cache.check_and_add("b", at(300), now=NOW)
    cache.check_and_add("a", at(200), now=NOW)
    cache.check_and_add("c", at(400), now=NOW)
    assert cache.check_and_add("d", at(500), now=NOW) is True
    assert len(cache) == 3
    assert cache.evicted_unexpired == 1
    for jti in ("b", "c", "d"):
        assert cache.check_and_add(jti, at(900), now=NOW) is False


def test_stays_bounded_under_load() -> None:
    cache = SeenJtiCache(max_entries=1000)
    for i in range(10_000):
        assert cache.check_and_add(f"jti-{i}", at(i / 10 + 180), now=at(i / 10))
        assert len(cache) <= 1000
    assert len(cache._heap) == len(cache)  # no hidden growth


def test_thread_safe_exactly_one_winner_per_jti() -> None:
    cache = SeenJtiCache()
    jtis = [f"jti-{i}" for i in range(2000)]
    wins: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        mine = sum(cache.check_and_add(j, at(180), now=NOW) for j in jtis)
        with lock:
            wins.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(wins) == len(jtis)
    assert len(cache) == len(jtis)


def test_real_clock_default() -> None:
    cache = SeenJtiCache()
    soon = datetime.now(UTC) + timedelta(seconds=60)
    assert cache.check_and_add("x", soon) is True
    assert cache.check_and_add("x", soon) is False


def test_argument_checks() -> None:
    with pytest.raises(ValueError):
        SeenJtiCache(max_entries=0)
    cache = SeenJtiCache()
    with pytest.raises(ValueError):
        cache.check_and_add("x", datetime(2030, 1, 1))  # naive
    with pytest.raises(TypeError):
        cache.check_and_add("x", 12345)  # type: ignore[arg-type]
