"""Django settings of the test authorization server process (never of the test process itself).

Everything that varies per start comes from the environment the launcher sets
before ``django.setup()``: the SQLite file (``OAUTH_SERVER_DB``, in the fixture's
temporary directory), a fresh ``SECRET_KEY`` and the access-token lifetime.

Client secrets and user passwords are hashed by DOT and Django as in production,
with a PBKDF2 hasher of few iterations: a real hash check on every token request,
at a cost a 2-core test machine can afford (Django's default takes ~0.5 s each).
"""

from __future__ import annotations

import os

import django

SECRET_KEY = os.environ["OAUTH_SERVER_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "oauth2_provider"]
MIDDLEWARE = ["tests.support.oauth_server.views.TokenRequestRecorder"]
ROOT_URLCONF = "tests.support.oauth_server.urls"
_SQLITE_WRITE_LOCK = {"transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"} if django.VERSION >= (5, 1) else {}
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["OAUTH_SERVER_DB"],
        # Concurrent token requests write (rotation revokes and re-issues): take the write
        # lock at BEGIN and wait for it, instead of failing with "database is locked".
        # (Both options are Django 5.1+; Django 4.2 waits on the lock with ``timeout`` only.)
        "OPTIONS": {"timeout": 30, **_SQLITE_WRITE_LOCK},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Tables straight from the models (``migrate --run-syncdb``): the schema DOT's models define,
# in 0.2 s instead of the 3 s its 40-odd migrations take on every server start.
MIGRATION_MODULES = {"auth": None, "contenttypes": None, "oauth2_provider": None}
PASSWORD_HASHERS = ["tests.support.oauth_server.hashers.FastPBKDF2PasswordHasher"]
LOGGING_CONFIG = None

OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("OAUTH_SERVER_ACCESS_TOKEN_LIFETIME", "3600")),
    "REFRESH_TOKEN_EXPIRE_SECONDS": None,
    # Every refresh answers a new refresh token and revokes the old one; no grace period,
    # so a refresh token used twice (two processes refreshing with the same one) is invalid_grant.
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "OAUTH2_VALIDATOR_CLASS": "tests.support.oauth_server.validator.RecordingValidator",
    "SCOPES": {"read": "Reading scope", "write": "Writing scope", "introspection": "Introspect tokens"},
    "DEFAULT_SCOPES": ["read", "write"],
    # RFC 9700 discourages the password grant; DOT 3.4 allows it with a warning (in the server log).
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": False,
}
