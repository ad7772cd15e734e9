"""The helpers users get for their own tests: the stub token endpoint, settings, reset, pytest fixtures.

They are exercised the way a user would: through the real registry (``get_client``) and
the real caches, with the fixtures loaded as a pytest plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import SimpleTestCase, override_settings

from requestforge_django import get_client, get_token_manager
from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.setting.validate import validate_settings
from requestforge_django.testing import (
    CLEARED_ALIAS,
    CLEARED_PREFIX,
    StubTokenEndpoint,
    clear_token_cache,
    requestforge_settings_for,
    reset_requestforge,
)

pytest_plugins = ["pytester", "requestforge_django.pytest_plugin"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def fetch_token(stub: StubTokenEndpoint, **form: str) -> requests.Response:
    data = {"grant_type": "client_credentials", "client_id": stub.client_id, "client_secret": stub.client_secret, **form}
    return requests.post(stub.token_url, data=data, timeout=5)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestStubTokenEndpoint:
    """The stub on its own, over plain ``requests`` (no Django involved)."""

    def test_issues_tokens_that_the_protected_api_accepts(self, stub_token_endpoint: StubTokenEndpoint) -> None:
        stub = stub_token_endpoint
        answer = fetch_token(stub)
        assert answer.status_code == 200
        body = answer.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        api = requests.get(stub.url + "/orders/7", headers=bearer(body["access_token"]), timeout=5)
        assert api.status_code == 200
        assert api.json() == {"ok": True, "method": "GET", "path": "/orders/7"}
        assert (stub.fetches, stub.tokens_issued, stub.api_calls, stub.unauthorized) == (1, 1, 1, 0)

    def test_http_basic_client_authentication(self, stub_token_endpoint: StubTokenEndpoint) -> None:
        stub = stub_token_endpoint
        answer = requests.post(
            stub.token_url, data={"grant_type": "client_credentials"}, auth=(stub.client_id, stub.client_secret), timeout=5
        )
        assert answer.status_code == 200 and answer.json()["access_token"].startswith("stub-")

    def test_rejects_wrong_credentials_and_grants(self, stub_token_endpoint: StubTokenEndpoint) -> None:
        stub = stub_token_endpoint
        assert fetch_token(stub, client_secret="wrong").status_code == 401
        assert fetch_token(stub, grant_type="password").json() == {"error": "unsupported_grant_type"}
        assert stub.fetches == 2 and stub.tokens_issued == 0

    def test_protected_api_rejects_missing_unknown_and_revoked_tokens(self, stub_token_endpoint: StubTokenEndpoint) -> None:
        stub = stub_token_endpoint
        token = fetch_token(stub).json()["access_token"]
        assert requests.get(stub.url + "/x", timeout=5).status_code == 401
        assert requests.get(stub.url + "/x", headers=bearer("made-up"), timeout=5).status_code == 401
        stub.revoke_all()
        rejected = requests.get(stub.url + "/x", headers=bearer(token), timeout=5)
        assert rejected.status_code == 401 and "invalid_token" in rejected.headers["WWW-Authenticate"]
        assert stub.unauthorized == 3 and stub.api_calls == 0
        assert [call.authorized for call in stub.calls] == [False, False, False]

    def test_tokens_expire(self) -> None:
        with StubTokenEndpoint(expires_in=0.3) as stub:
            token = fetch_token(stub).json()["access_token"]
            assert stub.is_valid(token)
            time.sleep(0.4)
            assert not stub.is_valid(token)
            assert requests.get(stub.url + "/x", headers=bearer(token), timeout=5).status_code == 401

    def test_fail_with_a_number_of_times_then_recover(self, stub_token_endpoint: StubTokenEndpoint) -> None:
        stub = stub_token_endpoint
        stub.fail_with(503, times=2)
        assert [fetch_token(stub).status_code for _ in range(3)] == [503, 503, 200]
        stub.fail_with(400, body="not json")
        failed = fetch_token(stub)
        assert failed.status_code == 400 and failed.text == "not json"
        assert fetch_token(stub).status_code == 400  # times=None: until recover()
        stub.recover()
        assert fetch_token(stub).status_code == 200
        assert stub.fetches == 6
        with pytest.raises(ValueError):
            stub.fail_with(500, times=0)

    def test_reset_counters_keeps_tokens_valid(self, stub_token_endpoint: StubTokenEndpoint) -> None:
        stub = stub_token_endpoint
        token = fetch_token(stub).json()["access_token"]
        stub.reset_counters()
        assert (stub.fetches, stub.tokens_issued, stub.calls) == (0, 0, [])
        assert stub.is_valid(token)

    def test_start_and_stop_are_idempotent(self) -> None:
        stub = StubTokenEndpoint()
        assert stub.start() is stub.start()
        assert "running" in repr(stub)
        stub.stop()
        stub.stop()
        assert "stopped" in repr(stub)
        with pytest.raises(requests.ConnectionError):
            requests.post(stub.token_url, timeout=2)


class TestSettingsFor:
    def test_a_valid_setting_with_one_client(self, stub_token_endpoint: StubTokenEndpoint) -> None:
        setting = requestforge_settings_for(stub_token_endpoint)
        assert [p for p in validate_settings(setting) if p.is_error] == []
        client = setting["CLIENTS"]["stub"]
        assert client["BASE_URL"] == stub_token_endpoint.url
        assert client["AUTH"]["TOKEN_URL"] == stub_token_endpoint.token_url
        assert setting["KEY_PREFIX"] == "requestforge-test"

    def test_overrides(self) -> None:
        with StubTokenEndpoint(scope="orders") as stub:
            setting = requestforge_settings_for(
                stub,
                name="orders",
                client={"TIMEOUT": 2, "AUTH": {"EXCLUDED_PATHS": ["/health"]}},
                REFRESH_AHEAD=5,
                CLIENTS={"other": {"BASE_URL": "https://other.example.com"}},
            )
        assert set(setting["CLIENTS"]) == {"orders", "other"}
        orders = setting["CLIENTS"]["orders"]
        assert orders["TIMEOUT"] == 2
        assert orders["AUTH"]["EXCLUDED_PATHS"] == ["/health"] and orders["AUTH"]["SCOPE"] == "orders"
        assert orders["AUTH"]["CLIENT_ID"] == "test-client"
        assert setting["REFRESH_AHEAD"] == 5
        assert [p for p in validate_settings(setting) if p.is_error] == []


class TestThroughTheRegistry:
    """``get_client`` against the stub, with the ``requestforge_stub`` fixture."""

    def test_one_token_fetch_serves_many_calls(self, requestforge_stub: StubTokenEndpoint) -> None:
        client = get_client("stub")
        for number in range(5):
            assert client.get(f"/orders/{number}").json()["path"] == f"/orders/{number}"
        assert requestforge_stub.fetches == 1
        assert requestforge_stub.api_calls == 5

    def test_reset_forgets_clients_and_deletes_tokens(self, requestforge_stub: StubTokenEndpoint) -> None:
        first = get_client("stub")
        first.get("/a")
        assert get_token_manager("stub").peek_token() is not None
        assert reset_requestforge() == CLEARED_PREFIX  # the test settings use LocMemCache
        assert get_token_manager("stub").peek_token() is None
        second = get_client("stub")
        assert second is not first
        second.get("/b")
        assert requestforge_stub.fetches == 2

    def test_revoked_token_is_replaced_once(self, requestforge_stub: StubTokenEndpoint) -> None:
        client = get_client("stub")
        client.get("/a")
        requestforge_stub.revoke_all()
        assert client.get("/b").status_code == 200  # 401, one new token, the request sent again
        assert requestforge_stub.fetches == 2
        assert requestforge_stub.unauthorized == 1

    def test_failing_token_endpoint_surfaces_as_authentication_error(self, requestforge_stub: StubTokenEndpoint) -> None:
        requestforge_stub.fail_with(500, times=1)
        with pytest.raises(AuthenticationException):
            get_client("stub").get("/a")
        assert get_client("stub").get("/a").status_code == 200
        assert requestforge_stub.fetches == 2

    def test_signals_name_the_stub_client(self, requestforge_stub: StubTokenEndpoint) -> None:
        """The example of docs/signals.md."""
        from requestforge_django.signals import token_obtained

        seen: list[str] = []
        token_obtained.connect(lambda sender, **kw: seen.append(kw["name"]), weak=False, dispatch_uid="test-helpers")
        try:
            get_client("stub").get("/a")
            get_client("stub").get("/b")
        finally:
            token_obtained.disconnect(dispatch_uid="test-helpers")
        assert seen == ["stub"]


class TestWithDjangosTestRunner(SimpleTestCase):
    """The unittest example of docs/testing.md: no pytest fixtures needed."""

    def setUp(self) -> None:
        self.stub = StubTokenEndpoint().start()
        self.addCleanup(self.stub.stop)
        settings = override_settings(REQUESTFORGE=requestforge_settings_for(self.stub, name="billing"))
        settings.enable()
        self.addCleanup(settings.disable)
        reset_requestforge()
        self.addCleanup(reset_requestforge)

    def test_one_token(self) -> None:
        get_client("billing").get("/invoices/1")
        get_client("billing").get("/invoices/2")
        self.assertEqual(self.stub.fetches, 1)


class TestClearTokenCache:
    """Only our keys go where the backend can list keys; otherwise the whole alias is cleared."""

    @pytest.fixture
    def prefixed(self, settings: Any, requestforge_reset: None) -> None:
        settings.REQUESTFORGE = {"KEY_PREFIX": "rf-clear"}

    def check_only_prefix_cleared(self, alias: str) -> None:
        from django.core.cache import caches

        cache = caches[alias]
        cache.set("rf-clear:client:a", {"access_token": "x"})
        cache.set("rf-clear:lock:client:a", 1)
        cache.set("rf-clearly-not-ours", 2)  # shares the text but not the "prefix:" namespace
        cache.set("unrelated", 3)
        assert clear_token_cache(alias, "rf-clear") == CLEARED_PREFIX
        assert cache.get("rf-clear:client:a") is None and cache.get("rf-clear:lock:client:a") is None
        assert cache.get("rf-clearly-not-ours") == 2 and cache.get("unrelated") == 3

    def test_locmem(self, prefixed: None) -> None:
        self.check_only_prefix_cleared("default")

    def test_django_redis(self, prefixed: None, redis_cache: str) -> None:
        self.check_only_prefix_cleared(redis_cache)

    def test_djangos_own_redis_cache(self, prefixed: None, redis_server: str, redis_client: Any, settings: Any) -> None:
        settings.CACHES = {
            **settings.CACHES,
            "builtin": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_server},
        }
        self.check_only_prefix_cleared("builtin")

    def test_database_cache(self, prefixed: None, db_cache: str) -> None:
        self.check_only_prefix_cleared(db_cache)

    def test_glob_characters_in_the_prefix_are_literal(self, prefixed: None, redis_cache: str) -> None:
        from django.core.cache import caches

        cache = caches[redis_cache]
        cache.set("rf*:a", 1)
        cache.set("rfX:a", 2)
        assert clear_token_cache(redis_cache, "rf*") == CLEARED_PREFIX
        assert cache.get("rf*:a") is None and cache.get("rfX:a") == 2

    def test_other_backends_clear_the_whole_alias(self, prefixed: None, settings: Any, tmp_path: Any) -> None:
        from django.core.cache import caches

        settings.CACHES = {
            **settings.CACHES,
            "files": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)},
        }
        cache = caches["files"]
        cache.set("rf-clear:client:a", 1)
        cache.set("unrelated", 2)
        assert clear_token_cache("files", "rf-clear") == CLEARED_ALIAS
        assert cache.get("unrelated") is None

    def test_defaults_come_from_the_settings(self, prefixed: None) -> None:
        from django.core.cache import caches

        caches["default"].set("rf-clear:status:a:-", {})
        assert reset_requestforge(clear_cache=False) is None
        assert caches["default"].get("rf-clear:status:a:-") == {}
        assert clear_token_cache() == CLEARED_PREFIX
        assert caches["default"].get("rf-clear:status:a:-") is None


def test_importing_the_helpers_imports_no_django() -> None:
    code = (
        "import sys, requestforge_django.testing, requestforge_django.pytest_plugin;"
        "loaded = [m for m in sys.modules if m == 'django' or m.startswith('django.')];"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=REPO_ROOT)


def test_fixture_teardown_deletes_the_tokens_of_the_test(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's suite: the first test leaves a token behind, the second must not find it."""
    pytester.makepyfile(
        user_settings=textwrap.dedent(
            """
            SECRET_KEY = "user-suite"
            USE_TZ = True
            INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "requestforge_django"]
            DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
            CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
            """
        )
    )
    pytester.makeconftest('pytest_plugins = ["requestforge_django.pytest_plugin"]')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pytester.path), str(REPO_ROOT)]))
    pytester.makepyfile(
        test_user_suite=textwrap.dedent(
            """
            from django.core.cache import caches
            from requestforge_django import get_client, get_token_manager

            def test_leaves_a_token(requestforge_stub):
                get_client("stub").get("/a")
                assert get_token_manager("stub").peek_token() is not None
                assert caches["default"].get("requestforge-test:client:stub") is not None

            def test_nothing_left_behind():  # no fixture: only the previous teardown can have cleaned up
                assert caches["default"].get("requestforge-test:client:stub") is None

            def test_fresh_stub_fresh_token(requestforge_stub):
                get_client("stub").get("/b")
                assert requestforge_stub.fetches == 1
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ds=user_settings", "-q", timeout=120)
    result.assert_outcomes(passed=3)
