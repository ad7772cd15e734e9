"""A canary private key and every signed assertion are never shown: reprs, exceptions (chains, pickles), to_curl, DEBUG logs.

The partner here is hostile: it echoes the assertion (and the subject token) back in its
error text and in an HTML error page. Each canary is first proven to be *in use* (the
partner received it, or the signature verifies with the canary key's public half), then
searched for in everything an operator or a log aggregator can see.
"""

from __future__ import annotations

import logging
import pickle
import traceback
from urllib.parse import parse_qs

import pytest
import responses

from requestforge_django.http.builtin_hooks import LoggingErrorHook, LoggingRequestHook, LoggingResponseHook
from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfig
from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.http.hooks import ResponseHookInterface
from requestforge_django.http.messages import HttpResponse, RequestContext
from requestforge_django.tokens import (
    ClientCredentialsTokenProvider,
    GrantAssertion,
    InMemoryTokenStorage,
    JwtBearerTokenProvider,
    TokenExchangeTokenProvider,
    TokenManager,
)
from tests.http.test_masking_everywhere import every_exception

from .jose_keys import TOKEN_URL, decode, pem, pem_needles, rsa_key

CANARY_KEY = lambda: rsa_key(2048, "canary")  # noqa: E731 - one key per process, made on first use
SUBJECT = "canary-subject-token-5f1e2d3c4b5a69788796a5b4c3d2e1f0"


class Capture(ResponseHookInterface):
    """Keeps every response the token client got (to show their requests every way they can be shown)."""

    def __init__(self) -> None:
        self.responses: list[HttpResponse] = []

    def after_response(self, response: HttpResponse, context: RequestContext) -> HttpResponse:
        self.responses.append(response)
        return response


def logged_client(capture: Capture) -> HttpClient:
    return HttpClient(
        HttpClientConfig(
            name="token-test",
            trusted_origins=("https://auth.example.com",),
            request_hooks=(LoggingRequestHook(log_body=True),),
            response_hooks=(LoggingResponseHook(log_body=True), capture),
            error_hooks=(LoggingErrorHook(),),
        )
    )


def echo_everything(request) -> tuple[int, dict, str]:
    """A hostile partner: 400 with every form value it got in the error text."""
    body = request.body if isinstance(request.body, str) else request.body.decode()
    values = " ".join(value for values in parse_qs(body).values() for value in values)
    import json

    return 400, {"Content-Type": "application/json"}, json.dumps({"error": "invalid_client", "error_description": f"refused: {values}"})


def echo_html(request) -> tuple[int, dict, str]:
    body = request.body if isinstance(request.body, str) else request.body.decode()
    return 401, {"Content-Type": "text/html"}, f"<html><pre>{body}</pre></html>"


def assert_nowhere(needles: list[str], *texts: str | bytes) -> None:
    for text in texts:
        for needle in needles:
            assert (needle.encode() if isinstance(text, bytes) else needle) not in text, "a canary leaked"


def shown_exception(exc: BaseException) -> list[str | bytes]:
    shown: list[str | bytes] = ["".join(traceback.format_exception(exc)), pickle.dumps(exc)]
    for item in every_exception(exc):
        shown += [str(item), repr(item)]
    for item in every_exception(pickle.loads(pickle.dumps(exc))):
        shown += [str(item), repr(item)]
    return shown


def providers(http: HttpClient) -> dict[str, object]:
    key = pem(CANARY_KEY())
    return {
        "private_key_jwt": ClientCredentialsTokenProvider(
            TOKEN_URL, "svc", auth_method="private_key_jwt", private_key=key, key_id="k1", service_name="billing", http_client=http
        ),
        "jwt_bearer": JwtBearerTokenProvider(
            TOKEN_URL, assertion=GrantAssertion("svc@iam", key), service_name="crm", http_client=http, client_id="crm-app"
        ),
        "token_exchange": TokenExchangeTokenProvider(
            TOKEN_URL,
            subject_token_source=lambda: SUBJECT,
            subject_service_name="frontend",
            client_id="orders",
            auth_method="private_key_jwt",
            private_key=key,
            service_name="orders",
            http_client=http,
        ),
    }


@pytest.mark.parametrize("kind", ["private_key_jwt", "jwt_bearer", "token_exchange"])
@pytest.mark.parametrize("partner", [echo_everything, echo_html])
def test_canaries_never_shown(kind, partner, caplog):
    caplog.set_level(logging.DEBUG)
    capture = Capture()
    provider = providers(logged_client(capture))[kind]
    with responses.RequestsMock() as mocked:
        mocked.add_callback(responses.POST, TOKEN_URL, callback=partner)
        manager = TokenManager(provider, InMemoryTokenStorage())  # type: ignore[arg-type]
        with pytest.raises(AuthenticationException) as info:
            manager.get_token()
        body = mocked.calls[0].request.body
        sent = parse_qs(body if isinstance(body, str) else body.decode())
    assertion = (sent.get("client_assertion") or sent["assertion"])[0]
    assert decode(assertion, CANARY_KEY(), audience=TOKEN_URL)  # in use: signed with the canary key, received by the partner
    needles = [*pem_needles(pem(CANARY_KEY())), assertion, assertion.split(".")[2]]
    if kind == "token_exchange":
        assert sent["subject_token"] == [SUBJECT]
        needles.append(SUBJECT)
    shown: list[str | bytes] = [repr(provider), str(provider), *shown_exception(info.value), caplog.text]
    shown += [record.getMessage() + repr(record.args) for record in caplog.records]
    for response in capture.responses:
        request = response.request
        assert request is not None
        shown += [request.to_curl(), repr(request), repr(request.masked()), repr(response), str(request.to_dict())]
    assert capture.responses, "the token request went through the logged client"
    assert_nowhere(needles, *shown)
    assert any("POST" in record.getMessage() for record in caplog.records)  # the DEBUG log did show the request


def test_configuration_objects_never_show_the_key():
    key = pem(CANARY_KEY())
    http = HttpClient(HttpClientConfig(trusted_origins=("https://auth.example.com",)))
    objects = list(providers(http).values())
    objects += [GrantAssertion("svc", key), objects[0].client_authentication]  # type: ignore[attr-defined]
    for item in objects:
        assert_nowhere(pem_needles(key), repr(item), str(item))
        with pytest.raises(TypeError):
            pickle.dumps(getattr(item, "client_authentication", item))


def test_assertion_fields_are_secret_by_name():
    from requestforge_django.http.messages import HttpMethod, HttpRequest

    assertion = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJzdmMifQ.c2lnbmF0dXJlLWNhbmFyeS12YWx1ZQ"
    request = HttpRequest(HttpMethod.POST, TOKEN_URL, data={"client_assertion": assertion, "assertion": assertion, "grant_type": "x"})
    for text in (request.to_curl(), repr(request), str(request.to_dict()), repr(request.masked().data)):
        assert assertion not in text
    assert "grant_type=x" in request.to_curl() and request.to_dict()["data"]["grant_type"] == "x"
