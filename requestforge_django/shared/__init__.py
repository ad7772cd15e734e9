"""State shared by every process through the Django cache.

* :mod:`.token_storage`: :class:`DjangoCacheTokenStorage`, the tokens themselves;
* :mod:`.lease`: :class:`DjangoCacheLease`, one process at a time on a key, and
  :class:`CacheOutageNotice`, a warning once per cache outage;
* :mod:`.backends`: what kind of cache an alias is (:func:`is_redis`, :func:`redis_target`, ...);
* :mod:`.breaker` and :mod:`.rate_limit`: the stores that make the core circuit breaker
  and rate limiter shared (:class:`CacheCircuitBreaker`, :class:`CacheRateLimiter`);
* :mod:`.status_records`: the last obtained / failed / invalidated record per token,
  written by :class:`SignalTokenObserver`;
* :mod:`.errors`: :class:`TokenStorageError`.

This package belongs to the Django layer: ``requestforge_django.http`` and
``requestforge_django.tokens`` never import it.
"""

from __future__ import annotations

from .backends import backend_seconds, is_database_cache, is_django_redis, is_redis, redis_target
from .breaker import CacheCircuitBreaker, CacheCircuitStore
from .errors import TokenStorageError
from .lease import CacheOutageNotice, DjangoCacheLease
from .rate_limit import CacheBucketStore, CacheRateLimiter
from .status_records import SignalTokenObserver, TokenEventRecord, describe_error, read_status
from .token_storage import DjangoCacheTokenStorage

__all__ = [
    "CacheBucketStore",
    "CacheCircuitBreaker",
    "CacheCircuitStore",
    "CacheOutageNotice",
    "CacheRateLimiter",
    "DjangoCacheLease",
    "DjangoCacheTokenStorage",
    "SignalTokenObserver",
    "TokenEventRecord",
    "TokenStorageError",
    "backend_seconds",
    "describe_error",
    "is_database_cache",
    "is_django_redis",
    "is_redis",
    "read_status",
    "redis_target",
]
