"""Cache configurations pointing Django at the test servers, shared by fixtures, workers and benchmarks.

One definition so the pytest fixtures, the spawned worker processes and the
benchmarks all talk to Redis the same way (same backend, same short socket timeouts:
a test against a dead Redis must fail in milliseconds, not hang).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DB_CACHE_TABLE", "REDIS_ALIAS", "DB_ALIAS", "redis_cache_config", "database_cache_config", "configure_django"]

REDIS_ALIAS = "redis"
DB_ALIAS = "db"
DB_CACHE_TABLE = "requestforge_test_cache"


def redis_cache_config(url: str, **options: Any) -> dict[str, Any]:
    """A django-redis cache on ``url`` with timeouts short enough for tests."""
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1.0, "SOCKET_TIMEOUT": 2.0, **options},
    }


def database_cache_config(table: str = DB_CACHE_TABLE) -> dict[str, Any]:
    """Django's database cache (the table needs ``createcachetable``)."""
    return {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": table}


def configure_django(redis_url: str, *, alias: str = REDIS_ALIAS, **extra_settings: Any) -> None:
    """Configure and set up Django in a fresh process (worker or benchmark) with ``alias`` on ``redis_url``.

    Uses ``settings.configure`` rather than a settings module so a spawned worker needs
    nothing but the URL; a no-op when Django is already configured in this process.
    """
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        SECRET_KEY="tests-only-not-secret",
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=[],
        DATABASES={},
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            alias: redis_cache_config(redis_url),
        },
        LOGGING_CONFIG=None,
        **extra_settings,
    )
    django.setup()
