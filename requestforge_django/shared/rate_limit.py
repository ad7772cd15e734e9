"""``CacheRateLimiter``: one token bucket for every process, kept in the Django cache.

A partner's limit ("10 requests per second") is per API key, not per process: twenty
gunicorn and Celery processes with a per-process :class:`RateLimiter` of 10/s would
send up to 200/s. A client whose ``RATE_LIMIT`` has ``"SHARED": True`` gets
:class:`CacheRateLimiter`: the core :class:`RateLimiter` with its bucket in a
:class:`CacheBucketStore` under one cache key, so every process draws from it.

How a permit is taken:

* **On Redis** (django-redis or Django's ``RedisCache``): one Lua script refills,
  reserves and stores in a single atomic round trip, using Redis's own ``TIME``, so
  the clocks of different hosts never disagree about the bucket.
* **Elsewhere** (database cache, memcached): :class:`RateLimiter`'s pure transition
  under a :class:`~.lease.DjangoCacheLease` (read, reserve, write),
  with the wall clock. Correct, but a few round trips per permit.

Reservations work as in :class:`RateLimiter`: a caller that must wait reserves its
turn in the shared bucket at once and sleeps locally, so processes are served in the
order they asked and the long-run rate is exact.

If the cache is unreachable the limiter falls back to this process's own bucket (a
per-process limit is better than refusing every call or sending without limit), logs
once, and goes back to the shared bucket when the cache answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import caches

from ..http.rate_limit import BucketState, BucketStore, RateLimiter
from .backends import redis_target
from .lease import CacheOutageNotice, DjangoCacheLease

__all__ = ["CacheBucketStore", "CacheRateLimiter"]

R = TypeVar("R")

#: Seconds a transition waits for the lease (non-Redis caches) before using the local bucket.
LEASE_WAIT = 1.0
LEASE_TIMEOUT = 5.0

# Returns {granted (0/1), wait seconds as text}; Lua numbers would be truncated to integers.
_RESERVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local permits = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local may_wait = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated_at')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil or updated == nil then
  tokens = burst
  updated = now
end
if now > updated then
  tokens = math.min(burst, tokens + (now - updated) * rate)
  updated = now
end
local left = tokens - permits
local wait = 0
if left < 0 then wait = -left / rate end
if wait > 0 and (may_wait == 0 or (max_wait >= 0 and wait > max_wait)) then
  return {0, tostring(wait)}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(left), 'updated_at', tostring(updated))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate + wait) + 60)
return {1, tostring(wait)}
"""


class CacheBucketStore(BucketStore):
    """A token bucket under ``key`` in the cache ``cache_alias``; a bucket of this process's own while the cache is down.

    ``rate`` and ``burst`` set how long an entry outlives its last use.
    """

    def __init__(self, cache_alias: str, key: str, *, rate: float, burst: int, label: str = "") -> None:
        self.cache_alias = cache_alias
        self.key = key
        self._rate = rate
        self._burst = burst
        self._lock = threading.Lock()
        self._local: BucketState | None = None
        self._outage = CacheOutageNotice(f"Rate limiter {label or key!r}", "limiting this process alone")

    # -- Redis: one atomic script per permit ---------------------------------------------
    def reserve(
        self, permits: int, *, rate: float, burst: int, block: bool, max_wait: float | None, clock: Callable[[], float]
    ) -> tuple[bool, float]:
        outcome = self._reserve_in_redis(permits, rate=rate, burst=burst, may_wait=block, max_wait=max_wait)
        if outcome is None:
            return super().reserve(permits, rate=rate, burst=burst, block=block, max_wait=max_wait, clock=clock)
        return outcome

    def _reserve_in_redis(
        self, permits: int, *, rate: float, burst: int, may_wait: bool, max_wait: float | None
    ) -> tuple[bool, float] | None:
        """``(granted, wait)`` from the Lua script; ``None`` when the cache is not Redis or is down."""
        try:
            target = redis_target(self.cache_alias, caches[self.cache_alias], self.key)
            if target is None:
                return None
            client, raw_key = target
            limit = -1.0 if max_wait is None else max_wait
            granted, wait = client.eval(_RESERVE_SCRIPT, 1, raw_key, permits, rate, burst, int(may_wait), limit)
        except Exception as exc:
            self._outage.report(self.cache_alias, exc)
            return None
        self._outage.clear()
        return bool(int(granted)), float(wait)

    # -- other caches: the transition under a lease ------------------------------------------
    def read(self) -> BucketState | None:
        """The bucket as every process sees it: on Redis the hash the script keeps, else the cache entry."""
        try:
            target = redis_target(self.cache_alias, caches[self.cache_alias], self.key)
            if target is not None:
                client, raw_key = target
                tokens, updated_at = client.hmget(raw_key, "tokens", "updated_at")
                self._outage.clear()
                return BucketState(float(tokens), float(updated_at)) if tokens is not None and updated_at is not None else None
        except Exception as exc:
            self._outage.report(self.cache_alias, exc)
            return self._local
        with self._lock:
            return self._load()

    def update(self, step: Callable[[BucketState | None], tuple[BucketState | None, R]]) -> R:
        with self._lock:
            lease = DjangoCacheLease(self.cache_alias, f"{self.key}:lock", LEASE_TIMEOUT)
            try:
                if not lease.acquire(blocking=True, timeout=LEASE_WAIT):
                    raise TimeoutError("rate-limit lease busy")
                try:
                    new, result = step(self._load())
                    if new is not None:
                        self._store(new)
                    self._outage.clear()
                    return result
                finally:
                    lease.release()
            except Exception as exc:
                self._outage.report(self.cache_alias, exc)
                new, result = step(self._local)
                if new is not None:
                    self._local = new
                return result

    def write(self, value: BucketState) -> None:
        with self._lock:
            self._store(value)

    def _load(self) -> BucketState | None:
        value = caches[self.cache_alias].get(self.key)
        if isinstance(value, dict) and {"tokens", "updated_at"} <= value.keys():
            return BucketState(float(value["tokens"]), float(value["updated_at"]))
        return None

    def _store(self, state: BucketState) -> None:
        timeout = max(1.0, self._burst / self._rate + 60)
        caches[self.cache_alias].set(self.key, {"tokens": state.tokens, "updated_at": state.updated_at}, timeout=timeout)

    def __repr__(self) -> str:
        return f"CacheBucketStore(cache_alias={self.cache_alias!r}, key={self.key!r})"


class CacheRateLimiter(RateLimiter):
    """A :class:`RateLimiter` with a :class:`CacheBucketStore`: one bucket shared through ``cache_alias`` under ``key``.

    Only the constructor differs from the core class; ``clock`` is a wall clock (default ``time.time``).
    """

    store: CacheBucketStore

    def __init__(
        self,
        cache_alias: str,
        key: str,
        rate: float,
        burst: int | None = None,
        *,
        block: bool = True,
        max_wait: float | None = None,
        name: str = "",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        super().__init__(rate, burst, block=block, max_wait=max_wait, name=name, clock=clock, sleep=sleep)
        # The store needs the validated rate and burst (burst defaults from rate).
        self.store = CacheBucketStore(cache_alias, key, rate=self.rate, burst=self.burst, label=name)

    @property
    def cache_alias(self) -> str:
        return self.store.cache_alias

    @property
    def key(self) -> str:
        return self.store.key

    def __repr__(self) -> str:
        return f"CacheRateLimiter(name={self.name!r}, cache_alias={self.cache_alias!r}, key={self.key!r}, rate={self.rate:g})"
