"""Tokens in the Django cache, shared by every web and Celery process, plus a cross-process lease.

:class:`DjangoCacheTokenStorage` is the production storage of the Django layer: with
django-redis (or any cache every process can reach) one token fetch serves all
processes, and :meth:`DjangoCacheTokenStorage.lock` hands out a lease so that only one
process at a time talks to a token endpoint.

Design decisions, and why:

* Only plain data goes into the cache (``TokenData.to_dict()``), never a pickled class:
  a deploy that renames or changes ``TokenData`` must not make every process crash on
  the entries the previous release left behind, and the entries stay readable by any
  client that decodes the cache's serializer (django-redis pickles even a plain dict,
  so ``redis-cli`` shows pickle bytes; see docs/deployment.md).
* An unreadable entry is a cache miss (logged without its value), because the worst
  outcome of a miss is one extra token fetch, while raising would take an API down
  over a stray value. A cache that cannot be reached at all is different: pretending
  that is a miss would send every request of every process to the token endpoint, so
  it raises :class:`TokenStorageError`, naming the cache alias and key.
* The lease is built on the cache's atomic ``add`` with a unique owner value and an
  expiry, so a crashed holder blocks the others for at most the lease timeout, and it
  is released only by its owner (atomically with a Lua script on Redis).

This module belongs to the Django layer: ``requestforge_django.http`` and
``requestforge_django.tokens`` never import it.
"""

from __future__ import annotations

import logging
import math
import pickle
import random
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from django.core.cache import caches

from .http.exceptions import HttpClientException
from .tokens.data import TokenData
from .tokens.storage import TokenStorageInterface

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache
    from redis import Redis

__all__ = ["DjangoCacheLease", "DjangoCacheTokenStorage", "TokenStorageError"]

logger = logging.getLogger(__name__)

#: Errors that mean "the stored value cannot be turned back into a token" (a stray
#: value, an entry pickled by an old release, a truncated write), as opposed to "the
#: cache cannot be reached". The first kind is a miss, the second raises.
_UNREADABLE_ERRORS: tuple[type[BaseException], ...] = (
    pickle.PickleError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    ImportError,
    EOFError,
)

#: Compare-and-delete: the lease is removed only if it still carries our owner value,
#: in one atomic step, so a holder whose lease expired cannot delete its successor's.
_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class TokenStorageError(HttpClientException):
    """The token cache could not be used (for example Redis is down or the cache table is missing).

    ``cache_alias``, ``key`` (the cache key, never the token) and ``operation``
    (``get``, ``set``, ``delete``, ``lock``) say which cache failed on what, so an
    alert tells the on-call engineer where to look without a debugger.
    """

    def __init__(
        self,
        message: str,
        *,
        cache_alias: str,
        key: str,
        operation: str,
        original: BaseException | None = None,
    ) -> None:
        self.cache_alias = cache_alias
        self.key = key
        self.operation = operation
        super().__init__(message, original=original)

    def __str__(self) -> str:
        cause = ""
        if self.original is not None:
            cause = f": {type(self.original).__name__}: {_short(str(self.original))}"
        return f"{self.message} [cache={self.cache_alias!r}, key={self.key!r}, operation={self.operation}]{cause}"


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DjangoCacheTokenStorage(TokenStorageInterface):
    """Token storage on a Django cache alias; process-shared when the cache is (Redis, database, memcached).

    Keys are ``f"{key_prefix}:{key}"`` for tokens and ``f"{key_prefix}:lock:{key}"``
    for leases; the cache's own ``KEY_PREFIX``/``VERSION`` still apply on top.
    The cache is looked up on every call (``caches[alias]`` is per thread and is reset
    when settings change), so one storage object may be shared by every thread.
    LocMemCache works but is private to one process, which defeats the purpose.

    With the database cache, mind transactions: inside ``transaction.atomic`` (or with
    ``ATOMIC_REQUESTS``) its writes join the caller's transaction, so other processes
    see neither the token nor the lease until that commits. Route the cache table to
    a database alias of its own (or use Redis) when tokens are fetched inside atomic
    blocks.
    """

    #: Seconds an entry outlives its token's expiry, so that a reader whose clock is a
    #: little behind still finds the token and decides about expiry itself (the token
    #: manager owns that decision, not the cache's eviction).
    EXPIRY_GRACE: float = 5.0

    def __init__(self, cache_alias: str = "default", key_prefix: str = "requestforge") -> None:
        if not isinstance(cache_alias, str) or not cache_alias:
            raise ValueError("cache_alias must be a non-empty string")
        if not isinstance(key_prefix, str):
            raise ValueError("key_prefix must be a string")
        self.cache_alias = cache_alias
        self.key_prefix = key_prefix

    # -- keys -----------------------------------------------------------------------

    def make_key(self, key: str) -> str:
        """The cache key of the token stored under ``key`` (before Django's own prefix/version)."""
        return f"{self.key_prefix}:{key}"

    def make_lock_key(self, key: str) -> str:
        """The cache key of the lease on ``key``."""
        return f"{self.key_prefix}:lock:{key}"

    @property
    def cache(self) -> BaseCache:
        """The Django cache behind this storage (looked up per call on purpose)."""
        return caches[self.cache_alias]

    # -- TokenStorageInterface --------------------------------------------------------

    def get(self, key: str) -> TokenData | None:
        cache_key = self.make_key(key)
        cache = self._cache_for(cache_key, "get")
        try:
            raw = cache.get(cache_key)
        except _UNREADABLE_ERRORS as exc:
            # The backend reached the server but could not decode what it found.
            self._warn_unreadable(cache_key, exc)
            return None
        except Exception as exc:
            raise self._error("Could not read the token from the cache", cache_key, "get", exc) from exc
        return self._decode(cache_key, raw)

    def get_with(self, key: str, other_cache_key: str) -> tuple[TokenData | None, Any]:
        """The token under ``key`` and the raw value of the cache key ``other_cache_key``, in one round trip.

        ``other_cache_key`` is a full cache key (not prefixed here). Errors as :meth:`get`;
        an unreadable answer counts as a miss of both.
        """
        cache_key = self.make_key(key)
        cache = self._cache_for(cache_key, "get")
        try:
            found = cache.get_many([cache_key, other_cache_key])
        except _UNREADABLE_ERRORS as exc:
            self._warn_unreadable(cache_key, exc)
            return None, None
        except Exception as exc:
            raise self._error("Could not read the token from the cache", cache_key, "get", exc) from exc
        return self._decode(cache_key, found.get(cache_key)), found.get(other_cache_key)

    def _decode(self, cache_key: str, raw: Any) -> TokenData | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            self._warn_unreadable(cache_key, TypeError(f"expected a dict, found {type(raw).__name__}"))
            return None
        try:
            return TokenData.from_dict(raw)
        except _UNREADABLE_ERRORS as exc:
            self._warn_unreadable(cache_key, exc)
            return None

    def set(self, key: str, token: TokenData, ttl: float | None = None) -> None:
        cache_key = self.make_key(key)
        if ttl is not None and ttl <= 0:
            # Nothing worth keeping; also avoids backend-specific meanings of 0 and negatives.
            self.delete(key)
            return
        cache = self._cache_for(cache_key, "set")
        data = token.to_dict()
        timeout = self._timeout_for(cache, token, ttl)
        try:
            cache.set(cache_key, data, timeout=timeout)
        except Exception as exc:
            raise self._error("Could not store the token in the cache", cache_key, "set", exc, secret=token.access_token) from exc

    def delete(self, key: str) -> None:
        cache_key = self.make_key(key)
        cache = self._cache_for(cache_key, "delete")
        try:
            cache.delete(cache_key)
        except Exception as exc:
            raise self._error("Could not delete the token from the cache", cache_key, "delete", exc) from exc

    def lock(self, key: str, timeout: float) -> DjangoCacheLease:
        """A lease on ``key`` shared by every process using this cache; it expires after ``timeout`` seconds."""
        return DjangoCacheLease(self.cache_alias, self.make_lock_key(key), timeout)

    # -- helpers ----------------------------------------------------------------------

    def _cache_for(self, cache_key: str, operation: str) -> BaseCache:
        """The cache, or a :class:`TokenStorageError` if the alias is unknown or its backend cannot load.

        Looked up outside the "unreadable value" handling on purpose: a missing client
        library (an ``ImportError``) is a broken deployment, not a stray value.
        """
        try:
            return caches[self.cache_alias]
        except Exception as exc:
            raise self._error("The token cache is not usable", cache_key, operation, exc) from exc

    def _timeout_for(self, cache: BaseCache, token: TokenData, ttl: float | None) -> float | None:
        """The cache timeout: ``ttl`` if given, else until the token expires plus a grace, else forever.

        ``None`` must be passed explicitly for non-expiring tokens: leaving the timeout
        out would apply the cache's default (300 s) and silently drop them.
        """
        if ttl is not None:
            return _backend_seconds(cache, ttl)
        expires_at = getattr(token, "expires_at", None)
        if expires_at is None:
            return None
        if expires_at.tzinfo is None:  # defensive: TokenData promises aware UTC
            expires_at = expires_at.replace(tzinfo=timezone.utc)
        remaining = (expires_at - datetime.now(timezone.utc)).total_seconds()
        return _backend_seconds(cache, math.ceil(max(remaining, 0.0) + self.EXPIRY_GRACE))

    def _warn_unreadable(self, cache_key: str, exc: BaseException) -> None:
        # Only the error type: the message of a decoding error may quote the value.
        logger.warning(
            "Ignoring unreadable token cache entry %r on cache %r (%s); it counts as a miss",
            cache_key,
            self.cache_alias,
            type(exc).__name__,
        )

    def _error(self, message: str, cache_key: str, operation: str, exc: BaseException, *, secret: str | None = None) -> TokenStorageError:
        error = TokenStorageError(message, cache_alias=self.cache_alias, key=cache_key, operation=operation, original=exc)
        if secret and secret in str(exc):  # a backend echoing the value must not leak the token
            error.original = RuntimeError(f"{type(exc).__name__} (message withheld: it quoted the stored value)")
        return error

    def __repr__(self) -> str:
        return f"DjangoCacheTokenStorage(cache_alias={self.cache_alias!r}, key_prefix={self.key_prefix!r})"


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
                _short(str(exc)),
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
            added = bool(cache.add(self.lock_key, owner, timeout=_backend_seconds(cache, self.lease_timeout)))
            if added and not _is_redis(cache):
                # Non-Redis backends: make sure nobody replaced an expired row at the same time.
                added = cache.get(self.lock_key) == owner
        except Exception as exc:
            raise TokenStorageError(
                "Could not take the token lease", cache_alias=self.cache_alias, key=self.lock_key, operation="lock", original=exc
            ) from exc
        return added

    def _compare_and_delete(self, owner: int) -> bool:
        cache = caches[self.cache_alias]
        target = _redis_target(self.cache_alias, cache, self.lock_key)
        if target is not None:
            client, raw_key = target
            return bool(client.eval(_RELEASE_SCRIPT, 1, raw_key, owner))
        if cache.get(self.lock_key) == owner:
            cache.delete(self.lock_key)
            return True
        return False

    def __repr__(self) -> str:
        return f"DjangoCacheLease(cache_alias={self.cache_alias!r}, key={self.lock_key!r}, owned={self.owned})"


def _backend_seconds(cache: BaseCache, seconds: float) -> float:
    """``seconds`` as a timeout this backend honours without cutting it short.

    django-redis keeps milliseconds; Django's own Redis and memcached backends
    truncate to whole seconds (0.5 would become "expire now" or "never"), and the
    database cache also truncates the expiry instant, hence the extra second there.
    """
    if _is_django_redis(cache):
        return max(seconds, 0.001)
    whole = max(1, math.ceil(seconds))
    if _is_database_cache(cache):
        whole += 1
    return whole


def _is_django_redis(cache: BaseCache) -> bool:
    try:
        from django_redis.cache import RedisCache
    except ImportError:  # pragma: no cover - django-redis is an optional extra
        return False
    return isinstance(cache, RedisCache)


def _is_database_cache(cache: BaseCache) -> bool:
    from django.core.cache.backends.db import BaseDatabaseCache

    return isinstance(cache, BaseDatabaseCache)


def _is_redis(cache: BaseCache) -> bool:
    """Whether ``add`` is a single atomic ``SET NX PX`` (django-redis or Django's RedisCache)."""
    if _is_django_redis(cache):
        return True
    try:
        from django.core.cache.backends.redis import RedisCache
    except ImportError:  # pragma: no cover - Django < 4.0
        return False
    return isinstance(cache, RedisCache)


def _redis_target(alias: str, cache: BaseCache, key: str) -> tuple[Redis, str] | None:
    """The raw Redis client and key for ``key`` when an atomic compare-and-delete is safe, else ``None``.

    Safe means: one Redis server holds the key, and an int value is stored as its
    decimal text (no pickling, compression or herd packing), so the Lua script can
    compare it with the owner value.
    """
    if _is_django_redis(cache):
        from django_redis import get_redis_connection
        from django_redis.client import DefaultClient

        client_cls = type(cache.client)  # type: ignore[attr-defined]
        if client_cls.set is not DefaultClient.set or client_cls.encode is not DefaultClient.encode:
            return None  # herd or sharded client: values are wrapped or spread over servers
        return get_redis_connection(alias, write=True), str(cache.client.make_key(key))  # type: ignore[attr-defined]
    try:
        from django.core.cache.backends.redis import RedisCache, RedisCacheClient, RedisSerializer
    except ImportError:  # pragma: no cover - Django < 4.0
        return None
    if isinstance(cache, RedisCache):
        backend_client: Any = cache._cache
        if type(backend_client) is not RedisCacheClient:
            return None
        if type(backend_client._serializer) is not RedisSerializer:  # type: ignore[attr-defined]  # private; not in django-stubs
            return None
        raw_key = cache.make_and_validate_key(key)
        return backend_client.get_client(raw_key, write=True), raw_key
    return None
