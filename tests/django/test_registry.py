"""The per-process registry: lazy, shared, thread-safe building; rebuilds; real tokens through Redis."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import responses

from requestforge_django import get_client, get_pipeline, get_token_manager
from requestforge_django.http.auth import ApiKeyAuthHook, BasicAuthHook, BearerTokenAuthHook
from requestforge_django.http.circuit_breaker import CircuitBreaker
from requestforge_django.http.retry import ExponentialBackoffRetryStrategy, NoRetryStrategy, SimpleRetryStrategy
from requestforge_django.registry import Registry, UnknownNameError, bump_generation, registry
from requestforge_django.shared.breaker import CacheCircuitBreaker
from requestforge_django.testing import PROTECTED_PATH, StubTokenEndpoint
from requestforge_django.tokens.auth_hook import TokenAuthHook
from requestforge_django.tokens.manager import TokenManager
from requestforge_django.tokens.pipeline_manager import PipelineTokenManager
from tests.django.settings_factory import requestforge_setting

pytestmark = pytest.mark.django_db(databases=[])


@pytest.fixture
def configured(settings: Any, token_server: StubTokenEndpoint, redis_cache: str) -> StubTokenEndpoint:
    settings.REQUESTFORGE = requestforge_setting(token_server, redis_cache)
    return token_server


class TestLookups:
    def test_same_object_for_every_call_and_thread(self, configured: StubTokenEndpoint) -> None:
        seen: list[object] = []
        barrier = threading.Barrier(16)

        def lookup() -> None:
            barrier.wait()
            seen.append(get_client("billing"))

        threads = [threading.Thread(target=lookup) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(seen) == 16
        assert len({id(client) for client in seen}) == 1
        assert get_client("billing") is seen[0]

    def test_unknown_client_lists_known_names(self, configured: StubTokenEndpoint) -> None:
        with pytest.raises(UnknownNameError) as info:
            get_client("biling")
        message = str(info.value)
        assert "'biling'" in message
        assert "'billing'" in message and "'partner-api'" in message and "'public'" in message
        assert isinstance(info.value, LookupError)

    def test_unknown_pipeline_lists_known_names(self, configured: StubTokenEndpoint) -> None:
        with pytest.raises(UnknownNameError, match=r"No pipeline named 'nope'; known: 'partner'"):
            get_pipeline("nope")

    def test_token_manager_of_a_client_without_tokens_is_refused(self, configured: StubTokenEndpoint) -> None:
        with pytest.raises(UnknownNameError, match=r"client 'public' has no AUTH.*'billing', 'partner'"):
            get_token_manager("public")

    def test_token_managers_by_auth_type(self, configured: StubTokenEndpoint) -> None:
        assert isinstance(get_token_manager("billing"), TokenManager)
        pipeline_manager = get_token_manager("partner")
        assert isinstance(pipeline_manager, PipelineTokenManager)
        # A client authenticated by a pipeline shares the pipeline's token source.
        assert get_token_manager("partner-api") is pipeline_manager
        assert pipeline_manager.pipeline is get_pipeline("partner")

    def test_settings_change_rebuilds_and_closes_old_clients(self, configured: StubTokenEndpoint, settings: Any) -> None:
        first = get_client("public")
        first.get(PROTECTED_PATH)  # opens this thread's session
        assert first._sessions
        settings.REQUESTFORGE = {**settings.REQUESTFORGE, "KEY_PREFIX": "rf-other"}
        second = get_client("public")
        assert second is not first
        assert not first._sessions  # closed by the reset

    def test_invalid_settings_raise_improperly_configured_on_use(self, settings: Any) -> None:
        from django.core.exceptions import ImproperlyConfigured

        settings.REQUESTFORGE = {"CLIENTS": {"x": {"BASE_URL": "not a url"}}}
        with pytest.raises(ImproperlyConfigured, match=r"BASE_URL.*requestforge\.E003"):
            get_client("x")


class TestBuiltConfig:
    def test_retry_breaker_headers_timeout(self, settings: Any) -> None:
        settings.REQUESTFORGE = {
            "CLIENTS": {
                "a": {
                    "BASE_URL": "https://a.example",
                    "TIMEOUT": 3,
                    "HEADERS": {"User-Agent": "shop/1.0"},
                    "RETRY": {"STRATEGY": "simple", "MAX_RETRIES": 2, "BASE_DELAY": 0.25},
                    "CIRCUIT_BREAKER": {"FAILURE_THRESHOLD": 3, "RECOVERY_TIMEOUT": 10},
                },
                "b": {"BASE_URL": "https://b.example", "RETRY": {"STRATEGY": "exponential", "MAX_RETRIES": 4}},
                "c": {"BASE_URL": "https://c.example", "RETRY": {"STRATEGY": "none"}},
            }
        }
        a = get_client("a").config
        assert a.default_timeout == 3
        assert a.default_headers["User-Agent"] == "shop/1.0"
        assert isinstance(a.retry_strategy, SimpleRetryStrategy) and a.retry_strategy.max_retries == 2
        assert a.retry_strategy.delay == 0.25
        assert type(a.circuit_breaker) is CircuitBreaker
        assert a.circuit_breaker.failure_threshold == 3
        b = get_client("b").config.retry_strategy
        assert isinstance(b, ExponentialBackoffRetryStrategy) and b.max_retries == 4
        assert isinstance(get_client("c").config.retry_strategy, NoRetryStrategy)

    def test_shared_breaker_lives_in_the_token_cache(self, settings: Any, redis_cache: str) -> None:
        settings.REQUESTFORGE = {
            "CACHE": redis_cache,
            "CLIENTS": {"a": {"BASE_URL": "https://a.example", "CIRCUIT_BREAKER": {"FAILURE_THRESHOLD": 2, "SHARED": True}}},
        }
        breaker = get_client("a").config.circuit_breaker
        assert isinstance(breaker, CacheCircuitBreaker)
        assert breaker.cache_alias == redis_cache and breaker.key == "requestforge:breaker:a"

    def test_rate_limits_local_and_shared(self, settings: Any, redis_cache: str) -> None:
        from requestforge_django.http.rate_limit import RateLimiter
        from requestforge_django.shared.rate_limit import CacheRateLimiter

        settings.REQUESTFORGE = {
            "CACHE": redis_cache,
            "CLIENTS": {
                "local": {"BASE_URL": "https://a.example", "RATE_LIMIT": {"RATE": 10, "BURST": 20, "WAIT": False}},
                "shared": {"BASE_URL": "https://a.example", "RATE_LIMIT": {"RATE": 5, "MAX_WAIT": 2, "SHARED": True}},
            },
        }
        local = get_client("local").config.rate_limiter
        assert type(local) is RateLimiter and (local.rate, local.burst, local.block) == (10.0, 20, False)
        shared = get_client("shared").config.rate_limiter
        assert isinstance(shared, CacheRateLimiter)
        assert (shared.rate, shared.burst, shared.max_wait, shared.key) == (5.0, 5, 2.0, "requestforge:ratelimit:shared")

    @responses.activate
    def test_static_auth_types_send_their_headers(self, settings: Any) -> None:
        settings.REQUESTFORGE = {
            "CLIENTS": {
                "bearer": {"BASE_URL": "https://x.example", "AUTH": {"TYPE": "bearer", "TOKEN": "static-bearer-token"}},
                "key": {"BASE_URL": "https://x.example", "AUTH": {"TYPE": "api_key", "KEY": "k-123", "HEADER": "X-Key"}},
                "basic": {"BASE_URL": "https://x.example", "AUTH": {"TYPE": "basic", "USERNAME": "u", "PASSWORD": "p"}},
            }
        }
        responses.get("https://x.example/ping", json={})
        assert isinstance(get_client("bearer").config.auth_hook, BearerTokenAuthHook)
        assert isinstance(get_client("key").config.auth_hook, ApiKeyAuthHook)
        assert isinstance(get_client("basic").config.auth_hook, BasicAuthHook)
        for name in ("bearer", "key", "basic"):
            get_client(name).get("/ping")
        sent = [call.request.headers for call in responses.calls]
        assert sent[0]["Authorization"] == "Bearer static-bearer-token"
        assert sent[1]["X-Key"] == "k-123"
        assert sent[2]["Authorization"] == "Basic dTpw"

    def test_hooks_from_import_strings(self, settings: Any) -> None:
        settings.REQUESTFORGE = {
            "CLIENTS": {"a": {"BASE_URL": "https://a.example", "HOOKS": ["requestforge_django.http.builtin_hooks.CorrelationIdHook"]}}
        }
        from requestforge_django.http.builtin_hooks import CorrelationIdHook

        assert any(isinstance(hook, CorrelationIdHook) for hook in get_client("a").config.request_hooks)


class TestTokensThroughRedis:
    def test_oauth_client_fetches_once_and_stores_in_redis(self, configured: StubTokenEndpoint, redis_client: Any) -> None:
        client = get_client("billing")
        assert isinstance(client.config.auth_hook, TokenAuthHook)
        for _ in range(5):
            assert client.get(PROTECTED_PATH).status_code == 200
        assert configured.stats().token_requests == 1
        keys = {key.decode() for key in redis_client.keys("*")}
        assert any(key.endswith("rf-test:client:billing") for key in keys), keys

    def test_pipeline_client_runs_both_steps_once(self, configured: StubTokenEndpoint, redis_client: Any) -> None:
        client = get_client("partner-api")
        for _ in range(3):
            assert client.get(PROTECTED_PATH).status_code == 200
        stats = configured.stats()
        assert stats.fetches == 2  # device + app, once each
        keys = {key.decode() for key in redis_client.keys("*")}
        assert any(key.endswith("rf-test:pipeline:partner:device") for key in keys)
        assert any(key.endswith("rf-test:pipeline:partner:app") for key in keys)

    def test_revoked_pipeline_token_is_refreshed_once_and_retried(self, configured: StubTokenEndpoint) -> None:
        client = get_client("partner-api")
        assert client.get(PROTECTED_PATH).status_code == 200
        configured.revoke_all()
        configured.reset_counters()
        assert client.get(PROTECTED_PATH).status_code == 200
        assert configured.stats().fetches == 2  # the whole flow again: the device token was revoked too

    def test_a_second_registry_reuses_the_cached_token(self, configured: StubTokenEndpoint) -> None:
        """Another process (here: a second registry) reads the token from Redis instead of fetching."""
        first = get_token_manager("billing").get_token()
        other = Registry()
        assert other.get_token_manager("billing").get_token() == first
        assert configured.stats().token_requests == 1


class TestGeneration:
    def test_bump_generation_is_seen_by_other_registries(self, configured: StubTokenEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
        import requestforge_django.registry as registry_module

        other = Registry()
        before = other.get_client("public")
        monkeypatch.setattr(registry_module, "GENERATION_CHECK_INTERVAL", 0.0)
        assert other.get_client("public") is before  # nothing changed: nothing rebuilt
        bump_generation()
        assert other.get_client("public") is not before

    def test_a_cache_outage_keeps_what_is_built(self, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        import requestforge_django.registry as registry_module

        settings.REQUESTFORGE = {"CLIENTS": {"a": {"BASE_URL": "https://a.example"}}}
        client = registry.get_client("a")
        monkeypatch.setattr(registry_module, "GENERATION_CHECK_INTERVAL", 0.0)
        monkeypatch.setattr(registry_module, "read_generation", lambda spec: registry_module.UNREADABLE)
        assert registry.get_client("a") is client
