"""Settings for Django processes started by tests (``manage.py`` commands, registry workers).

The test passes the servers it started through the environment:
``RF_REDIS_URL`` (django-redis alias ``"redis"``, the token cache) and
``RF_TOKEN_SERVER`` (base URL of a :class:`~requestforge_django.testing.StubTokenEndpoint`
with its default credentials).
"""

from __future__ import annotations

import os

from requestforge_django.testing import APP_TOKEN_PATH, DEVICE_PATH, TOKEN_PATH
from tests.support.django_caches import REDIS_ALIAS, redis_cache_config

SECRET_KEY = "tests-only-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "requestforge_django"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("RF_DB_PATH", ":memory:")}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    REDIS_ALIAS: redis_cache_config(os.environ["RF_REDIS_URL"]),
}
_SERVER = os.environ["RF_TOKEN_SERVER"]
REQUESTFORGE = {
    "CACHE": REDIS_ALIAS,
    "KEY_PREFIX": os.environ.get("RF_KEY_PREFIX", "rf-proc"),
    "REFRESH_AHEAD": float(os.environ.get("RF_REFRESH_AHEAD", "60")),
    "WARM_INTERVAL": float(os.environ.get("RF_WARM_INTERVAL", "30")),
    "ENCRYPTION_KEYS": ["9lrjcDK1nqbXgNjm3wz7PZ3tNGgtsM2Yq6_tV9m1nPA="],
    "CLIENTS": {
        "billing": {
            "BASE_URL": _SERVER,
            "AUTH": {"TYPE": "client_credentials", "TOKEN_URL": _SERVER + TOKEN_PATH,
                     "CLIENT_ID": "test-client", "CLIENT_SECRET": "test-secret"},
        },
        "partner-api": {"BASE_URL": _SERVER, "AUTH": {"TYPE": "pipeline", "PIPELINE": "partner"}},
    },
    "PIPELINES": {
        "partner": {
            "STEPS": [
                {"NAME": "device", "FETCHER": "header", "URL": _SERVER + DEVICE_PATH, "HEADERS": {"X-Device-ID": "device-123"},
                 "TOKEN_HEADER": "X-Device-Token", "TTL": float(os.environ.get("RF_DEVICE_TTL", "3600"))},
                {"NAME": "app", "FETCHER": "body", "URL": _SERVER + APP_TOKEN_PATH, "HEADERS": {"X-Device-Token": "{device}"},
                 "DATA": {"client_id": "app-id"}, "DEPENDS_ON": ["device"]},
            ]
        }
    },
}  # fmt: skip
LOGGING_CONFIG = None
