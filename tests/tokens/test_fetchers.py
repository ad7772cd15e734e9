from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import requests
import responses

from requestforge_django.http.exceptions import AuthenticationException, TimeoutException
from requestforge_django.tokens import BodyTokenFetcher, FetchContext, HeaderTokenFetcher, TokenData

from .fakes import T0, FakeClock

BASE = "https://auth.partner.com"


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def context_with(**tokens: str) -> FetchContext:
    ctx = FetchContext(clock=FakeClock())
    for name, value in tokens.items():
        ctx.add_token(name, TokenData(access_token=value, token_type="Device", refresh_token=f"rt-{value}"))
    return ctx


class TestHeaderFetcher:
    def test_token_from_header(self, mocked):
        mocked.post(f"{BASE}/v1/device/register", headers={"X-Device-Token": "dev-123"})
        fetcher = HeaderTokenFetcher(
            name="device_token",
            base_url=BASE,
            endpoint="/v1/device/register",
            request_headers={"X-Device-ID": "device-123"},
            token_header="X-Device-Token",
            token_type="Device",
            ttl=timedelta(days=30),
        )
        token = fetcher.fetch(context_with())
        assert token.access_token == "dev-123"
        assert token.token_type == "Device"
        assert token.expires_at is None  # the pipeline applies the ttl
        assert mocked.calls[0].request.headers["X-Device-ID"] == "device-123"

    def test_default_lifetime(self, mocked):
        mocked.post(f"{BASE}/d", headers={"X-T": "t"})
        fetcher = HeaderTokenFetcher("d", BASE, "/d", token_header="X-T", default_lifetime=60)
        assert fetcher.fetch(context_with()).expires_at == T0 + timedelta(seconds=60)

    def test_missing_header_names_header_and_step(self, mocked):
        mocked.post(f"{BASE}/d", json={"ok": True})
        fetcher = HeaderTokenFetcher("device_token", BASE, "/d", token_header="X-Device-Token")
        with pytest.raises(AuthenticationException, match="'X-Device-Token'") as info:
            fetcher.fetch(context_with())
        assert info.value.step == "device_token"

    def test_error_status(self, mocked):
        mocked.post(f"{BASE}/d", status=403, json={"error": "access_denied"})
        with pytest.raises(AuthenticationException) as info:
            HeaderTokenFetcher("device_token", BASE, "/d", token_header="X-T").fetch(context_with())
        assert info.value.status_code == 403
        assert info.value.error == "access_denied"


class TestBodyFetcher:
    def test_dotted_fields(self, mocked):
        mocked.post(f"{BASE}/token", json={"data": {"auth": {"token": "app-1", "ttl": "90", "refresh": "r-1"}}})
        fetcher = BodyTokenFetcher(
            "app_token",
            BASE,
            "token",
            token_field="data.auth.token",
            expires_in_field="data.auth.ttl",
            refresh_token_field="data.auth.refresh",
        )
        token = fetcher.fetch(context_with())
        assert (token.access_token, token.refresh_token) == ("app-1", "r-1")
        assert token.expires_at == T0 + timedelta(seconds=90)
        assert token.token_type == "Bearer"

    def test_method_params_and_absolute_endpoint(self, mocked):
        mocked.get("https://other.example.com/t", json={"access_token": "x"})
        fetcher = BodyTokenFetcher("s", BASE, "https://other.example.com/t", method="get", request_params={"client": "c1"})
        fetcher.fetch(context_with())
        assert mocked.calls[0].request.url == "https://other.example.com/t?client=c1"

    @pytest.mark.parametrize(
        ("reply", "expected"),
        [
            ({"status": 200, "body": "<html>oops</html>", "content_type": "text/html"}, "non-JSON (text/html, 17 bytes)"),
            ({"status": 500, "json": {"error": "server_error"}}, "HTTP 500"),
            ({"status": 200, "json": {"token": "x"}}, "'access_token'"),
            ({"status": 200, "json": {"access_token": "x", "expires_in": -1}}, "'expires_in' is negative"),
            ({"status": 200, "body": requests.exceptions.ConnectTimeout("slow")}, "timed out"),
        ],
    )
    def test_failures_name_the_step(self, mocked, reply, expected):
        mocked.post(f"{BASE}/token", **reply)
        with pytest.raises(AuthenticationException) as info:
            BodyTokenFetcher("app_token", BASE, "/token").fetch(context_with())
        assert expected in str(info.value)
        assert info.value.step == "app_token"

    def test_timeout_keeps_original(self, mocked):
        mocked.post(f"{BASE}/token", body=requests.exceptions.ReadTimeout("slow"))
        with pytest.raises(AuthenticationException) as info:
            BodyTokenFetcher("app_token", BASE, "/token").fetch(context_with())
        assert isinstance(info.value.original, TimeoutException)

    def test_literal_secret_scrubbed_from_error(self, mocked):
        mocked.post(f"{BASE}/token", status=400, json={"error": "invalid_client", "error_description": "secret app-secret-123 is wrong"})
        fetcher = BodyTokenFetcher("app_token", BASE, "/token", request_data={"client_secret": "app-secret-123"})
        with pytest.raises(AuthenticationException) as info:
            fetcher.fetch(context_with())
        assert "app-secret-123" not in str(info.value)


class TestTemplates:
    def test_earlier_tokens_in_headers_body_json_and_params(self, mocked):
        mocked.post(f"{BASE}/token", json={"access_token": "user-1"})
        fetcher = BodyTokenFetcher(
            "user_token",
            BASE,
            "/token",
            request_headers={
                "X-Device-Token": "{device_token}",
                "Authorization": "Bearer {app_token}",
                "X-Type": "{device_token.token_type}",
            },
            request_json={
                "device": {"token": "{device_token}", "list": ["{app_token.refresh_token}", 3]},
                "literal": "{{not a placeholder}}",
            },
            request_params={"app": "{app_token}"},
            depends_on=("device_token", "app_token"),
        )
        fetcher.fetch(context_with(device_token="dev-1", app_token="app-1"))
        request = mocked.calls[0].request
        assert request.headers["X-Device-Token"] == "dev-1"
        assert request.headers["Authorization"] == "Bearer app-1"
        assert request.headers["X-Type"] == "Device"
        assert json.loads(request.body) == {"device": {"token": "dev-1", "list": ["rt-app-1", 3]}, "literal": "{not a placeholder}"}
        assert request.url.endswith("?app=app-1")

    def test_form_data_template(self, mocked):
        mocked.post(f"{BASE}/token", json={"access_token": "a"})
        fetcher = BodyTokenFetcher("s2", BASE, "/token", request_data={"device": "{s1}", "id": "x"}, depends_on=["s1"])
        fetcher.fetch(context_with(s1="dev-9"))
        assert parse_qs(mocked.calls[0].request.body.decode()) == {"device": ["dev-9"], "id": ["x"]}

    def test_unknown_placeholder_fails_at_construction(self):
        with pytest.raises(ValueError, match=r"step 'app_token'.*\{device_tokn\}.*depends_on"):
            BodyTokenFetcher("app_token", BASE, "/t", request_headers={"X-D": "{device_tokn}"}, depends_on=("device_token",))

    def test_placeholder_without_dependency_fails(self):
        with pytest.raises(ValueError, match=r"step 'app_token'.*\{device_token\}"):
            BodyTokenFetcher("app_token", BASE, "/t", request_json={"d": "{device_token}"})

    @pytest.mark.parametrize("value", ["{dev:>10}", "{dev!r}", "{dev.__class__}", "{dev[0]}", "a } b", "{"])
    def test_unsupported_template_syntax(self, value):
        with pytest.raises(ValueError, match="step 'app'"):
            BodyTokenFetcher("app", BASE, "/t", request_headers={"X": value}, depends_on=("dev",))

    def test_a_subclass_overrides_the_documented_extension_points(self, mocked):
        mocked.post(f"{BASE}/token", json={"access_token": "u"})

        class UserTokenFetcher(BodyTokenFetcher):
            def _build_request_headers(self, context):
                headers = super()._build_request_headers(context)
                if context and "app_token" in context:
                    headers["X-App-Token"] = context["app_token"].access_token
                return headers

        UserTokenFetcher("user_token", BASE, "/token", depends_on=["app_token"]).fetch(context_with(app_token="app-7"))
        assert mocked.calls[0].request.headers["X-App-Token"] == "app-7"

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"name": ""},
            {"base_url": "auth.partner.com"},
            {"method": "FETCH"},
            {"ttl": timedelta(0)},
            {"ttl": -5},
            {"depends_on": ("s",)},  # itself
            {"timeout": 0},
        ],
    )
    def test_bad_configuration(self, kwargs):
        args = {"name": "s", "base_url": BASE, "endpoint": "/t", **kwargs}
        with pytest.raises(ValueError):
            BodyTokenFetcher(**args)

    def test_bare_string_depends_on_is_one_name(self):
        assert BodyTokenFetcher("b", BASE, "/t", depends_on="app_token").depends_on == ("app_token",)
        assert BodyTokenFetcher("b", BASE, "/t", ttl=60).ttl == timedelta(seconds=60)
