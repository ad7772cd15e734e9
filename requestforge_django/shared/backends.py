"""What kind of Django cache an alias is, and how to reach its Redis server directly.

The lease, the token storage and the shared rate limiter ask these questions: whether
``add`` is one atomic ``SET NX PX`` (:func:`is_redis`), what timeout a backend honours
without cutting it short (:func:`backend_seconds`), and whether a Lua script may run
on the raw key (:func:`redis_target`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache
    from redis import Redis

__all__ = ["backend_seconds", "is_database_cache", "is_django_redis", "is_redis", "redis_target"]


def backend_seconds(cache: BaseCache, seconds: float) -> float:
    """``seconds`` as a timeout this backend honours without cutting it short.

    django-redis keeps milliseconds; Django's own Redis and memcached backends
    truncate to whole seconds (0.5 would become "expire now" or "never"), and the
    database cache also truncates the expiry instant, hence the extra second there.
    """
    if is_django_redis(cache):
        return max(seconds, 0.001)
    whole = max(1, math.ceil(seconds))
    if is_database_cache(cache):
        whole += 1
    return whole


def is_django_redis(cache: BaseCache) -> bool:
    try:
        from django_redis.cache import RedisCache
    except ImportError:  # pragma: no cover - django-redis is an optional extra
        return False
    return isinstance(cache, RedisCache)


def is_database_cache(cache: BaseCache) -> bool:
    from django.core.cache.backends.db import BaseDatabaseCache

    return isinstance(cache, BaseDatabaseCache)


def is_redis(cache: BaseCache) -> bool:
    """Whether ``add`` is a single atomic ``SET NX PX`` (django-redis or Django's RedisCache)."""
    if is_django_redis(cache):
        return True
    try:
        from django.core.cache.backends.redis import RedisCache
    except ImportError:  # pragma: no cover - Django < 4.0
        return False
    return isinstance(cache, RedisCache)


def redis_target(alias: str, cache: BaseCache, key: str) -> tuple[Redis, str] | None:
    """The raw Redis client and key for ``key`` when an atomic compare-and-delete is safe, else ``None``.

    Safe means: one Redis server holds the key, and an int value is stored as its
    decimal text (no pickling, compression or herd packing), so the Lua script can
    compare it with the owner value.
    """
    if is_django_redis(cache):
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
