"""Fixtures shared by the whole suite: a real redis-server and Django cache aliases on it.

``redis_server`` starts one ``redis-server`` per session on a free port; when the
binary is missing the tests that need it FAIL (a skipped cross-process test proves
nothing). ``redis_cache`` / ``db_cache`` add the ``"redis"`` (django-redis) and
``"db"`` (DatabaseCache) aliases to ``settings.CACHES`` for one test, next to the
LocMem ``"default"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from requestforge_django.testing import StubTokenEndpoint
from tests.support.authlib_fixtures import authlib_server, authlib_server_factory  # noqa: F401 (Authlib server fixtures)
from tests.support.django_caches import DB_ALIAS, REDIS_ALIAS, database_cache_config, redis_cache_config
from tests.support.oauth_fixtures import oauth_server, oauth_server_factory  # noqa: F401 (django-oauth-toolkit fixtures)
from tests.support.redis_server import RedisServer, RedisServerError

if TYPE_CHECKING:
    import redis
    from pytest_django.fixtures import SettingsWrapper


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """URL (``redis://127.0.0.1:PORT/0``) of a redis-server started for this session."""
    server = RedisServer()
    try:
        server.start()
    except RedisServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def token_server() -> Iterator[StubTokenEndpoint]:
    """A real OAuth2 token endpoint and protected API on 127.0.0.1 (hour-long tokens), for one test."""
    with StubTokenEndpoint(expires_in=3600) as server:
        yield server


@pytest.fixture
def redis_client(redis_server: str) -> Iterator[redis.Redis]:
    """A raw redis-py client on the session server, flushed before the test."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_cache(redis_server: str, redis_client: redis.Redis, settings: SettingsWrapper) -> str:
    """Adds the django-redis alias ``"redis"`` on the session server (flushed); returns the alias."""
    settings.CACHES = {**settings.CACHES, REDIS_ALIAS: redis_cache_config(redis_server)}
    return REDIS_ALIAS


@pytest.fixture
def db_cache(db: None, settings: SettingsWrapper) -> str:
    """Adds the DatabaseCache alias ``"db"`` and creates its table in the test database; returns the alias."""
    from django.core.management import call_command

    settings.CACHES = {**settings.CACHES, DB_ALIAS: database_cache_config()}
    call_command("createcachetable", database="default", verbosity=0)
    return DB_ALIAS
