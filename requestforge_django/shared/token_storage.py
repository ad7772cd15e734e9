"""Tokens in the Django cache, shared by every web and Celery process.

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
* The lease (:mod:`.lease`) is built on the cache's atomic ``add``.

This module belongs to the Django layer: ``requestforge_django.http`` and
``requestforge_django.tokens`` never import it.
"""

from __future__ import annotations

import logging
import math
import pickle
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from django.core.cache import caches

from ..tokens.data import TokenData
from ..tokens.storage import TokenStorageInterface
from .backends import backend_seconds
from .errors import TokenStorageError
from .lease import DjangoCacheLease

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

__all__ = ["DjangoCacheTokenStorage", "TokenStorageError"]

# The logger name predates this package; logging configurations filter on it.
logger = logging.getLogger("requestforge_django.cache")

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
            return backend_seconds(cache, ttl)
        expires_at = getattr(token, "expires_at", None)
        if expires_at is None:
            return None
        if expires_at.tzinfo is None:  # defensive: TokenData promises aware UTC
            expires_at = expires_at.replace(tzinfo=timezone.utc)
        remaining = (expires_at - datetime.now(timezone.utc)).total_seconds()
        return backend_seconds(cache, math.ceil(max(remaining, 0.0) + self.EXPIRY_GRACE))

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
