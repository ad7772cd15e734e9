"""DjangoCacheTokenStorage and its lease, against a real redis-server and the database cache."""

from __future__ import annotations

import io
import logging
import pickle
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from django.core.cache import caches

from requestforge_django.http.exceptions import HttpClientException
from requestforge_django.shared.errors import TokenStorageError
from requestforge_django.shared.lease import DjangoCacheLease
from requestforge_django.shared.token_storage import DjangoCacheTokenStorage
from requestforge_django.tokens.data import TokenData
from requestforge_django.tokens.interfaces import TokenProviderInterface
from requestforge_django.tokens.manager import TokenManager
from requestforge_django.tokens.storage import TokenLock, TokenStorageInterface
from tests.support.django_caches import DB_CACHE_TABLE, redis_cache_config
from tests.support.redis_server import free_port

if TYPE_CHECKING:
    import redis
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.redis

SECRET = "s3cr3t-access-token-value-0123456789"


def make_token(seconds: float | None = 3600, access_token: str = SECRET) -> TokenData:
    expires_at = datetime.now(timezone.utc) + timedelta(seconds=seconds) if seconds is not None else None
    return TokenData(access_token=access_token, expires_at=expires_at, scope="invoices", extra={"tenant": "acme"})


class LegacyToken:
    """Stands in for a pickled token class of some earlier release."""

    def __init__(self, access_token: str) -> None:
        self.access_token = access_token


@pytest.fixture(params=["redis", "db", "locmem"])
def alias(request: pytest.FixtureRequest) -> str:
    """Each storage test runs on django-redis, the database cache and LocMem (one process, but it must work)."""
    if request.param == "locmem":
        caches["default"].clear()
        return "default"
    return str(request.getfixturevalue(f"{request.param}_cache"))


@pytest.fixture
def djredis_cache(redis_server: str, redis_client: redis.Redis, settings: SettingsWrapper) -> str:
    """Django's own RedisCache backend on the session server (the lease uses its client too)."""
    settings.CACHES = {**settings.CACHES, "djredis": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_server}}
    return "djredis"


@pytest.fixture
def dead_redis(settings: SettingsWrapper) -> str:
    """An alias on a closed port: every operation fails like a Redis that is down."""
    settings.CACHES = {**settings.CACHES, "redis-down": redis_cache_config(f"redis://127.0.0.1:{free_port()}/0")}
    return "redis-down"


def raw_db_value(cache_key: str) -> bytes:
    """The pickled bytes the database cache holds for ``cache_key`` (as Django stores them)."""
    from django.db import connection

    full_key = caches["db"].make_and_validate_key(cache_key)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT value FROM {DB_CACHE_TABLE} WHERE cache_key = %s", [full_key])
        (value,) = cursor.fetchone()
    import base64

    return base64.b64decode(value)


class _NoClassesUnpickler(pickle.Unpickler):
    """Refuses any class or function reference: succeeds only for plain builtin data."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused {module}.{name}")


def loads_plain(raw: bytes) -> Any:
    return _NoClassesUnpickler(io.BytesIO(raw)).load()


def wait_for(condition: Any, timeout: float, interval: float = 0.02) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds pass (a bounded wait, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# -- storage ----------------------------------------------------------------------------


def test_is_a_token_storage_with_readable_repr() -> None:
    storage = DjangoCacheTokenStorage("redis", key_prefix="rf")
    assert isinstance(storage, TokenStorageInterface)
    assert repr(storage) == "DjangoCacheTokenStorage(cache_alias='redis', key_prefix='rf')"
    assert DjangoCacheTokenStorage().cache_alias == "default"
    assert DjangoCacheTokenStorage().key_prefix == "requestforge"


def test_round_trip(alias: str) -> None:
    storage = DjangoCacheTokenStorage(alias)
    token = make_token()
    assert storage.get("billing") is None
    assert not storage.exists("billing")
    storage.set("billing", token)
    loaded = storage.get("billing")
    assert loaded == token
    assert loaded is not token
    assert loaded.expires_at == token.expires_at and loaded.expires_at.tzinfo is not None
    assert dict(loaded.extra) == {"tenant": "acme"}
    assert storage.exists("billing")
    # A second storage object (another process in production) sees the same token.
    assert DjangoCacheTokenStorage(alias).get("billing") == token
    storage.delete("billing")
    assert storage.get("billing") is None
    storage.delete("billing")  # deleting a missing key is fine


def test_key_prefixes_separate_storages(alias: str) -> None:
    DjangoCacheTokenStorage(alias, key_prefix="one").set("billing", make_token(access_token="a" * 20))
    DjangoCacheTokenStorage(alias, key_prefix="two").set("billing", make_token(access_token="b" * 20))
    assert DjangoCacheTokenStorage(alias, key_prefix="one").get("billing").access_token == "a" * 20
    assert DjangoCacheTokenStorage(alias, key_prefix="two").get("billing").access_token == "b" * 20


def test_key_layout_keeps_djangos_prefix_and_version(redis_cache: str, redis_client: redis.Redis, settings: SettingsWrapper) -> None:
    settings.CACHES = {**settings.CACHES, "redis": {**settings.CACHES["redis"], "KEY_PREFIX": "site", "VERSION": 3}}
    storage = DjangoCacheTokenStorage("redis", key_prefix="rf")
    storage.set("billing", make_token())
    with storage.lock("billing", 5) as acquired:
        assert acquired
        assert sorted(redis_client.keys("*")) == [b"site:3:rf:billing", b"site:3:rf:lock:billing"]


def test_ttl_follows_token_expiry(redis_cache: str, redis_client: redis.Redis) -> None:
    storage = DjangoCacheTokenStorage("redis")
    storage.set("billing", make_token(seconds=120))
    ttl = redis_client.pttl(":1:requestforge:billing") / 1000
    assert 120 <= ttl <= 120 + storage.EXPIRY_GRACE + 1


def test_explicit_ttl_wins(redis_cache: str, redis_client: redis.Redis) -> None:
    storage = DjangoCacheTokenStorage("redis")
    storage.set("billing", make_token(seconds=3600), ttl=30)
    assert 29 <= redis_client.pttl(":1:requestforge:billing") / 1000 <= 30


def test_non_expiring_token_never_expires_in_cache(redis_cache: str, redis_client: redis.Redis) -> None:
    storage = DjangoCacheTokenStorage("redis")
    storage.set("forever", make_token(seconds=None))
    assert redis_client.ttl(":1:requestforge:forever") == -1  # no expiry, not the cache's 300 s default
    assert storage.get("forever").expires_at is None


def test_expired_token_only_kept_for_the_grace(redis_cache: str, redis_client: redis.Redis) -> None:
    storage = DjangoCacheTokenStorage("redis")
    storage.set("old", make_token(seconds=-60))
    assert 0 < redis_client.pttl(":1:requestforge:old") / 1000 <= storage.EXPIRY_GRACE
    assert storage.get("old").is_expired  # still readable: the manager decides what to do with it


def test_zero_ttl_drops_the_entry(alias: str) -> None:
    storage = DjangoCacheTokenStorage(alias)
    storage.set("billing", make_token())
    storage.set("billing", make_token(), ttl=0)
    assert storage.get("billing") is None


def test_database_cache_entry_expires(db_cache: str) -> None:
    storage = DjangoCacheTokenStorage(db_cache)
    storage.set("short", make_token(seconds=3600), ttl=1)
    assert storage.get("short") is not None
    assert wait_for(lambda: storage.get("short") is None, timeout=5)


def test_stores_plain_data_on_redis(redis_cache: str, redis_client: redis.Redis) -> None:
    token = make_token()
    DjangoCacheTokenStorage("redis").set("billing", token)
    raw = redis_client.get(":1:requestforge:billing")
    assert b"TokenData" not in raw and b"requestforge_django" not in raw
    assert loads_plain(raw) == token.to_dict()


def test_stores_plain_data_in_database(db_cache: str) -> None:
    token = make_token()
    DjangoCacheTokenStorage(db_cache).set("billing", token)
    raw = raw_db_value("requestforge:billing")
    assert b"TokenData" not in raw
    assert loads_plain(raw) == token.to_dict()


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param("not a token", id="string"),
        pytest.param({"token_type": "Bearer"}, id="dict-without-token"),
        pytest.param({"access_token": SECRET, "expires_at": "yesterday"}, id="bad-expiry"),
        pytest.param(["a", "list"], id="list"),
        pytest.param(LegacyToken(SECRET), id="pickled-class"),  # e.g. an entry written by an old release
    ],
)
def test_unreadable_value_is_a_miss(alias: str, garbage: Any, caplog: pytest.LogCaptureFixture) -> None:
    storage = DjangoCacheTokenStorage(alias)
    caches[alias].set("requestforge:billing", garbage)
    with caplog.at_level(logging.WARNING, logger="requestforge_django.cache"):
        assert storage.get("billing") is None
    assert "requestforge:billing" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\x80\x05garbage", id="not-pickle"),
        pytest.param(b"", id="empty"),
        pytest.param(b"cnot_a_module\nLegacyToken\n)\x81.", id="class-from-a-removed-module"),
    ],
)
def test_undecodable_bytes_on_redis_are_a_miss(
    redis_cache: str, redis_client: redis.Redis, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    redis_client.set(":1:requestforge:billing", raw)
    with caplog.at_level(logging.WARNING, logger="requestforge_django.cache"):
        assert DjangoCacheTokenStorage("redis").get("billing") is None
    assert "unreadable" in caplog.text


def test_undecodable_row_in_database_is_a_miss(db_cache: str) -> None:
    from django.db import connection

    storage = DjangoCacheTokenStorage(db_cache)
    storage.set("billing", make_token())
    full_key = caches["db"].make_and_validate_key("requestforge:billing")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {DB_CACHE_TABLE} SET value = %s WHERE cache_key = %s", ["%%% not base64 %%%", full_key])
    assert storage.get("billing") is None
    storage.set("billing", make_token())  # and the entry can be overwritten afterwards
    assert storage.get("billing") is not None


# -- backend failures -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda s: s.get("billing"), id="get"),
        pytest.param(lambda s: s.set("billing", make_token()), id="set"),
        pytest.param(lambda s: s.delete("billing"), id="delete"),
        pytest.param(lambda s: s.lock("billing", 5).acquire(blocking=False), id="lock"),
    ],
)
def test_redis_down_raises_typed_error_naming_alias_and_key(dead_redis: str, operation: Any) -> None:
    storage = DjangoCacheTokenStorage(dead_redis)
    with pytest.raises(TokenStorageError) as info:
        operation(storage)
    error = info.value
    assert isinstance(error, HttpClientException)
    assert error.cache_alias == "redis-down"
    assert error.key in {"requestforge:billing", "requestforge:lock:billing"}
    assert "redis-down" in str(error) and error.key in str(error)
    assert SECRET not in str(error)
    assert error.original is not None and error.__cause__ is error.original


def test_unknown_alias_raises_typed_error() -> None:
    with pytest.raises(TokenStorageError, match="no-such-alias"):
        DjangoCacheTokenStorage("no-such-alias").get("billing")


def test_missing_cache_table_raises_typed_error(db: None, settings: SettingsWrapper) -> None:
    settings.CACHES = {**settings.CACHES, "nodb": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "no_such_table"}}
    with pytest.raises(TokenStorageError, match="nodb"):
        DjangoCacheTokenStorage("nodb").get("billing")


def test_release_on_dead_redis_does_not_raise(redis_cache: str, settings: SettingsWrapper, caplog: pytest.LogCaptureFixture) -> None:
    lease = DjangoCacheTokenStorage("redis").lock("billing", 5)
    assert lease.acquire()
    # Redis goes away while we hold the lease: release must not mask the caller's own error.
    settings.CACHES = {**settings.CACHES, "redis": redis_cache_config(f"redis://127.0.0.1:{free_port()}/0")}
    with caplog.at_level(logging.WARNING, logger="requestforge_django.cache"):
        lease.release()
    assert "Could not release" in caplog.text
    assert not lease.owned


# -- the lease -----------------------------------------------------------------------------------


def test_lease_implements_the_protocol(alias: str) -> None:
    lease = DjangoCacheTokenStorage(alias).lock("billing", 5)
    assert isinstance(lease, TokenLock)
    assert isinstance(lease, DjangoCacheLease)
    assert repr(lease) == f"DjangoCacheLease(cache_alias={alias!r}, key='requestforge:lock:billing', owned=False)"


@pytest.mark.parametrize("backend", ["redis", "db", "djredis"])
def test_lease_is_exclusive_across_storages(backend: str, request: pytest.FixtureRequest) -> None:
    alias = request.getfixturevalue(f"{backend}_cache")
    first = DjangoCacheTokenStorage(alias).lock("billing", 30)
    second = DjangoCacheTokenStorage(alias).lock("billing", 30)
    assert first.acquire(blocking=False)
    assert first.owned
    assert not second.acquire(blocking=False)
    started = time.monotonic()
    assert not second.acquire(timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 2
    # Other keys are independent.
    assert DjangoCacheTokenStorage(alias).lock("other", 30).acquire(blocking=False)
    first.release()
    assert not first.owned
    assert second.acquire(blocking=False)
    second.release()


@pytest.mark.parametrize("backend", ["redis", "db", "djredis"])
def test_only_the_owner_releases(backend: str, request: pytest.FixtureRequest) -> None:
    alias = request.getfixturevalue(f"{backend}_cache")
    holder = DjangoCacheTokenStorage(alias).lock("billing", 30)
    stranger = DjangoCacheTokenStorage(alias).lock("billing", 30)
    assert holder.acquire()
    stranger.release()  # never acquired: a no-op
    assert not DjangoCacheTokenStorage(alias).lock("billing", 30).acquire(blocking=False)
    holder.release()
    holder.release()  # twice is harmless
    assert DjangoCacheTokenStorage(alias).lock("billing", 30).acquire(blocking=False)


@pytest.mark.parametrize("backend", ["redis", "db", "djredis"])
def test_expired_lease_is_taken_over_and_not_released_by_the_old_holder(backend: str, request: pytest.FixtureRequest) -> None:
    alias = request.getfixturevalue(f"{backend}_cache")
    crashed = DjangoCacheTokenStorage(alias).lock("billing", 1)
    assert crashed.acquire()
    successor = DjangoCacheTokenStorage(alias).lock("billing", 30)
    started = time.monotonic()
    # A bounded, polling wait: the successor gets in once the 1 s lease runs out
    # (up to 2 s on the database cache, whose expiry has one-second resolution).
    assert successor.acquire(timeout=6)
    waited = time.monotonic() - started
    assert 0.5 <= waited <= 4, waited
    crashed.release()  # late release by the old holder must not free the successor's lease
    assert not DjangoCacheTokenStorage(alias).lock("billing", 30).acquire(blocking=False)
    successor.release()
    assert DjangoCacheTokenStorage(alias).lock("billing", 30).acquire(blocking=False)


def test_lease_expiry_set_on_redis(redis_cache: str, redis_client: redis.Redis) -> None:
    lease = DjangoCacheTokenStorage("redis").lock("billing", 1.5)
    assert lease.acquire()
    assert 1000 < redis_client.pttl(":1:requestforge:lock:billing") <= 1500
    lease.release()
    assert redis_client.exists(":1:requestforge:lock:billing") == 0


@pytest.mark.parametrize("backend", ["redis", "djredis"])
def test_release_on_redis_is_one_atomic_script(backend: str, request: pytest.FixtureRequest, redis_client: redis.Redis) -> None:
    """On both Redis backends the owner check and the delete run as one Lua script (no get/delete race)."""
    alias = request.getfixturevalue(f"{backend}_cache")

    def evals() -> int:
        return int(redis_client.info("commandstats").get("cmdstat_eval", {}).get("calls", 0))

    lease = DjangoCacheTokenStorage(alias).lock("billing", 30)
    assert lease.acquire()
    before = evals()
    lease.release()
    assert evals() == before + 1
    assert DjangoCacheTokenStorage(alias).lock("billing", 30).acquire(blocking=False)


def test_lease_as_context_manager(alias: str) -> None:
    storage = DjangoCacheTokenStorage(alias)
    with storage.lock("billing", 30) as acquired:
        assert acquired is True
        assert not storage.lock("billing", 30).acquire(blocking=False)
    assert storage.lock("billing", 30).acquire(blocking=False)


def test_context_manager_releases_on_error(alias: str) -> None:
    storage = DjangoCacheTokenStorage(alias)
    with pytest.raises(RuntimeError), storage.lock("billing", 30):
        raise RuntimeError("boom")
    assert storage.lock("billing", 30).acquire(blocking=False)


def test_lease_rejects_nonsense_timeout() -> None:
    with pytest.raises(ValueError):
        DjangoCacheTokenStorage("redis").lock("billing", 0)


def test_lease_serialises_threads(redis_cache: str, redis_client: redis.Redis) -> None:
    """A non-atomic read-modify-write under the lease loses no update across 8 threads."""
    storage = DjangoCacheTokenStorage("redis")
    redis_client.set("counter", 0)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work() -> None:
        try:
            start.wait()
            for _ in range(15):
                with storage.lock("counter", 10) as acquired:
                    assert acquired
                    value = int(redis_client.get("counter"))
                    time.sleep(0)  # let another thread run between read and write
                    redis_client.set("counter", value + 1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert int(redis_client.get("counter")) == 8 * 15


# -- with the token layer on top ---------------------------------------------------------------


class CountingProvider(TokenProviderInterface):
    """A provider without network: counts fetches, so a test sees whether the manager tried one."""

    def __init__(self) -> None:
        self.calls = 0

    @property
    def service_name(self) -> str:
        return "billing"

    def fetch_token(self) -> TokenData:
        self.calls += 1
        return make_token(access_token=f"{SECRET}-{self.calls}")


def test_token_manager_shares_tokens_through_the_cache(alias: str) -> None:
    first, second = CountingProvider(), CountingProvider()
    token = TokenManager(first, DjangoCacheTokenStorage(alias)).get_token()
    # Another manager (another process in production) reuses the stored token.
    assert TokenManager(second, DjangoCacheTokenStorage(alias)).get_token() == token
    assert (first.calls, second.calls) == (1, 0)


def test_token_manager_on_dead_redis_raises_a_typed_error(dead_redis: str) -> None:
    import redis as redis_lib

    provider = CountingProvider()
    manager = TokenManager(provider, DjangoCacheTokenStorage(dead_redis))
    with pytest.raises(HttpClientException) as info:
        manager.get_token()
    assert isinstance(info.value, TokenStorageError)
    assert not isinstance(info.value, redis_lib.RedisError)
    assert info.value.cache_alias == "redis-down"
    assert info.value.key == "requestforge:token:billing"


def test_http_call_on_dead_redis_fails_typed_without_reaching_the_api(dead_redis: str) -> None:
    from requestforge_django.http.client import HttpClient
    from requestforge_django.http.config import HttpClientConfigBuilder
    from requestforge_django.testing import StubTokenEndpoint
    from requestforge_django.tokens.auth_hook import TokenAuthHook

    with StubTokenEndpoint() as server:
        manager = TokenManager(CountingProvider(), DjangoCacheTokenStorage(dead_redis))
        config = HttpClientConfigBuilder().with_base_url(server.url).with_auth_hook(TokenAuthHook(manager)).build()
        with HttpClient(config) as client, pytest.raises(TokenStorageError, match="redis-down"):
            client.get("/api/protected")
        assert server.stats().requests.get("/api/protected", 0) == 0
