"""A lease on one Django cache key, held by one process at a time, and a once-per-outage warning.

The lease is built on the cache's atomic ``add`` with a unique owner value and an
expiry, so a crashed holder blocks the others for at most the lease timeout, and it
is released only by its owner (atomically with a Lua script on Redis).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid

from django.core.cache import caches

from .backends import backend_seconds, is_redis, redis_target
from .errors import TokenStorageError, short_text

__all__ = ["CacheOutageNotice", "DjangoCacheLease"]

# The logger name predates this package; logging configurations filter on it.
logger = logging.getLogger("requestforge_django.cache")

#: Compare-and-delete: the lease is removed only if it still carries our owner value,
#: in one atomic step, so a holder whose lease expired cannot delete its successor's.
_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class CacheOutageNotice:
    """Logs that a cache is unreachable once per outage, not once per call.

    For shared state that degrades to a per-process copy while the cache is down (the
    shared circuit breaker and rate limiter): every request would otherwise log the
    same warning. :meth:`clear` after a successful cache call re-arms it.
    """

    def __init__(self, what: str, fallback: str) -> None:
        self.what = what
        self.fallback = fallback
        self._down = threading.Event()

    def report(self, cache_alias: str, exc: BaseException) -> None:
        if not self._down.is_set():
            self._down.set()
            logger.warning("%s: cache %r unreachable (%s); %s until it answers", self.what, cache_alias, type(exc).__name__, self.fallback)

    def clear(self) -> None:
        self._down.clear()


class DjangoCacheLease:
    """A lease on one cache key, implementing :class:`~requestforge_django.tokens.storage.TokenLock`.

    ``acquire`` is the cache's atomic ``add`` of a unique owner value with an expiry of
    ``lease_timeout`` seconds; while blocking it polls with a short, jittered,
    capped backoff (a Django cache has no portable way to wait for a key to vanish).
    ``release`` deletes the key only if it still holds our owner value:

    * on django-redis (default or sentinel client) and on Django's own ``RedisCache``
      with its default serializer, atomically with a Lua compare-and-delete;
    * elsewhere (database cache, memcached, sharded/herd django-redis clients) with a
      get, compare and delete. There is a small race there, and only after our lease
      has already expired: if another process takes the lease between our get and
      our delete, we delete *its* lease and a third process may enter early. A lease
      only expires under its holder when the holder overran ``lease_timeout``, so
      choose that generously above a token fetch's timeout.

    The database cache's ``add`` is atomic for a missing key (the insert hits the
    primary key) but not when two processes both replace an *expired* row; acquiring
    there reads the value back to shrink that window. Its expiry has one-second
    resolution, so leases there last up to one second longer than asked.

    One object is one lease: do not share an object between threads that acquire it
    concurrently (ask the storage for a lease per acquisition instead).
    With django-redis ``IGNORE_EXCEPTIONS`` a down Redis looks like a taken lease:
    ``acquire`` then waits and returns ``False`` instead of raising.
    """

    #: First and largest pause between two attempts while waiting (seconds).
    POLL_INITIAL: float = 0.005
    POLL_MAX: float = 0.05

    def __init__(self, cache_alias: str, lock_key: str, lease_timeout: float) -> None:
        if lease_timeout <= 0:
            raise ValueError("lease_timeout must be positive")
        self.cache_alias = cache_alias
        self.lock_key = lock_key
        self.lease_timeout = float(lease_timeout)
        self._owner: int | None = None
        self._state_lock = threading.Lock()

    @property
    def owned(self) -> bool:
        """Whether this object acquired the lease and has not released it (it may have expired since)."""
        return self._owner is not None

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lease; when ``blocking``, keep trying for ``timeout`` seconds (``None``/negative: the lease timeout)."""
        # An int owner is stored unpickled by both Redis backends, so the release
        # script can compare the raw value; uuid4 makes it unique across hosts.
        owner = uuid.uuid4().int
        wait = self.lease_timeout if timeout is None or timeout < 0 else float(timeout)
        deadline = time.monotonic() + wait
        pause = self.POLL_INITIAL
        while True:
            if self._try_add(owner):
                with self._state_lock:
                    self._owner = owner
                return True
            remaining = deadline - time.monotonic()
            if not blocking or remaining <= 0:
                return False
            # Jitter keeps many waiting processes from polling in lockstep.
            time.sleep(min(remaining, pause * random.uniform(0.5, 1.0)))
            pause = min(pause * 2, self.POLL_MAX)

    def release(self) -> None:
        """Give the lease back if we still own it; never raises (an unreleased lease expires by itself)."""
        with self._state_lock:
            owner, self._owner = self._owner, None
        if owner is None:
            return
        try:
            self._compare_and_delete(owner)
        except Exception as exc:
            logger.warning(
                "Could not release token lease %r on cache %r (%s: %s); it expires within %.1f s",
                self.lock_key,
                self.cache_alias,
                type(exc).__name__,
                short_text(str(exc)),
                self.lease_timeout,
            )

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    # -- internals --------------------------------------------------------------------

    def _try_add(self, owner: int) -> bool:
        try:
            cache = caches[self.cache_alias]
            added = bool(cache.add(self.lock_key, owner, timeout=backend_seconds(cache, self.lease_timeout)))
            if added and not is_redis(cache):
                # Non-Redis backends: make sure nobody replaced an expired row at the same time.
                added = cache.get(self.lock_key) == owner
        except Exception as exc:
            raise TokenStorageError(
                "Could not take the token lease", cache_alias=self.cache_alias, key=self.lock_key, operation="lock", original=exc
            ) from exc
        return added

    def _compare_and_delete(self, owner: int) -> bool:
        cache = caches[self.cache_alias]
        target = redis_target(self.cache_alias, cache, self.lock_key)
        if target is not None:
            client, raw_key = target
            return bool(client.eval(_RELEASE_SCRIPT, 1, raw_key, owner))
        if cache.get(self.lock_key) == owner:
            cache.delete(self.lock_key)
            return True
        return False

    def __repr__(self) -> str:
        return f"DjangoCacheLease(cache_alias={self.cache_alias!r}, key={self.lock_key!r}, owned={self.owned})"
