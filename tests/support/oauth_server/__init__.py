"""A real OAuth2 authorization server the project did not write: django-oauth-toolkit (DOT) over HTTP.

The test process imports :mod:`.harness` (standard library only) to start
``python -m tests.support.oauth_server`` (:mod:`.__main__`), a separate process with
its own Django settings (:mod:`.settings`), database, ``SECRET_KEY`` and URLs
(:mod:`.urls`, :mod:`.views`). DOT decides every answer; :mod:`.validator` and
:mod:`.ledger` only record what happened (which secret version obtained which token,
every token request and protected call) so tests can assert on it.
:mod:`.callers` is the client side run in spawned worker processes.
"""

from __future__ import annotations

from .harness import (
    BEARER_401_PATH,
    BEARER_403_PATH,
    DEFAULT_APPS,
    DEFAULT_USERS,
    DOT_DEFAULT_PATH,
    INTROSPECT_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
    OAuthApp,
    OAuthServer,
    OAuthServerError,
    OAuthUser,
    fingerprint,
)

__all__ = [
    "BEARER_401_PATH",
    "BEARER_403_PATH",
    "DEFAULT_APPS",
    "DEFAULT_USERS",
    "DOT_DEFAULT_PATH",
    "INTROSPECT_PATH",
    "REVOKE_PATH",
    "TOKEN_PATH",
    "OAuthApp",
    "OAuthServer",
    "OAuthServerError",
    "OAuthUser",
    "fingerprint",
]
