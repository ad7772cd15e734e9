"""Helpers for the tests of projects that use requestforge_django (and for our own tests).

Three things a test of code that calls ``get_client(...)`` needs:

* :class:`StubTokenEndpoint` (:mod:`.stub_endpoint`) -- a real OAuth2 token endpoint
  (client credentials, and a two-step flow for pipelines) plus a protected API on
  ``127.0.0.1``, with counters. It is a real server (standard library
  only, one thread per connection) rather than a mock of ``requests`` because the
  point of the library is what happens *between* processes and threads: the counters
  are the authoritative number of token fetches whoever made them.
* :func:`requestforge_settings_for` (:mod:`.helpers`) -- a ``REQUESTFORGE`` setting with one client
  pointing at a stub, to assign to ``settings.REQUESTFORGE``.
* :func:`reset_requestforge` -- forget every client, pipeline and token this process
  built and delete the token-cache entries, so one test's tokens never leak into the
  next (the registry is per process and the token cache outlives a test).

pytest users get the same as fixtures from :mod:`requestforge_django.pytest_plugin`.

This module imports nothing from Django at import time (only inside
:func:`reset_requestforge` / :func:`clear_token_cache`), so the stub also serves tests
that never configure Django.
"""

from __future__ import annotations

from .helpers import CLEARED_ALIAS, CLEARED_PREFIX, TEST_KEY_PREFIX, clear_token_cache, requestforge_settings_for, reset_requestforge
from .stub_endpoint import (
    APP_TOKEN_PATH,
    DEVICE_PATH,
    FETCH_PATHS,
    PROTECTED_PATH,
    TOKEN_PATH,
    ProtectedCall,
    StubStats,
    StubTokenEndpoint,
)

__all__ = [
    "APP_TOKEN_PATH",
    "CLEARED_ALIAS",
    "CLEARED_PREFIX",
    "DEVICE_PATH",
    "FETCH_PATHS",
    "PROTECTED_PATH",
    "TEST_KEY_PREFIX",
    "TOKEN_PATH",
    "ProtectedCall",
    "StubStats",
    "StubTokenEndpoint",
    "clear_token_cache",
    "requestforge_settings_for",
    "reset_requestforge",
]
