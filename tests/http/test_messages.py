"""HttpRequest/HttpResponse behaviour and the masking every representation relies on."""

from __future__ import annotations

import dataclasses
import json
import shlex

import pytest

from requestforge_django.http.exceptions import (
    AuthenticationException,
    ConfigurationError,
    HttpClientException,
    HttpStatusException,
    MaxRetryException,
    ResponseParseException,
)
from requestforge_django.http.masking import MASK, is_sensitive_name, mask_headers, mask_mapping, mask_secret, mask_url
from requestforge_django.http.messages import HttpMethod, HttpRequest, HttpResponse, RequestContext, find_header

TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload-part.signature-part-0123456789"
API_KEY = "sk_live_0123456789abcdefghij"
COOKIE = "sessionid=abcdefghijklmnopqrstuvwxyz012345"


def secret_request(**overrides) -> HttpRequest:
    values = {
        "method": "POST",
        "url": "https://user:hunter2-password@api.example.com/v1/items?access_token=querytoken0123456789&page=2",
        "headers": {
            "Authorization": f"Bearer {TOKEN}",
            "Cookie": COOKIE,
            "X-API-Key": API_KEY,
            "X-Tenant-Secretive": "tenant-value-0123456789",
            "Accept": "application/json",
        },
        "params": {"api_key": "paramkey-0123456789abcdef", "q": "shoes"},
        "json_data": {
            "username": "alice",
            "password": "correct-horse-battery-staple",
            "nested": {"client_secret": "nested-secret-0123456789"},
        },
    }
    values.update(overrides)
    return HttpRequest(**values)


SECRETS = (
    TOKEN,
    API_KEY,
    COOKIE,
    "hunter2-password",
    "querytoken0123456789",
    "paramkey-0123456789abcdef",
    "correct-horse-battery-staple",
    "nested-secret-0123456789",
)


def assert_no_secret(text: str, secrets=SECRETS) -> None:
    for secret in secrets:
        assert secret not in text, f"secret {secret[:6]}... leaked into {text!r}"


# -- masking helpers --------------------------------------------------------------------------


class TestMasking:
    def test_mask_secret_keeps_a_short_prefix_of_long_values_only(self):
        assert mask_secret("short") == MASK
        assert mask_secret(None) == MASK
        assert mask_secret(TOKEN) == TOKEN[:4] + MASK

    @pytest.mark.parametrize(
        "name",
        [
            "Authorization",
            "authorization",
            "Cookie",
            "Set-Cookie",
            "X-API-Key",
            "Proxy-Authorization",
            "X-Refresh-Token",
            "client_secret",
            "X-Signature",
        ],
    )
    def test_known_and_marker_names_are_sensitive(self, name):
        assert is_sensitive_name(name)

    @pytest.mark.parametrize("name", ["Accept", "Content-Type", "X-Correlation-ID", "X-RateLimit-Remaining", "page"])
    def test_ordinary_names_are_not_sensitive(self, name):
        assert not is_sensitive_name(name)

    def test_configured_names_are_sensitive_case_insensitively(self):
        assert not is_sensitive_name("X-Tenant")
        assert is_sensitive_name("X-Tenant", extra=["x-TENANT"])

    def test_mask_headers_keeps_the_auth_scheme_visible(self):
        masked = mask_headers({"Authorization": f"Bearer {TOKEN}", "Accept": "text/html"})
        assert masked == {"Authorization": f"Bearer {TOKEN[:4]}{MASK}", "Accept": "text/html"}

    def test_mask_url_masks_query_secrets_and_userinfo_password(self):
        masked = mask_url("https://bob:pw-0123456789@h.example/p?token=abcdef0123456789xyz&page=2")
        assert "pw-0123456789" not in masked and "abcdef0123456789xyz" not in masked
        assert masked.startswith(f"https://bob:{MASK}@h.example/p?")
        assert "page=2" in masked

    def test_mask_url_leaves_urls_without_secrets_untouched(self):
        url = "https://h.example/p?b=2&a=1%20x"
        assert mask_url(url) == url

    def test_mask_url_accepts_a_one_shot_iterable_of_extra_names(self):
        # Regression: a generator was consumed by the "is anything sensitive?" check and nothing got masked.
        masked = mask_url("https://h/?tenant=abc&tenant=def&x=1", (name for name in ["tenant"]))
        assert "abc" not in masked and "def" not in masked and "x=1" in masked

    def test_mask_mapping_masks_nested_fields_and_configured_names(self):
        data = {"a": 1, "inner": [{"password": "pw-0123456789abcdef"}], "tenant": "t-1"}
        assert mask_mapping(data, extra=["Tenant"]) == {"a": 1, "inner": [{"password": "pw-0" + MASK}], "tenant": MASK}

    def test_mask_mapping_masks_containers_under_a_sensitive_key(self):
        # Regression: a list or dict under a secret name was recursed into and returned unmasked.
        masked = mask_mapping(
            {"api_key": ["k-0123456789abcdef", "k2"], "password": {"old": "o", "new": "n"}, "token": ("t-0123456789abcdef",)}
        )
        assert masked == {"api_key": ["k-01" + MASK, MASK], "password": {"old": MASK, "new": MASK}, "token": ["t-01" + MASK]}


# -- HttpRequest ------------------------------------------------------------------------------


class TestHttpRequest:
    def test_method_is_normalised_to_the_enum(self):
        assert HttpRequest("get", "/x").method is HttpMethod.GET
        assert HttpMethod.POST.is_idempotent is False and HttpMethod.PUT.is_idempotent is True

    def test_request_is_frozen_and_detached_from_the_callers_dict(self):
        headers = {"Accept": "a"}
        request = HttpRequest("GET", "/x", headers=headers)
        headers["Accept"] = "changed"
        headers["X-New"] = "1"
        assert dict(request.headers) == {"Accept": "a"}
        with pytest.raises(dataclasses.FrozenInstanceError):
            request.url = "/y"
        with pytest.raises(TypeError):
            request.headers["Accept"] = "b"

    def test_with_headers_replaces_case_insensitively_and_leaves_the_original_alone(self):
        original = HttpRequest("GET", "/x", headers={"authorization": "Basic old", "Accept": "a"})
        updated = original.with_headers({"Authorization": "Bearer new", "X-Num": 5})
        assert dict(updated.headers) == {"Accept": "a", "Authorization": "Bearer new", "X-Num": "5"}
        assert dict(original.headers) == {"authorization": "Basic old", "Accept": "a"}
        assert updated.url == original.url and updated.method is original.method

    def test_with_headers_of_nothing_returns_the_same_object(self):
        request = HttpRequest("GET", "/x")
        assert request.with_headers({}) is request

    def test_header_lookup_and_without_headers_are_case_insensitive(self):
        request = HttpRequest("GET", "/x", headers={"Content-Type": "text/plain", "X-A": "1"})
        assert request.header("content-type") == "text/plain"
        assert request.header("missing") is None
        assert dict(request.without_headers("x-a").headers) == {"Content-Type": "text/plain"}

    def test_repr_masks_default_sensitive_headers_and_url(self):
        text = repr(secret_request())
        assert_no_secret(text)
        assert "Bearer eyJh" in text and "'Accept': 'application/json'" in text

    def test_to_dict_masks_everything_sensitive(self):
        data = secret_request().to_dict()
        assert_no_secret(json.dumps(data))
        assert data["params"] == {"api_key": "para" + MASK, "q": "shoes"}
        assert data["json_data"]["username"] == "alice"
        assert data["headers"]["Accept"] == "application/json"

    def test_to_dict_masks_configured_header_names(self):
        request = secret_request(headers={"X-Tenant-Key-Id": "tenant-0123456789abcd"})
        assert request.to_dict()["headers"]["X-Tenant-Key-Id"] == "tenant-0123456789abcd"
        assert request.to_dict(sensitive_headers={"x-tenant-key-id"})["headers"]["X-Tenant-Key-Id"] == "tena" + MASK

    def test_to_dict_unmasked_on_request(self):
        data = secret_request().to_dict(mask=False)
        assert data["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert data["json_data"]["password"] == "correct-horse-battery-staple"

    def test_to_curl_masks_and_stays_a_valid_command(self):
        curl = secret_request().to_curl()
        assert_no_secret(curl)
        argv = shlex.split(curl)
        assert argv[:3] == ["curl", "-X", "POST"]
        assert argv[3].startswith(f"https://user:{MASK}@api.example.com/v1/items?")
        assert "q=shoes" in argv[3] and "page=2" in argv[3]
        assert "Content-Type: application/json" in argv
        body = json.loads(argv[argv.index("--data-raw") + 1])
        assert body["username"] == "alice" and body["password"] == "corr" + MASK

    def test_to_curl_masks_configured_headers_and_form_bodies(self):
        request = HttpRequest(
            "POST",
            "https://h/token",
            headers={"X-Tenant": "tenant-0123456789abcd"},
            data={"grant_type": "password", "password": "pw-0123456789abcdef"},
        )
        curl = request.to_curl(sensitive_headers=["X-Tenant"])
        assert_no_secret(curl, ("tenant-0123456789abcd", "pw-0123456789abcdef"))
        assert "grant_type=password" in curl

    def test_to_curl_masks_list_valued_secret_params(self):
        curl = HttpRequest("GET", "https://h/x", params={"api_key": ["key-0123456789abcdef"]}).to_curl()
        assert "key-0123456789abcdef" not in curl

    def test_to_curl_unmasked_reproduces_the_request(self):
        curl = HttpRequest("GET", "https://h/x", headers={"Authorization": "Bearer abc"}).to_curl(mask=False)
        assert shlex.split(curl) == ["curl", "-X", "GET", "https://h/x", "-H", "Authorization: Bearer abc"]


# -- HttpResponse -----------------------------------------------------------------------------


def make_response(status=200, content=b"", headers=None, request=None, **kwargs) -> HttpResponse:
    return HttpResponse(
        status_code=status,
        headers=headers or {},
        content=content,
        url=kwargs.pop("url", "https://api.example.com/v1/items?api_key=key-0123456789abcdef"),
        request=request,
        **kwargs,
    )


class TestHttpResponse:
    def test_json_parses_the_body(self):
        assert make_response(content=b'{"a": [1, 2]}').json() == {"a": [1, 2]}

    def test_invalid_json_raises_parse_exception_with_masked_context(self):
        request = HttpRequest("DELETE", "/v1/items")
        response = make_response(status=502, content=b"<html>Bad gateway</html>", request=request)
        with pytest.raises(ResponseParseException) as info:
            response.json()
        error = info.value
        assert error.method == "DELETE"
        assert error.url == "https://api.example.com/v1/items?api_key=key-" + MASK
        assert issubclass(error.original.exc_type, ValueError)  # a masked stand-in (RedactedException)
        text = str(error)
        assert "status 502" in text and "24 bytes" in text and "DELETE https://api.example.com/v1/items" in text
        assert "key-0123456789abcdef" not in text and "key-0123456789abcdef" not in repr(error)

    def test_empty_and_undecodable_bodies_raise_parse_exception(self):
        with pytest.raises(ResponseParseException):
            make_response(content=b"").json()
        with pytest.raises(ResponseParseException):
            make_response(content=b"\xff\xfe\xfa{").json()

    def test_parse_exception_without_request_has_no_method(self):
        with pytest.raises(ResponseParseException) as info:
            make_response(content=b"nope", url="https://h/x").json()
        assert info.value.method is None
        assert str(info.value).endswith("(https://h/x)")

    @pytest.mark.parametrize("content", [b"", b"not json", b"{", b"\xff"])
    def test_json_or_none_returns_none_instead_of_raising(self, content):
        assert make_response(content=content).json_or_none() is None

    def test_json_or_none_returns_falsy_json_values(self):
        assert make_response(content=b"0").json_or_none() == 0
        assert make_response(content=b"[]").json_or_none() == []

    def test_text_uses_the_content_type_charset(self):
        body = "Grüße".encode("latin-1")
        assert make_response(content=body, headers={"content-type": 'text/plain; charset="ISO-8859-1"'}).text == "Grüße"

    def test_text_defaults_to_utf8_and_explicit_encoding_wins(self):
        assert make_response(content="Grüße".encode()).text == "Grüße"
        body = "Grüße".encode("latin-1")
        assert make_response(content=body, headers={"Content-Type": "text/plain; charset=utf-8"}, encoding="latin-1").text == "Grüße"

    def test_text_with_unknown_charset_falls_back_to_utf8(self):
        # Regression: an unknown charset from the server raised LookupError.
        assert make_response(content="ok ✓".encode(), headers={"Content-Type": "text/plain; charset=x-bogus"}).text == "ok ✓"

    @pytest.mark.parametrize(
        ("status", "success", "redirect", "client", "server", "ok"),
        [
            (200, True, False, False, False, True),
            (204, True, False, False, False, True),
            (301, False, True, False, False, True),
            (404, False, False, True, False, False),
            (499, False, False, True, False, False),
            (500, False, False, False, True, False),
            (503, False, False, False, True, False),
        ],
    )
    def test_status_predicates(self, status, success, redirect, client, server, ok):
        response = make_response(status=status)
        assert (response.is_success, response.is_redirect, response.is_client_error, response.is_server_error, response.ok) == (
            success,
            redirect,
            client,
            server,
            ok,
        )

    def test_raise_for_status_returns_self_when_ok(self):
        response = make_response(status=302)
        assert response.raise_for_status() is response

    @pytest.mark.parametrize(("status", "kind"), [(404, "Client error"), (503, "Server error")])
    def test_raise_for_status_raises_with_context(self, status, kind):
        request = HttpRequest("GET", "/v1/items")
        response = make_response(status=status, request=request, reason="Nope")
        with pytest.raises(HttpStatusException) as info:
            response.raise_for_status()
        error = info.value
        assert error.response is response and error.status_code == status and error.method == "GET"
        assert str(error).startswith(f"{kind}: HTTP {status} Nope (GET https://api.example.com/v1/items?api_key=key-")
        assert "key-0123456789abcdef" not in str(error)

    def test_header_lookup_is_case_insensitive_on_plain_dicts(self):
        response = make_response(headers={"Retry-After": "5"})
        assert response.header("retry-after") == "5"
        assert find_header({"A": "1"}, "b") is None

    def test_repr_masks_the_url(self):
        assert "key-0123456789abcdef" not in repr(make_response())


# -- exceptions -------------------------------------------------------------------------------


class TestExceptionText:
    def test_base_exception_masks_url_in_str_and_repr(self):
        error = HttpClientException("boom", method="GET", url="https://u:pw-0123456789@h/x?client_secret=cs-0123456789abcdef")
        for text in (str(error), repr(error), error.url):
            assert "pw-0123456789" not in text and "cs-0123456789abcdef" not in text
        assert str(error).startswith("boom (GET https://u:")

    def test_exception_without_location(self):
        assert str(HttpClientException("boom")) == "boom"
        assert str(HttpClientException("boom", url="https://h/x")) == "boom (https://h/x)"

    def test_configuration_error_names_the_field_and_is_a_value_error(self):
        error = ConfigurationError("must be positive", field="timeout")
        assert str(error) == "timeout: must be positive" and error.field == "timeout"
        assert isinstance(error, ValueError)

    def test_authentication_exception_lists_its_context(self):
        error = AuthenticationException(
            "token fetch failed",
            service_name="billing",
            step="login",
            status_code=400,
            error="invalid_grant",
            url="https://idp/token?password=pw-0123456789abcdef",
        )
        text = str(error)
        assert text.startswith(
            "token fetch failed [service=billing, step=login, status=400, error=invalid_grant] (https://idp/token?password="
        )
        assert "pw-0123456789abcdef" not in text

    def test_max_retry_exception_keeps_the_last_outcome(self):
        cause = TimeoutError("slow")
        error = MaxRetryException("gave up", attempts=4, last_exception=cause, method="GET", url="https://h/x")
        assert error.attempts == 4 and error.last_exception is error.original
        assert error.original.exc_type is TimeoutError and str(error.original) == "slow"  # a masked stand-in


def test_request_context_tracks_attempts():
    context = RequestContext(HttpRequest("GET", "/x"))
    assert not context.is_retry
    context.increment_attempt()
    assert context.is_retry and context.attempt == 1
    assert context.elapsed_ms >= 0
