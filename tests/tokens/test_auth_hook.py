from __future__ import annotations

import threading

import pytest
import responses

from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfig
from requestforge_django.http.exceptions import AuthenticationException, ConfigurationError
from requestforge_django.http.hooks import AuthHookInterface
from requestforge_django.http.messages import HttpMethod, HttpRequest, HttpResponse, RequestContext
from requestforge_django.tokens import TokenAuthHook, TokenManager

from .fakes import FakeProvider, auth_error, run_threads


@pytest.fixture
def provider(clock):
    return FakeProvider(clock)


@pytest.fixture
def manager(provider, clock):
    return TokenManager(provider, clock=clock)


def send_through(hook: TokenAuthHook, url: str = "/things", context: RequestContext | None = None) -> HttpRequest:
    request = HttpRequest(HttpMethod.GET, url)
    return hook.before_request(request, context if context is not None else RequestContext(request))


def response(status: int) -> HttpResponse:
    return HttpResponse(status_code=status, headers={}, content=b"", url="https://api.example.com/x")


class TestHeader:
    def test_is_an_auth_hook(self, manager):
        assert isinstance(TokenAuthHook(manager), AuthHookInterface)

    def test_bearer_header_from_manager(self, manager):
        assert send_through(TokenAuthHook(manager)).header("Authorization") == "Bearer tok-1"

    def test_custom_header_and_prefix(self, manager):
        assert send_through(TokenAuthHook(manager, header_name="X-Auth-Token", prefix="")).header("X-Auth-Token") == "tok-1"
        assert send_through(TokenAuthHook(manager, prefix="Token")).header("Authorization") == "Token tok-1"

    def test_manager_builds_hook(self, manager):
        hook = manager.auth_hook(header_name="X-Token", prefix="")
        assert isinstance(hook, TokenAuthHook)
        assert send_through(hook).header("X-Token") == "tok-1"

    def test_excluded_paths(self, manager):
        hook = TokenAuthHook(manager, excluded_paths=("/health",))
        assert not hook.should_authenticate(HttpRequest(HttpMethod.GET, "/health"))
        assert hook.should_authenticate(HttpRequest(HttpMethod.GET, "/things"))

    def test_auth_error_statuses(self, manager):
        hook = TokenAuthHook(manager, auth_error_statuses=(401, 403))
        assert hook.is_auth_error(response(401))
        assert hook.is_auth_error(response(403))
        assert not hook.is_auth_error(response(500))
        assert not TokenAuthHook(manager).is_auth_error(response(403))

    @pytest.mark.parametrize(
        "kwargs", [{"header_name": "Bad\nName"}, {"header_name": ""}, {"auth_error_statuses": ()}, {"prefix": "a\r\nb"}]
    )
    def test_bad_configuration(self, manager, kwargs):
        with pytest.raises(ConfigurationError):
            TokenAuthHook(manager, **kwargs)

    def test_repr_has_no_token(self, manager):
        hook = TokenAuthHook(manager)
        send_through(hook)
        assert "tok-1" not in repr(hook)


class TestRefresh:
    def test_refresh_replaces_the_token_this_thread_sent(self, manager, provider):
        hook = TokenAuthHook(manager)
        send_through(hook)
        assert hook.refresh_auth() is True
        assert send_through(hook).header("Authorization") == "Bearer tok-2"
        assert provider.fetch_calls == 2

    def test_50_concurrent_401s_cause_one_fetch(self, manager, provider):
        hook = TokenAuthHook(manager)
        sent = threading.Barrier(50)

        def request_that_gets_401(i: int) -> str:
            call = RequestContext(HttpRequest(HttpMethod.GET, "/things"))  # one call: its own context
            send_through(hook, context=call)  # every call sent tok-1 ...
            sent.wait(10)
            hook.refresh_auth(call)  # ... and now all of them got a 401 at once: each names the token it sent
            return send_through(hook).header("Authorization")

        results, errors = run_threads(50, request_that_gets_401)
        assert errors == []
        assert provider.fetch_calls == 2  # the first token and ONE replacement
        assert set(results) == {"Bearer tok-2"}

    def test_refresh_failure_propagates(self, manager, provider):
        hook = TokenAuthHook(manager)
        send_through(hook)
        provider.fail_with = auth_error("token endpoint down")
        with pytest.raises(AuthenticationException, match="token endpoint down"):
            hook.refresh_auth()

    def test_invalidate_auth(self, manager, provider):
        hook = TokenAuthHook(manager)
        send_through(hook)
        hook.invalidate_auth()
        assert manager.peek_token() is None


class TestWithHttpClient:
    @responses.activate
    def test_401_refreshes_once_and_resends(self, manager, provider):
        def api(request):
            ok = request.headers["Authorization"] == "Bearer tok-2"
            return (200, {}, '{"ok": true}') if ok else (401, {}, "")

        responses.add_callback(responses.GET, "https://api.example.com/things", callback=api)
        client = HttpClient(HttpClientConfig(base_url="https://api.example.com", auth_hook=TokenAuthHook(manager)))
        result = client.get("/things")
        assert result.status_code == 200
        assert [c.request.headers["Authorization"] for c in responses.calls] == ["Bearer tok-1", "Bearer tok-2"]
        assert provider.fetch_calls == 2

    @responses.activate
    def test_token_endpoint_failure_during_401_reaches_caller(self, manager, provider):
        responses.add(responses.GET, "https://api.example.com/things", status=401)
        client = HttpClient(HttpClientConfig(base_url="https://api.example.com", auth_hook=TokenAuthHook(manager)))
        manager.get_token()
        provider.fail_with = auth_error("token endpoint down")
        with pytest.raises(AuthenticationException, match="token endpoint down"):
            client.get("/things")
        assert manager.peek_token() is None  # the rejected token is not sent again
