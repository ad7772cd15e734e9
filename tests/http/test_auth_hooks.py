"""Static auth hooks and their composition, called directly with a RequestContext."""

from __future__ import annotations

import base64

import pytest
import requests
import responses
from responses import matchers

from requestforge_django.http import auth as auth_module
from requestforge_django.http.auth import ApiKeyAuthHook, BasicAuthHook, BearerTokenAuthHook, CompositeAuthHook
from requestforge_django.http.config import HttpClientConfigBuilder
from requestforge_django.http.exceptions import ConfigurationError
from requestforge_django.http.hooks import AuthHookInterface
from requestforge_django.http.messages import HttpRequest, HttpResponse, RequestContext

TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload-part.signature-part-0123456789"
API_KEY = "sk_live_0123456789abcdefghij"
PASSWORD = "correct-horse-battery-staple"


def apply(hook: AuthHookInterface, request: HttpRequest) -> HttpRequest:
    return hook.before_request(request, RequestContext(request))


def response_for(request: HttpRequest, status: int) -> HttpResponse:
    return HttpResponse(status_code=status, headers={}, content=b"", url=request.url, request=request)


# -- BearerTokenAuthHook ----------------------------------------------------------------------


class TestBearerTokenAuthHook:
    def test_sets_the_bearer_header_replacing_any_existing_one(self):
        request = HttpRequest("GET", "/x", headers={"authorization": "Basic old", "Accept": "a"})
        sent = apply(BearerTokenAuthHook(TOKEN), request)
        assert dict(sent.headers) == {"Accept": "a", "Authorization": f"Bearer {TOKEN}"}
        assert request.header("Authorization") == "Basic old"

    def test_custom_header_and_prefix(self):
        assert (
            apply(BearerTokenAuthHook("t0k", header_name="X-Auth", prefix="Token"), HttpRequest("GET", "/x")).header("X-Auth")
            == "Token t0k"
        )
        assert apply(BearerTokenAuthHook("t0k", prefix=""), HttpRequest("GET", "/x")).header("Authorization") == "t0k"

    def test_static_credentials_do_not_refresh(self):
        hook = BearerTokenAuthHook(TOKEN)
        request = HttpRequest("GET", "/x")
        assert hook.is_auth_error(response_for(request, 401)) is True
        assert hook.is_auth_error(response_for(request, 403)) is False
        assert hook.refresh_auth() is False
        hook.invalidate_auth()
        assert apply(hook, request).header("Authorization") == f"Bearer {TOKEN}"

    def test_repr_masks_the_token(self):
        text = repr(BearerTokenAuthHook(TOKEN, excluded_paths=("/health",)))
        assert TOKEN not in text
        assert "eyJh****" in text and "/health" in text

    @pytest.mark.parametrize("token", ["", None, 123, "abc\r\nX-Injected: 1"])
    def test_rejects_invalid_tokens(self, token):
        with pytest.raises(ConfigurationError) as info:
            BearerTokenAuthHook(token)
        assert info.value.field == "token"

    def test_config_builder_uses_it_and_keeps_the_token_out_of_the_config_repr(self):
        config = HttpClientConfigBuilder().with_bearer_token(TOKEN, excluded_paths=["/health"]).build()
        assert isinstance(config.auth_hook, BearerTokenAuthHook)
        assert config.auth_hook.excluded_paths == ("/health",)
        assert TOKEN not in repr(config)


# -- excluded_paths ---------------------------------------------------------------------------


class TestExcludedPaths:
    hook = BearerTokenAuthHook(TOKEN, excluded_paths=("/health", "/public/"))

    @pytest.mark.parametrize(
        "url",
        [
            "/health",
            "/health/",
            "/health/live",
            "/health?verbose=1",
            "/health#top",
            "https://api.example.com/health",
            "https://api.example.com/health/ready?x=1",
            "http://localhost:8000/health",
            "/public",
            "/public/docs",
        ],
    )
    def test_excluded(self, url):
        assert self.hook.should_authenticate(HttpRequest("GET", url)) is False

    @pytest.mark.parametrize(
        "url",
        [
            "/healthz",
            "/api/health",
            "/",
            "https://api.example.com",
            "https://api.example.com/",
            "https://api.example.com/users?next=health",
            "/publication",
            "/users",
        ],
    )
    def test_authenticated(self, url):
        assert self.hook.should_authenticate(HttpRequest("GET", url)) is True

    def test_no_exclusions_authenticates_everything(self):
        assert BearerTokenAuthHook(TOKEN).should_authenticate(HttpRequest("GET", "/health")) is True

    def test_a_single_string_is_one_path_not_its_characters(self):
        # tuple("/health") would contain "/", which excludes every path.
        hook = BasicAuthHook("u", "p", excluded_paths="/health")
        assert hook.excluded_paths == ("/health",)
        assert hook.should_authenticate(HttpRequest("GET", "/users")) is True

    def test_missing_leading_slash_is_added(self):
        hook = ApiKeyAuthHook(API_KEY, excluded_paths=["status"])
        assert hook.excluded_paths == ("/status",)
        assert hook.should_authenticate(HttpRequest("GET", "https://h/status")) is False

    @pytest.mark.parametrize("bad", ["", "  ", "https://h/health", "/health?x=1", None])
    def test_entries_that_are_not_paths_are_rejected(self, bad):
        with pytest.raises(ConfigurationError) as info:
            BearerTokenAuthHook(TOKEN, excluded_paths=("/ok", bad))
        assert info.value.field == "excluded_paths"


# -- ApiKeyAuthHook ---------------------------------------------------------------------------


class TestApiKeyAuthHook:
    def test_header_mode(self):
        sent = apply(ApiKeyAuthHook(API_KEY), HttpRequest("GET", "/x", headers={"x-api-key": "old"}))
        assert dict(sent.headers) == {"X-API-Key": API_KEY}

    def test_custom_header_name(self):
        assert apply(ApiKeyAuthHook(API_KEY, header_name="Api-Key"), HttpRequest("GET", "/x")).header("Api-Key") == API_KEY

    def test_query_param_mode_merges_with_existing_params(self):
        request = HttpRequest("GET", "/x", params={"page": 2, "api_key": "old"})
        sent = apply(ApiKeyAuthHook(API_KEY, query_param="api_key"), request)
        assert dict(sent.params) == {"page": 2, "api_key": API_KEY}
        assert dict(sent.headers) == {}
        assert request.params == {"page": 2, "api_key": "old"}

    def test_query_param_mode_without_params(self):
        assert apply(ApiKeyAuthHook(API_KEY, query_param="key"), HttpRequest("GET", "/x")).params == {"key": API_KEY}

    @responses.activate
    def test_query_param_reaches_the_server_alongside_the_url_query(self):
        responses.get(
            "https://api.example.com/items",
            match=[matchers.query_param_matcher({"page": "2", "api_key": API_KEY})],
            json={"ok": True},
        )
        sent = apply(ApiKeyAuthHook(API_KEY, query_param="api_key"), HttpRequest("GET", "https://api.example.com/items?page=2"))
        raw = requests.request(sent.method.value, sent.url, params=sent.params, headers=dict(sent.headers), timeout=5)
        assert raw.json() == {"ok": True}
        assert API_KEY not in sent.to_curl()

    def test_repr_masks_the_key(self):
        for hook in (ApiKeyAuthHook(API_KEY), ApiKeyAuthHook(API_KEY, query_param="api_key")):
            assert API_KEY not in repr(hook)
            assert "sk_l****" in repr(hook)

    def test_rejects_invalid_values(self):
        with pytest.raises(ConfigurationError):
            ApiKeyAuthHook("")
        with pytest.raises(ConfigurationError):
            ApiKeyAuthHook(API_KEY, header_name="")
        with pytest.raises(ConfigurationError):
            ApiKeyAuthHook(API_KEY, query_param="")

    def test_config_builder_masks_a_custom_header_name(self):
        config = HttpClientConfigBuilder().with_api_key(API_KEY, header_name="X-Partner", excluded_paths=["/ping"]).build()
        assert isinstance(config.auth_hook, ApiKeyAuthHook)
        assert "x-partner" in config.sensitive_headers
        assert config.auth_hook.should_authenticate(HttpRequest("GET", "/ping")) is False
        assert API_KEY not in repr(config)


# -- BasicAuthHook ----------------------------------------------------------------------------


class TestBasicAuthHook:
    def test_header_matches_what_requests_would_send(self):
        expected = (
            requests.Request("GET", "https://h/x", auth=requests.auth.HTTPBasicAuth("alice", PASSWORD)).prepare().headers["Authorization"]
        )
        assert apply(BasicAuthHook("alice", PASSWORD), HttpRequest("GET", "https://h/x")).header("Authorization") == expected

    def test_non_ascii_credentials_are_utf8(self):
        value = apply(BasicAuthHook("jürgen", "pässwört"), HttpRequest("GET", "/x")).header("Authorization")
        assert value.startswith("Basic ")
        assert base64.b64decode(value[6:]).decode("utf-8") == "jürgen:pässwört"

    def test_empty_password_is_allowed(self):
        value = apply(BasicAuthHook("sk_test_key", ""), HttpRequest("GET", "/x")).header("Authorization")
        assert base64.b64decode(value[6:]) == b"sk_test_key:"

    def test_header_is_encoded_once_not_per_request(self, monkeypatch):
        hook = BasicAuthHook("alice", PASSWORD)

        def fail(*args, **kwargs):
            raise AssertionError("encoded on the hot path")

        monkeypatch.setattr(auth_module.base64, "b64encode", fail)
        for _ in range(3):
            apply(hook, HttpRequest("GET", "/x"))

    def test_repr_masks_the_password(self):
        text = repr(BasicAuthHook("alice", PASSWORD))
        assert PASSWORD not in text and "'alice'" in text and "****" in text

    @pytest.mark.parametrize(("username", "password"), [("", "p"), ("a:b", "p"), ("alice", None), (None, "p")])
    def test_rejects_invalid_credentials(self, username, password):
        with pytest.raises(ConfigurationError):
            BasicAuthHook(username, password)


# -- hot path ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hook",
    [BearerTokenAuthHook(TOKEN), ApiKeyAuthHook(API_KEY), BasicAuthHook("alice", PASSWORD)],
    ids=["bearer", "api-key", "basic"],
)
def test_before_request_adds_its_one_header_marked_as_a_credential(hook):
    plain = HttpRequest("GET", "/x")
    sent = apply(hook, plain)
    assert plain.headers == {} and plain.sensitive == frozenset()  # the caller's request is untouched
    assert len(sent.headers) == 1
    (name,) = sent.headers
    assert sent.sensitive == {name.lower()}  # what an auth hook adds is a credential
    with_own = apply(hook, HttpRequest("GET", "/x", headers={"X-Trace": "t", name.upper(): "replaced"}))
    assert dict(with_own.headers) == {"X-Trace": "t", name: sent.headers[name]}
    assert with_own.sensitive == {name.lower()}


# -- CompositeAuthHook ------------------------------------------------------------------------


class FakeAuthHook(AuthHookInterface):
    """Records calls; refreshes successfully when told to."""

    def __init__(self, header: str, *, refreshes: bool = False, auth_error_status: int = 401, excluded_paths: tuple[str, ...] = ()):
        self.header = header
        self.refreshes = refreshes
        self.auth_error_status = auth_error_status
        self.excluded_paths = excluded_paths
        self.refresh_calls = 0
        self.invalidate_calls = 0

    def before_request(self, request, context):
        return request.with_headers({self.header: "set"})

    def is_auth_error(self, response):
        return response.status_code == self.auth_error_status

    def refresh_auth(self):
        self.refresh_calls += 1
        return self.refreshes

    def invalidate_auth(self):
        self.invalidate_calls += 1


class TestCompositeAuthHook:
    def test_applies_every_hook_in_order(self):
        composite = CompositeAuthHook(ApiKeyAuthHook(API_KEY), BearerTokenAuthHook(TOKEN))
        sent = apply(composite, HttpRequest("GET", "/x"))
        assert dict(sent.headers) == {"X-API-Key": API_KEY, "Authorization": f"Bearer {TOKEN}"}

    def test_later_hook_wins_on_the_same_header(self):
        sent = apply(CompositeAuthHook(BasicAuthHook("a", "b"), BearerTokenAuthHook(TOKEN)), HttpRequest("GET", "/x"))
        assert sent.header("Authorization") == f"Bearer {TOKEN}"

    def test_skips_children_whose_path_is_excluded(self):
        composite = CompositeAuthHook(ApiKeyAuthHook(API_KEY), BearerTokenAuthHook(TOKEN, excluded_paths=("/public",)))
        sent = apply(composite, HttpRequest("GET", "https://h/public/docs"))
        assert dict(sent.headers) == {"X-API-Key": API_KEY}
        assert composite.should_authenticate(HttpRequest("GET", "/public/docs")) is True

    def test_authenticates_only_when_some_child_applies(self):
        composite = CompositeAuthHook(
            BearerTokenAuthHook(TOKEN, excluded_paths=("/health",)),
            ApiKeyAuthHook(API_KEY, excluded_paths=("/health",)),
        )
        assert composite.should_authenticate(HttpRequest("GET", "/health")) is False
        assert composite.should_authenticate(HttpRequest("GET", "/users")) is True

    def test_own_excluded_paths_exclude_every_child(self):
        composite = CompositeAuthHook(BearerTokenAuthHook(TOKEN), excluded_paths=("/health",))
        assert composite.should_authenticate(HttpRequest("GET", "/health/live")) is False
        assert composite.should_authenticate(HttpRequest("GET", "/users")) is True

    def test_is_auth_error_if_any_applicable_child_says_so(self):
        first, second = FakeAuthHook("A", auth_error_status=401), FakeAuthHook("B", auth_error_status=403, excluded_paths=("/public",))
        composite = CompositeAuthHook(first, second)
        private, public = HttpRequest("GET", "/x"), HttpRequest("GET", "/public/x")
        assert composite.is_auth_error(response_for(private, 401)) is True
        assert composite.is_auth_error(response_for(private, 403)) is True
        assert composite.is_auth_error(response_for(private, 500)) is False
        assert composite.is_auth_error(response_for(public, 403)) is False

    def test_refresh_asks_every_child_and_succeeds_if_any_did(self):
        static, dynamic = FakeAuthHook("A"), FakeAuthHook("B", refreshes=True)
        assert CompositeAuthHook(dynamic, static).refresh_auth() is True
        assert (static.refresh_calls, dynamic.refresh_calls) == (1, 1)
        assert CompositeAuthHook(BearerTokenAuthHook(TOKEN), static).refresh_auth() is False

    def test_invalidate_reaches_every_child(self):
        first, second = FakeAuthHook("A"), FakeAuthHook("B")
        CompositeAuthHook(first, second).invalidate_auth()
        assert (first.invalidate_calls, second.invalidate_calls) == (1, 1)

    def test_repr_masks_every_child(self):
        text = repr(CompositeAuthHook(BearerTokenAuthHook(TOKEN), BasicAuthHook("alice", PASSWORD), ApiKeyAuthHook(API_KEY)))
        for secret in (TOKEN, PASSWORD, API_KEY):
            assert secret not in text
        assert text.startswith("CompositeAuthHook(BearerTokenAuthHook(")

    def test_rejects_no_hooks_or_non_hooks(self):
        with pytest.raises(ConfigurationError):
            CompositeAuthHook()
        with pytest.raises(ConfigurationError):
            CompositeAuthHook(BearerTokenAuthHook(TOKEN), object())
