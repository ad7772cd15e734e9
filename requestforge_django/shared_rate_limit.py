"""``CacheRateLimiter``: one token bucket for every process, kept in the Django cache.

A partner's limit ("10 requests per second") is per API key, not per process: twenty
gunicorn and Celery processes with a per-process :class:`RateLimiter` of 10/s would
send up to 200/s. A client whose ``RATE_LIMIT`` has ``"SHARED": True`` gets this
limiter: the bucket lives under one cache key and every process draws from it.

How a permit is taken:

* **On Redis** (django-redis or Django's ``RedisCache``): one Lua script refills,
  reserves and stores in a single atomic round trip, using Redis's own ``TIME``, so
  the clocks of different hosts never disagree about the bucket.
* **Elsewhere** (database cache, memcached): :class:`RateLimiter`'s pure transition
  under a :class:`~requestforge_django.cache.DjangoCacheLease` (read, reserve, write),
  with the wall clock. Correct, but a few round trips per permit.

Reservations work as in :class:`RateLimiter`: a caller that must wait reserves its
turn in the shared bucket at once and sleeps locally, so processes are served in the
order they asked and the long-run rate is exact.

If the cache is unreachable the limiter falls back to this process's own bucket (a
per-process limit is better than refusing every call or sending without limit), logs
once, and goes back to the shared bucket when the cache answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import caches

from .cache import CacheOutageNotice, DjangoCacheLease, _redis_target
from .http.rate_limit import BucketState, RateLimiter

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


class CacheRateLimiter(RateLimiter):
    """A :class:`RateLimiter` whose bucket is shared through the cache ``cache_alias`` under ``key``."""

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
        self.cache_alias = cache_alias
        self.key = key
        self._local: BucketState | None = None
        self._outage = CacheOutageNotice(f"Rate limiter {name or key!r}", "limiting this process alone")

    # -- Redis: one atomic script per permit ---------------------------------------------
    def _reserve(self, permits: int, *, block: bool, max_wait: float | None) -> tuple[bool, float]:
        outcome = self._reserve_in_redis(permits, may_wait=block, max_wait=max_wait)
        return super()._reserve(permits, block=block, max_wait=max_wait) if outcome is None else outcome

    def _reserve_in_redis(self, permits: int, *, may_wait: bool, max_wait: float | None) -> tuple[bool, float] | None:
        """``(granted, wait)`` from the Lua script; ``None`` when the cache is not Redis or is down."""
        try:
            target = _redis_target(self.cache_alias, caches[self.cache_alias], self.key)
            if target is None:
                return None
            client, raw_key = target
            limit = -1.0 if max_wait is None else max_wait
            granted, wait = client.eval(_RESERVE_SCRIPT, 1, raw_key, permits, self.rate, self.burst, int(may_wait), limit)
        except Exception as exc:
            self._outage.report(self.cache_alias, exc)
            return None
        self._outage.clear()
        return bool(int(granted)), float(wait)

    # -- other caches: the base transition under a lease ------------------------------------
    def _load(self) -> BucketState | None:
        value = caches[self.cache_alias].get(self.key)
        if isinstance(value, dict) and {"tokens", "updated_at"} <= value.keys():
            return BucketState(float(value["tokens"]), float(value["updated_at"]))
        return None

    def _store(self, state: BucketState) -> None:
        timeout = max(1.0, self.burst / self.rate + 60)
        caches[self.cache_alias].set(self.key, {"tokens": state.tokens, "updated_at": state.updated_at}, timeout=timeout)

    def _update(self, transition: Callable[[BucketState | None, float], tuple[BucketState | None, R]]) -> R:
        with self._lock:
            lease = DjangoCacheLease(self.cache_alias, f"{self.key}:lock", LEASE_TIMEOUT)
            try:
                if not lease.acquire(blocking=True, timeout=LEASE_WAIT):
                    raise TimeoutError("rate-limit lease busy")
                try:
                    current = self._load()
                    new, result = transition(current, self._clock())
                    if new is not None and new != current:
                        self._store(new)
                    self._outage.clear()
                    return result
                finally:
                    lease.release()
            except Exception as exc:
                self._outage.report(self.cache_alias, exc)
                new, result = transition(self._local, self._clock())
                if new is not None:
                    self._local = new
                return result

    def __repr__(self) -> str:
        return f"CacheRateLimiter(name={self.name!r}, cache_alias={self.cache_alias!r}, key={self.key!r}, rate={self.rate:g})"
