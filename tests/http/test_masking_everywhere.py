"""Secrets stay masked in every form a request, a response, an exception or a spec takes.

Canaries are made at run time (never literals in this file), so a source line shown
next to a traceback cannot be what a "not in" assertion finds.
"""

from __future__ import annotations

import base64
import json
import pickle
import shlex
import socket
import traceback
import uuid
from collections.abc import Iterator
from types import MappingProxyType

import pytest
import requests

from requestforge_django.http.auth import ApiKeyAuthHook, BearerTokenAuthHook
from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfigBuilder
from requestforge_django.http.exceptions import (
    AuthenticationException,
    ConnectionException,
    HttpClientException,
    HttpStatusException,
    MaxRetryException,
    RedactedException,
    redact_exception,
)
from requestforge_django.http.masking import MASK, is_sensitive_name, mask_body, mask_text
from requestforge_django.http.messages import HttpMethod, HttpRequest, HttpResponse
from requestforge_django.http.secrets import Secret
from requestforge_django.setting.specs import AuthSpec, ClientSpec, PipelineSpec, SettingsSpec, StepSpec
from tests.support.partner_server import PartnerServer, Received, Reply


def canary(kind: str) -> str:
    return f"canary-{kind}-{uuid.uuid4().hex}"


def assert_absent(text: str | bytes, *secrets: str) -> None:
    for secret in secrets:
        needle: str | bytes = secret.encode() if isinstance(text, bytes) else secret
        assert needle not in text, f"{secret!r} leaked"


def shown(request: HttpRequest, **options: object) -> list[str]:
    """Every way a request is shown: to_dict (as JSON), to_curl, repr, and the masked copy's repr and pickle."""
    return [
        json.dumps(request.to_dict(**options), default=str),  # type: ignore[arg-type]
        request.to_curl(**options),  # type: ignore[arg-type]
        repr(request),
        repr(request.masked()),
        json.dumps(request.masked().to_dict(mask=False), default=str),
    ]


# -- requests: headers and parameters named in `sensitive` -------------------------------------------


def test_headers_and_params_marked_sensitive_are_masked_however_they_are_named() -> None:
    partner_key, session, query_key = canary("partner-key"), canary("session"), canary("query")
    request = (
        HttpRequest("GET", "https://api.test/v1/items", headers={"Accept": "application/json"})
        .with_headers({"X-Partner-Key": partner_key, "X-Session": session}, sensitive=True)
        .with_params({"key": query_key}, sensitive=True)
    )
    assert request.sensitive == {"x-partner-key", "x-session", "key"}
    for text in shown(request):
        assert_absent(text, partner_key, session, query_key)
    curl = shlex.split(request.to_curl())
    assert "X-Session: cana****" in curl and "Accept: application/json" in curl  # a long value keeps 4 characters
    assert curl[3].startswith("https://api.test/v1/items?key=")
    unmasked = request.to_curl(mask=False)
    assert partner_key in unmasked and session in unmasked and query_key in unmasked


def test_an_api_key_in_a_custom_header_set_by_the_auth_hook_is_never_printed() -> None:
    key = canary("api-key")
    hook = ApiKeyAuthHook(key, header_name="X-Partner")  # an ordinary name: masked because the hook marks it
    from requestforge_django.http.messages import RequestContext

    base = HttpRequest("GET", "/x")
    request = hook.before_request(base, RequestContext(base))
    for text in shown(request):
        assert_absent(text, key)


def test_a_key_name_ending_in_key_is_secret_looking() -> None:
    assert is_sensitive_name("X-Partner-Key") and is_sensitive_name("key") and is_sensitive_name("client_key")
    assert not is_sensitive_name("Idempotency-Key") and not is_sensitive_name("X-Key-Id") and not is_sensitive_name("monkey")


def test_secret_values_are_masked_by_type_and_revealed_only_unmasked() -> None:
    value = canary("secret-value")
    request = HttpRequest("POST", "https://api.test/x", headers={"X-Anything": Secret(value)}, data={"field": Secret(value)})
    for text in shown(request):
        assert_absent(text, value)
    assert request.to_dict(mask=False)["headers"]["X-Anything"] == value
    assert value in request.to_curl(mask=False)


# -- requests: bodies that are not a dict ------------------------------------------------------------


def form_bodies(secret: str) -> Iterator[object]:
    yield {"grant_type": "client_credentials", "client_secret": secret}
    yield f"grant_type=client_credentials&client_secret={secret}"
    yield f"grant_type=client_credentials&client_secret={secret}".encode()
    yield [("grant_type", "client_credentials"), ("client_secret", secret)]
    yield (("grant_type", "client_credentials"), ("client_secret", secret))
    yield json.dumps({"grant_type": "client_credentials", "client_secret": secret})
    yield json.dumps({"grant_type": "client_credentials", "client_secret": secret}).encode()


@pytest.mark.parametrize("index", range(7), ids=["dict", "str", "bytes", "pairs", "tuple-pairs", "json-str", "json-bytes"])
def test_every_form_of_body_is_masked_field_by_field(index: int) -> None:
    secret = canary("client-secret")
    body = list(form_bodies(secret))[index]
    request = HttpRequest("POST", "https://idp.test/token", data=body)
    for text in shown(request):
        assert_absent(text, secret)
    assert "client_credentials" in request.to_curl() and "client_credentials" in json.dumps(request.to_dict(), default=str)
    assert secret in request.to_curl(mask=False)


def test_a_body_that_parses_as_neither_form_nor_json_is_shown_only_by_size() -> None:
    secret = canary("xml")
    for body in (f"<auth><secret>{secret}</secret></auth>", f"<auth>{secret}</auth>".encode(), b"\xff\xfe" + secret.encode()):
        request = HttpRequest("POST", "https://api.test/x", data=body)
        size = len(body) if isinstance(body, bytes) else len(body.encode())
        assert request.to_dict()["data"] == f"<{size} bytes>"
        for text in shown(request):
            assert_absent(text, secret)
    assert mask_body('{"broken json') == "<13 bytes>"


def test_step_fields_marked_sensitive_are_masked_in_json_and_form_bodies() -> None:
    pin = canary("pin")
    request = HttpRequest("POST", "https://api.test/x", json_data={"pin": pin, "device": "d"}, sensitive=frozenset({"pin"}))
    for text in shown(request):
        assert_absent(text, pin)
    request = HttpRequest("POST", "https://api.test/x", data=f"pin={pin}&device=d", sensitive=frozenset({"pin"}))
    for text in shown(request):
        assert_absent(text, pin)


def test_secret_values_lists_what_the_request_sends_as_secrets() -> None:
    token, password, key = canary("token"), canary("password"), canary("key")
    basic = base64.b64encode(f"user:{password}".encode()).decode()
    request = (
        HttpRequest("POST", "https://api.test/x", data={"client_secret": token, "grant_type": "password"})
        .with_headers({"Authorization": f"Basic {basic}"}, sensitive=True)
        .with_params({"key": key}, sensitive=True)
    )
    values = request.secret_values()
    assert {token, password, key, basic} <= values
    assert "password" not in values  # the grant type is not a secret


# -- responses ---------------------------------------------------------------------------------------


def test_response_masked_scrubs_what_the_server_echoed_of_the_request_secrets() -> None:
    token = canary("bearer")
    request = HttpRequest("GET", "https://api.test/x").with_headers({"Authorization": f"Bearer {token}"}, sensitive=True)
    response = HttpResponse(
        500,
        {"Set-Cookie": f"session={token}", "X-Echo": token},
        json.dumps({"you_sent": f"Bearer {token}"}).encode(),
        f"https://api.test/x?echo={token}",
        request=request,
        reason=f"bad {token}",
    )
    masked = response.masked()
    assert_absent(pickle.dumps(masked), token)
    assert_absent(repr(masked) + repr(masked.request) + str(dict(masked.headers)) + masked.text + masked.url + masked.reason, token)
    assert masked.request is not None and masked.request.header("Authorization") == "Bearer cana****"
    assert masked.status_code == 500 and masked.json() == {"you_sent": "****"}


# -- exceptions: chain, traceback, pickle ------------------------------------------------------------


def every_exception(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(e for e in (current.__cause__, current.__context__, getattr(current, "original", None)) if e is not None)
        stack.extend(e for e in (getattr(current, "last_exception", None),) if isinstance(e, BaseException))


def assert_exception_masked(exc: BaseException, *secrets: str) -> None:
    for item in every_exception(exc):
        assert_absent(str(item) + repr(item), *secrets)
    assert_absent("".join(traceback.format_exception(exc)), *secrets)
    data = pickle.dumps(exc)
    assert_absent(data, *secrets)
    restored = pickle.loads(data)
    assert type(restored) is type(exc) and str(restored) == str(exc)
    for item in every_exception(restored):
        assert_absent(str(item) + repr(item), *secrets)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_with_an_api_key_query_parameter_keeps_context_without_the_key() -> None:
    key = canary("query-key")
    base = f"http://127.0.0.1:{free_port()}"
    client = HttpClient(
        HttpClientConfigBuilder().with_base_url(base).with_timeout(5).with_auth_hook(ApiKeyAuthHook(key, query_param="key")).build()
    )
    with pytest.raises(ConnectionException) as info:
        client.get("/v1/items", params={"page": "2"})
    error = info.value
    raw = BaseException.__cause__.__get__(error)  # what `raise ... from exc` stored: the real requests exception
    assert isinstance(raw, requests.exceptions.ConnectionError) and key in str(raw)  # the threat is real
    assert_exception_masked(error, key)
    assert isinstance(error.original, RedactedException) and error.__cause__ is error.original
    assert issubclass(error.original.exc_type, requests.exceptions.ConnectionError)
    assert error.original.type_name == "requests.exceptions.ConnectionError"
    assert "requests.exceptions.ConnectionError: " in "".join(traceback.format_exception(error))
    assert "/v1/items?" in str(error) and "Connection refused" in str(error.original)
    client.close()


@pytest.fixture
def echo_server() -> Iterator[PartnerServer]:
    """Answers 500 with every request header and the body echoed back (a chatty partner)."""

    def echo(received: Received) -> Reply:
        return Reply(500, {"headers": received.headers, "body": received.body.decode(), "path": received.path}, {"X-Echo": received.path})

    with PartnerServer() as server:
        server.route("*", "*", echo)
        yield server


def test_pickled_http_status_exception_carries_a_masked_request(echo_server: PartnerServer) -> None:
    token = canary("bearer")
    client = HttpClient(HttpClientConfigBuilder().with_base_url(echo_server.url).with_auth_hook(BearerTokenAuthHook(token)).build())
    response = client.get("/v1/items")
    assert token in response.text  # the partner echoed it
    with pytest.raises(HttpStatusException) as info:
        response.raise_for_status()
    assert_exception_masked(info.value, token)
    restored = pickle.loads(pickle.dumps(info.value))
    assert restored.response.request.header("Authorization") == "Bearer cana****"
    assert restored.status_code == 500 and restored.response.json()["path"] == "/v1/items"
    assert info.value.response.request.header("Authorization") == f"Bearer {token}"  # in process: the real response
    retry = MaxRetryException("gave up", attempts=2, last_response=response, last_exception=info.value, method="GET", url=response.url)
    assert_exception_masked(retry, token)
    client.close()


def test_foreign_causes_are_redacted_and_our_own_are_kept() -> None:
    secret = canary("password")
    url = f"https://user:{secret}@idp.test/token?client_secret={secret}&key={secret}"
    try:
        try:
            raise ValueError(f"could not parse {url} with Authorization: Bearer {secret}")
        except ValueError as exc:
            raise AuthenticationException("token request failed", service_name="svc", url=url, original=exc) from exc
    except AuthenticationException as error:
        caught = error
    assert_exception_masked(caught, secret)
    assert caught.__cause__ is caught.original and not isinstance(caught.original, ValueError)
    assert issubclass(caught.original.exc_type, ValueError) and repr(caught.original).startswith("ValueError(")
    ours = ConnectionException("down", url="https://h/x")
    assert redact_exception(ours) is ours


def test_a_redacted_exception_survives_pickling_with_its_type_name() -> None:
    stand_in = redact_exception(requests.exceptions.ReadTimeout("read timed out: /x?api_key=abc"))
    assert isinstance(stand_in, RedactedException)
    restored = pickle.loads(pickle.dumps(stand_in))
    assert type(restored).__name__ == "ReadTimeout" and restored.exc_type is requests.exceptions.ReadTimeout
    assert str(restored) == "read timed out: /x?api_key=****"


def test_exception_urls_mask_every_query_value_and_messages_are_masked_as_text() -> None:
    key = canary("inline")
    error = HttpClientException(f"Invalid URL 'https://h/x?key={key}': No scheme", method="GET", url=f"https://h/x?key={key}&page=2")
    assert_absent(str(error) + repr(error) + error.url, key)
    assert "key=" in error.url and "page=" in error.url


def test_mask_text_masks_by_shape_and_known_values() -> None:
    secret = canary("text")
    text = (
        f"url /x?key={secret}&page=2 https://u:{secret}@h/ Authorization: Bearer {secret} "
        f"{{'client_secret': '{secret}'}} password={secret} and {secret[:-1]}x"
    )
    masked = mask_text(text, [secret[:-1] + "x"])
    assert secret not in masked and "token_url: must be" in mask_text("token_url: must be absolute")
    assert mask_text("Basic auth failed") == "Basic auth failed"


# -- specs -------------------------------------------------------------------------------------------


def test_spec_reprs_mask_every_kind_of_secret() -> None:
    values = {
        kind: canary(kind)
        for kind in ("secret", "password", "token", "key", "header", "proxy", "pin", "device", "json", "param", "enc", "form", "base")
    }
    auth = AuthSpec(type="client_credentials", token_url="https://idp.test/token", client_id="svc", client_secret=values["secret"])
    assert isinstance(auth.client_secret, Secret) and auth.client_secret.reveal() == values["secret"]
    others = [
        AuthSpec(type="password", token_url="https://idp.test/token", username="u", password=values["password"]),
        AuthSpec(type="bearer", token=values["token"]),
        AuthSpec(type="api_key", key=values["key"], header="X-Partner-Key"),
        AuthSpec(type="basic", username="u", password=Secret(values["password"])),
    ]
    client = ClientSpec(
        name="partner",
        base_url=f"https://svc:{values['base']}@api.test",
        headers=MappingProxyType({"User-Agent": "shop/1.0", "X-Partner-Key": values["header"], "X-Tenant": values["header"]}),
        sensitive_headers=frozenset({"X-Tenant"}),
        proxies=MappingProxyType({"https": f"http://proxy-user:{values['proxy']}@proxy.test:3128"}),
        auth=auth,
    )
    steps = (
        StepSpec(
            name="device",
            fetcher="header",
            url="https://idp.test/device",
            headers=MappingProxyType({"X-Device-ID": values["device"]}),
            data=MappingProxyType({"pin": values["pin"], "device_id": values["device"]}),
            params=MappingProxyType({"p": values["param"]}),
            token_header="X-Device-Token",
        ),
        StepSpec(name="app", fetcher="body", url="https://idp.test/app", json=MappingProxyType({"nested": (values["json"],)})),
        StepSpec(name="form", fetcher="body", url="https://idp.test/form", data=f"pin={values['form']}"),
    )
    settings = SettingsSpec(
        encryption_keys=(values["enc"],),
        clients=MappingProxyType({"partner": client}),
        pipelines=MappingProxyType({"p": PipelineSpec(name="p", steps=steps)}),
    )
    text = repr(settings) + repr(others) + str(settings) + repr(steps)
    assert_absent(text, *values.values())
    assert "'User-Agent': 'shop/1.0'" in text and "'pin': 'cana****'" in text and "X-Device-ID" in text
    assert settings.encryption_keys[0].reveal() == values["enc"]
    assert pickle.loads(pickle.dumps(auth.client_secret)) == auth.client_secret  # a Secret pickles with its value


def test_http_method_names_are_not_secret() -> None:  # the masking must not turn ordinary values into masks
    request = HttpRequest(HttpMethod.POST, "https://api.test/x", data={"grant_type": "client_credentials", "scope": "read"})
    assert request.to_dict()["data"] == {"grant_type": "client_credentials", "scope": "read"}
    assert MASK not in request.to_curl()
