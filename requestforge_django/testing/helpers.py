"""Settings for a test and a clean slate between tests: :func:`requestforge_settings_for`, :func:`reset_requestforge`.

Imports nothing from Django at import time (only inside :func:`reset_requestforge` /
:func:`clear_token_cache`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

    from .stub_endpoint import StubTokenEndpoint

__all__ = ["CLEARED_ALIAS", "CLEARED_PREFIX", "TEST_KEY_PREFIX", "clear_token_cache", "requestforge_settings_for", "reset_requestforge"]

logger = logging.getLogger("requestforge_django.testing")

#: :func:`clear_token_cache` deleted only the keys under ``KEY_PREFIX``.
CLEARED_PREFIX = "prefix"
#: :func:`clear_token_cache` could not list keys on this backend and cleared the whole cache alias.
CLEARED_ALIAS = "alias"

#: ``KEY_PREFIX`` used by :func:`requestforge_settings_for` unless overridden: tests never
#: touch keys a development server on the same cache may be using.
TEST_KEY_PREFIX = "requestforge-test"


# -- settings ---------------------------------------------------------------------------------------


def requestforge_settings_for(
    stub: StubTokenEndpoint, *, name: str = "stub", client: Mapping[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    """A ``REQUESTFORGE`` setting with one client ``name`` calling ``stub`` with client-credentials tokens.

    ``client`` adds or replaces keys of that client (an ``AUTH`` mapping is merged into
    the generated one). ``overrides`` are top-level keys (``CACHE``, ``REFRESH_AHEAD``,
    ...); ``CLIENTS`` and ``PIPELINES`` given there are added next to the stub client.
    ``KEY_PREFIX`` is ``"requestforge-test"`` unless overridden.
    """
    auth: dict[str, Any] = {
        "TYPE": "client_credentials",
        "TOKEN_URL": stub.token_url,
        "CLIENT_ID": stub.client_id,
        "CLIENT_SECRET": stub.client_secret,
    }
    if stub.scope:
        auth["SCOPE"] = stub.scope
    entry: dict[str, Any] = {"BASE_URL": stub.url, "TIMEOUT": 5.0, "AUTH": auth}
    for key, value in (client or {}).items():
        if key == "AUTH" and isinstance(value, Mapping):
            entry["AUTH"] = {**auth, **value}
        else:
            entry[key] = value
    setting: dict[str, Any] = {"KEY_PREFIX": TEST_KEY_PREFIX, "CLIENTS": {name: entry}}
    for key, value in overrides.items():
        if key in ("CLIENTS", "PIPELINES") and isinstance(value, Mapping):
            setting[key] = {**setting.get(key, {}), **value}
        else:
            setting[key] = value
    return setting


# -- resetting --------------------------------------------------------------------------------------


def reset_requestforge(*, clear_cache: bool = True) -> str | None:
    """Forget what this process built and delete the token-cache entries of the current settings.

    Reloads the ``REQUESTFORGE`` settings object (which resets the registry and every
    other per-process state registered with ``requestforge_settings.on_reload``), so the
    next ``get_client`` builds fresh objects with no locally remembered token. Then,
    with ``clear_cache``, calls :func:`clear_token_cache` for the configured ``CACHE``
    and ``KEY_PREFIX`` and returns what it did (:data:`CLEARED_PREFIX` or
    :data:`CLEARED_ALIAS`); ``None`` without ``clear_cache``.
    """
    from ..registry import registry
    from ..setting.conf import requestforge_settings

    requestforge_settings.reload()
    registry.reset()  # reload() already does this; explicit in case a test unhooked the callback
    if not clear_cache:
        return None
    return clear_token_cache()


def clear_token_cache(cache_alias: str | None = None, key_prefix: str | None = None) -> str:
    """Delete the entries requestforge keeps under ``key_prefix`` in ``cache_alias`` (default: the settings').

    That is every token, lease, status record, the definitions generation and the
    shared breaker and rate-limit state. Only keys starting with ``"<key_prefix>:"``
    are deleted where the backend can list its keys -- django-redis
    (``delete_pattern``), Django's ``RedisCache``, ``LocMemCache`` and
    ``DatabaseCache`` -- and :data:`CLEARED_PREFIX` is returned. Other backends
    (memcached, file-based, custom) cannot list keys: the **whole alias is cleared**
    with ``cache.clear()`` and :data:`CLEARED_ALIAS` is returned, so give tests a cache
    alias of their own there.
    """
    from django.core.cache import caches

    from ..setting.conf import requestforge_settings

    alias = cache_alias if cache_alias is not None else str(requestforge_settings.CACHE)
    prefix = key_prefix if key_prefix is not None else str(requestforge_settings.KEY_PREFIX)
    cache = caches[alias]
    start = f"{prefix}:"
    for clear_prefix in (_clear_django_redis, _clear_django_redis_builtin, _clear_locmem, _clear_database):
        if clear_prefix(cache, start):
            return CLEARED_PREFIX
    logger.info("Cache alias %r (%s) cannot list its keys; clearing the whole alias", alias, type(cache).__name__)
    cache.clear()
    return CLEARED_ALIAS


def _glob_escape(text: str) -> str:
    """``text`` as a literal inside a Redis ``MATCH``/``KEYS`` glob pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _clear_django_redis(cache: BaseCache, start: str) -> bool:
    delete_pattern = getattr(cache, "delete_pattern", None)
    if not callable(delete_pattern):
        return False
    delete_pattern(_glob_escape(start) + "*")  # django-redis adds the cache's own prefix and version
    return True


def _clear_django_redis_builtin(cache: BaseCache, start: str) -> bool:
    """Django's own ``RedisCache``: every write goes to the first server, so scan that one."""
    try:
        from django.core.cache.backends.redis import RedisCache
    except ImportError:  # pragma: no cover - Django < 4.0
        return False
    if not isinstance(cache, RedisCache):
        return False
    raw_start = cache.make_and_validate_key(start)
    client = cache._cache.get_client(raw_start, write=True)
    batch: list[Any] = []
    for key in client.scan_iter(match=_glob_escape(raw_start) + "*", count=500):
        batch.append(key)
        if len(batch) >= 500:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)
    return True


def _clear_locmem(cache: BaseCache, start: str) -> bool:
    """``LocMemCache`` keeps its keys in a private ordered dict; use it if it looks as expected."""
    from django.core.cache.backends.locmem import LocMemCache

    if not isinstance(cache, LocMemCache):
        return False
    store, expiry, lock = getattr(cache, "_cache", None), getattr(cache, "_expire_info", None), getattr(cache, "_lock", None)
    if not isinstance(store, dict) or not isinstance(expiry, dict) or lock is None:
        return False  # a future Django changed the internals: fall back to clearing the alias
    raw_start = cache.make_key(start)
    with lock:
        for key in [k for k in store if isinstance(k, str) and k.startswith(raw_start)]:
            store.pop(key, None)
            expiry.pop(key, None)
    return True


def _clear_database(cache: BaseCache, start: str) -> bool:
    """``DatabaseCache``: select the keys and filter them here (portable: no ``LIKE`` escaping rules)."""
    from django.core.cache.backends.db import BaseDatabaseCache
    from django.db import connections, router

    if not isinstance(cache, BaseDatabaseCache):
        return False
    raw_start = cache.make_key(start)
    db = router.db_for_write(cache.cache_model_class)
    connection = connections[db]
    table = connection.ops.quote_name(cache._table)  # type: ignore[attr-defined]  # set by BaseDatabaseCache.__init__
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT cache_key FROM {table}")
        keys = [row[0] for row in cursor.fetchall() if str(row[0]).startswith(raw_start)]
        for offset in range(0, len(keys), 500):
            chunk = keys[offset : offset + 500]
            cursor.execute(f"DELETE FROM {table} WHERE cache_key IN ({', '.join(['%s'] * len(chunk))})", chunk)
    return True
