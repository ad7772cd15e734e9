"""``CacheRateLimiter``: one bucket for every process, on Redis (atomic script) and the database cache (lease)."""

from __future__ import annotations

from typing import Any

import pytest

from requestforge_django.http.exceptions import RateLimitExceeded
from requestforge_django.shared.rate_limit import CacheRateLimiter
from tests.support.wall_clock import WallClock


def two_processes(alias: str, **options: Any) -> tuple[CacheRateLimiter, CacheRateLimiter, list[float]]:
    """Two limiters on one key (what two processes build), sleeping into a shared list instead of sleeping."""
    slept: list[float] = []
    made = [CacheRateLimiter(alias, "rf:ratelimit:partner", 10, 5, sleep=slept.append, clock=WallClock(), **options) for _ in range(2)]
    return made[0], made[1], slept


def test_the_burst_is_shared(shared_alias: str) -> None:
    here, there, _ = two_processes(shared_alias)
    granted = [limiter.try_acquire() for limiter in (here, there, here, there, here, there)]
    assert granted == [True, True, True, True, True, False]


def test_waiters_reserve_their_turns_across_processes(shared_alias: str) -> None:
    here, there, slept = two_processes(shared_alias)
    for _ in range(5):
        here.acquire()
    assert slept == []
    here.acquire()
    there.acquire()
    here.acquire()
    # Redis refills by its own clock, so a few ms may have passed between the calls.
    assert slept == pytest.approx([0.1, 0.2, 0.3], abs=0.02)


def test_refusing_limiter_consumes_nothing(shared_alias: str) -> None:
    here, there, _ = two_processes(shared_alias, block=False)
    for _ in range(5):
        here.acquire()
    with pytest.raises(RateLimitExceeded) as info:
        there.acquire()
    assert info.value.retry_after == pytest.approx(0.1, abs=0.02)
    with pytest.raises(RateLimitExceeded):
        there.acquire()  # still 0.1 s away: the refused call did not reserve anything


def test_max_wait(shared_alias: str) -> None:
    here, there, slept = two_processes(shared_alias, max_wait=0.15)
    for _ in range(5):
        here.acquire()
    there.acquire()  # 0.1 s: within max_wait
    with pytest.raises(RateLimitExceeded):
        here.acquire()  # would be 0.2 s
    assert slept == pytest.approx([0.1], abs=0.02)


@pytest.mark.django_db(databases=[])
def test_an_unreachable_cache_limits_locally(settings: Any) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        },
    }
    limiter = CacheRateLimiter("down", "rf:ratelimit:x", 10, 2, block=False, clock=WallClock())
    assert limiter.try_acquire() and limiter.try_acquire()
    assert not limiter.try_acquire()


def test_available_reads_the_shared_bucket(shared_alias: str) -> None:
    # On Redis the script keeps the bucket as a hash, which a plain cache GET cannot read
    # (WRONGTYPE): `available` must read what the script wrote.
    here, there, _ = two_processes(shared_alias)
    assert here.available == pytest.approx(5, abs=0.1)
    for _ in range(3):
        there.try_acquire()
    assert here.available == pytest.approx(2, abs=0.1)
