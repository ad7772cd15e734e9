"""Settings of the example project: runs on a fresh machine with nothing but Python.

Embedded defaults, so ``bash scripts/demo.sh`` needs no server software:

* SQLite (``DEMO_DB_PATH``, default ``example_project/demo.sqlite3``), in WAL mode so the
  web server's threads, the warm-up and ``manage.py`` commands can write at once;
* the **database cache** for tokens (``createcachetable``): every process on this
  machine sees the same tokens and the same fetch lease, without Redis;
* Celery without a broker: tasks run eagerly, and the periodic warm-up runs in a thread
  of the web process (``DEMO_WARM_THREAD=1``, set by ``scripts/demo.sh``).

Set ``REDIS_URL`` (e.g. ``redis://127.0.0.1:6379/0``) to switch the token cache to
django-redis and Celery to a real broker (then run ``celery -A example_project worker
--beat``): that is the production layout, see ``docs/deployment.md``.

The partner APIs the clients call are served by this same Django server
(``partner_api``), at ``http://127.0.0.1:$DEMO_PORT`` (default 8000); ``runserver`` is
threaded, so a view calling the partner views of its own server does not deadlock. The
same holds under an ASGI server (``uvicorn example_project.asgi:application --port
$DEMO_PORT``), which runs the partner's sync views in a worker thread while the async
view (``/async/``) waits on the event loop.

Everything secret here is a DEMO value, committed on purpose, and must never be used
anywhere else.
"""

import os
from pathlib import Path

import django

from requestforge_django.celery import beat_schedule

BASE_DIR = Path(__file__).resolve().parent.parent

# -- the demo knobs (environment) ---------------------------------------------------------------

DEMO_PORT = int(os.environ.get("DEMO_PORT", "8000"))
#: Where the partner APIs live: this server, unless ``DEMO_PARTNER_URL`` points elsewhere (a
#: partner served by another process; tests/test_example_asgi.py uses one that answers slowly).
DEMO_PARTNER_URL = os.environ.get("DEMO_PARTNER_URL") or f"http://127.0.0.1:{DEMO_PORT}"
REDIS_URL = os.environ.get("REDIS_URL", "")
#: Run the token warm-up in a thread of this process (no Celery beat without a broker).
DEMO_WARM_THREAD = os.environ.get("DEMO_WARM_THREAD") == "1" and not REDIS_URL

# -- Django -------------------------------------------------------------------------------------

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-secret-key-do-not-use-anywhere-else")  # DEMO ONLY
DEBUG = os.environ.get("DEMO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "requestforge_django",
    "partner_api",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"
ASGI_APPLICATION = "example_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_sqlite_options: dict = {"timeout": 20}
if django.VERSION >= (5, 1):
    # WAL: readers never wait for the writer; IMMEDIATE: a writing transaction takes the lock
    # up front instead of failing half-way with "database is locked".
    _sqlite_options.update(init_command="PRAGMA journal_mode=WAL;", transaction_mode="IMMEDIATE")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB_PATH", str(BASE_DIR / "demo.sqlite3")),
        "OPTIONS": _sqlite_options,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_database_cache = {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "requestforge_demo_cache"}
_redis_cache = {
    "BACKEND": "django_redis.cache.RedisCache",
    "LOCATION": REDIS_URL,
    "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
}
CACHES = {
    # Tokens, leases and token status: shared by every process of the project.
    "default": _redis_cache if REDIS_URL else _database_cache,
    # The stand-in partner's own token store (the partner is "another company": its own storage).
    "partner": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "partner_api_tokens"},
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# DEBUG is on by default: keep the REQUESTFORGE values Django's own filter would show (a step's
# HEADERS and DATA, e.g. the user's password) off the technical 500 page (requestforge.W007).
DEFAULT_EXCEPTION_REPORTER_FILTER = "requestforge_django.debug.RequestForgeExceptionReporterFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"short": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "datefmt": "%H:%M:%S"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "short"}},
    "loggers": {
        "demo": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "requestforge_django": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# -- requestforge_django ------------------------------------------------------------------------

#: DEMO ONLY: a fixed Fernet key so admin-edited credentials can be encrypted out of the box.
#: A real project reads its keys from the environment or a secret store.
DEMO_ONLY_ENCRYPTION_KEY = "EPGYAu6bgcwgRFYNBhHJPVDdIH-cPnRza3PlJe8E0Pg="

REQUESTFORGE = {
    "CACHE": "default",
    "KEY_PREFIX": "demo-rf",
    "ENCRYPTION_KEYS": [os.environ.get("REQUESTFORGE_ENCRYPTION_KEY", DEMO_ONLY_ENCRYPTION_KEY)],
    # Partner tokens live 120-600 s here (real ones: an hour), so refreshes show up within minutes.
    "REFRESH_AHEAD": 30,
    "WARM_INTERVAL": 10,
    "CLIENTS": {
        # OAuth2 client credentials.
        "billing": {
            "BASE_URL": f"{DEMO_PARTNER_URL}/partner/api",
            "TIMEOUT": 5,
            "HEADERS": {"User-Agent": "requestforge-demo/1.0"},
            "RETRY": {"STRATEGY": "exponential", "MAX_RETRIES": 2, "BASE_DELAY": 0.2, "MAX_DELAY": 2},
            "CIRCUIT_BREAKER": {"FAILURE_THRESHOLD": 5, "RECOVERY_TIMEOUT": 30},
            "AUTH": {
                "TYPE": "client_credentials",
                "TOKEN_URL": f"{DEMO_PARTNER_URL}/partner/oauth/token",
                "CLIENT_ID": "demo-billing",
                "CLIENT_SECRET": "demo-billing-secret",  # DEMO ONLY
                "SCOPE": "invoices",
            },
        },
        # The three-step device -> app -> user token flow.
        "profiles": {
            "BASE_URL": f"{DEMO_PARTNER_URL}/partner/api",
            "TIMEOUT": 5,
            "AUTH": {"TYPE": "pipeline", "PIPELINE": "partner"},
        },
        # A static API key.
        "legacy": {
            "BASE_URL": f"{DEMO_PARTNER_URL}/partner/legacy",
            "TIMEOUT": 5,
            "AUTH": {"TYPE": "api_key", "KEY": "demo-legacy-key", "HEADER": "X-API-Key"},  # DEMO ONLY
        },
    },
    "PIPELINES": {
        "partner": {
            "REFRESH_FROM_STEP": "user_token",  # a rejected user token refetches only that step
            "STEPS": [
                {
                    "NAME": "device_token",
                    "FETCHER": "header",
                    "URL": f"{DEMO_PARTNER_URL}/partner/v1/device/register",
                    "HEADERS": {"X-Device-ID": "demo-device-1"},
                    "TOKEN_HEADER": "X-Device-Token",
                    "TTL": 600,
                },
                {
                    "NAME": "app_token",
                    "FETCHER": "body",
                    "URL": f"{DEMO_PARTNER_URL}/partner/v1/app/token",
                    "HEADERS": {"X-Device-Token": "{device_token}"},
                    "DATA": {"client_id": "demo-app"},
                    "DEPENDS_ON": ["device_token"],
                    "TTL": 300,
                },
                {
                    "NAME": "user_token",
                    "FETCHER": "body",
                    "URL": f"{DEMO_PARTNER_URL}/partner/v1/user/token",
                    "HEADERS": {"X-App-Token": "{app_token}"},
                    "DATA": {"username": "demo-user", "password": "demo-password"},  # DEMO ONLY
                    "DEPENDS_ON": ["app_token"],
                    "TTL": 120,
                },
            ],
        }
    },
}

# -- Celery -------------------------------------------------------------------------------------

# Without Redis there is no broker that several processes could share: run tasks eagerly
# (".delay()" runs the task right there) and let the warm-up thread do what beat would.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE = beat_schedule(REQUESTFORGE["WARM_INTERVAL"])
