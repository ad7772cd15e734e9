"""Django's real DEBUG technical 500 page shows no REQUESTFORGE secret when our filter is configured.

A view calls a configured client and fails inside the library while secrets sit in
frame locals and in ``settings.REQUESTFORGE``: a client_credentials token fetch the
token endpoint answers with a 500 or with garbage, a pipeline step whose ``DATA``
carries a ``pin``, a ``device_id`` and a ``password``, a client whose proxy URL holds a
password, and an API key sent in a custom header. The page is rendered by Django's
own handler (``Client(raise_request_exception=False)`` with ``DEBUG=True``), so both the
settings section and every frame's "Local vars" are searched.

Without the filter the same page shows secrets (so these tests can fail), and
``requestforge.W007`` says so.
"""

from __future__ import annotations

import base64
import html as html_lib
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import path
from django.views.debug import get_default_exception_reporter_filter

from requestforge_django import get_client, get_pipeline, get_token_manager
from requestforge_django.debug import FILTER_PATH
from requestforge_django.testing import APP_TOKEN_PATH, DEVICE_PATH, PROTECTED_PATH, TOKEN_PATH, StubTokenEndpoint

pytestmark = pytest.mark.django_db  # the registry reads database definitions too

PROXY_USER = "proxy-user"


def canary(kind: str) -> str:
    return f"canary-{kind}-{uuid.uuid4().hex}"


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the failing view (this module is the ROOT_URLCONF of the tests) -------------------------------------


def call_client(request: Any, name: str) -> HttpResponse:
    response = get_client(name).get(PROTECTED_PATH)
    response.raise_for_status()
    return HttpResponse("unexpected success")


def token_then_fail(request: Any) -> HttpResponse:
    """Application code holding raw secrets in its own locals when the library raises."""
    billing = settings.REQUESTFORGE["CLIENTS"]["billing"]  # the raw client config, CLIENT_SECRET included
    token = get_token_manager("billing").get_token()
    authorization = f"Bearer {token.access_token}"
    response = get_client("keyed").get(PROTECTED_PATH)
    response.raise_for_status()
    return HttpResponse(f"unexpected success {billing} {authorization}")


urlpatterns = [path("call/<str:name>/", call_client), path("token-then-fail/", token_then_fail)]


# -- fixtures --------------------------------------------------------------------------------------------


class Canaries:
    def __init__(self) -> None:
        self.client_secret = canary("client-secret")
        self.pin = canary("pin")
        self.device_id = canary("device-id")
        self.password = canary("step-password")
        self.proxy_password = canary("proxy-password")
        self.api_key = canary("api-key")

    def needles(self) -> list[str]:
        """Every secret, and the Basic credentials built from them."""
        plain = [self.client_secret, self.pin, self.device_id, self.password, self.proxy_password, self.api_key]
        return [*plain, basic("svc", self.client_secret), basic(PROXY_USER, self.proxy_password)]


@pytest.fixture
def secrets() -> Canaries:
    return Canaries()


@pytest.fixture
def server(secrets: Canaries) -> Iterator[StubTokenEndpoint]:
    with StubTokenEndpoint(client_id="svc", client_secret=secrets.client_secret, device_id=secrets.device_id) as running:
        yield running


@pytest.fixture
def configured(settings: Any, server: StubTokenEndpoint, secrets: Canaries) -> StubTokenEndpoint:
    no_retry = {"STRATEGY": "none"}
    settings.REQUESTFORGE = {
        "CACHE": "default",
        "KEY_PREFIX": f"rf-debug-{uuid.uuid4().hex[:8]}",
        "CLIENTS": {
            "billing": {
                "BASE_URL": server.url,
                "TIMEOUT": 5,
                "RETRY": no_retry,
                "AUTH": {
                    "TYPE": "client_credentials",
                    "TOKEN_URL": server.token_url,
                    "CLIENT_ID": "svc",
                    "CLIENT_SECRET": secrets.client_secret,
                },
            },
            "partner-api": {"BASE_URL": server.url, "RETRY": no_retry, "AUTH": {"TYPE": "pipeline", "PIPELINE": "partner"}},
            "proxied": {
                "BASE_URL": server.url,
                "TIMEOUT": 5,
                "RETRY": no_retry,
                "PROXIES": {"http": f"http://{PROXY_USER}:{secrets.proxy_password}@127.0.0.1:{free_port()}"},
            },
            "keyed": {
                "BASE_URL": server.url,
                "RETRY": no_retry,
                "AUTH": {"TYPE": "api_key", "KEY": secrets.api_key, "HEADER": "X-Partner-Auth"},
            },
        },
        "PIPELINES": {
            "partner": {
                "STEPS": [
                    {
                        "NAME": "device",
                        "FETCHER": "header",
                        "URL": server.url + DEVICE_PATH,
                        "HEADERS": {"X-Device-ID": secrets.device_id},
                        "DATA": {"pin": secrets.pin, "device_id": secrets.device_id, "password": secrets.password},
                        "TOKEN_HEADER": "X-Device-Token",
                    },
                    {
                        "NAME": "app",
                        "FETCHER": "body",
                        "URL": server.url + APP_TOKEN_PATH,
                        "HEADERS": {"X-Device-Token": "{device}"},
                        "DATA": {"client_id": server.app_client_id},
                        "DEPENDS_ON": ["device"],
                    },
                ]
            }
        },
    }
    return server


def error_page(url: str, *, with_filter: bool = True) -> str:
    """The technical 500 page Django sends for ``url`` with DEBUG on."""
    overrides: dict[str, Any] = {"DEBUG": True, "ROOT_URLCONF": __name__}
    if with_filter:
        overrides["DEFAULT_EXCEPTION_REPORTER_FILTER"] = FILTER_PATH
    # Django caches the default filter (lru_cache) and override_settings does not clear it.
    get_default_exception_reporter_filter.cache_clear()
    try:
        with override_settings(**overrides):
            response = Client(raise_request_exception=False).get(url)
    finally:
        get_default_exception_reporter_filter.cache_clear()
    assert response.status_code == 500
    html = response.content.decode()
    assert "<title>" in html and "Local vars" in html, "not the technical 500 page"
    return html


def assert_absent(html: str, needles: list[str]) -> None:
    text = html + html_lib.unescape(html)
    leaked = [needle[:12] + "..." for needle in needles if needle in text]
    assert not leaked, f"secrets on the error page: {leaked}"


def assert_useful(html: str, exception: str, *names: str) -> None:
    assert exception in html
    for name in names:
        assert name in html, f"{name!r} missing from the error page"
    for key in ("REQUESTFORGE", "CLIENT_SECRET", "PROXIES", "STEPS", "DATA", "pin", "device_id", "X-Partner-Auth"):
        assert key in html, f"setting key {key!r} missing from the error page"


# -- with the filter: nothing leaks, the page stays useful -----------------------------------------------


@pytest.mark.parametrize(("status", "body"), [(500, None), (200, "<html>not a token</html>")], ids=["500", "garbage"])
def test_token_endpoint_failure(configured: StubTokenEndpoint, secrets: Canaries, status: int, body: Any) -> None:
    configured.fail_with(status, body=body, path=TOKEN_PATH)
    html = error_page("/call/billing/")
    assert configured.stats().token_requests >= 1
    assert_absent(html, secrets.needles())
    assert_useful(html, "AuthenticationException", "billing", configured.token_url)


def test_pipeline_step_failure_after_a_device_token(configured: StubTokenEndpoint, secrets: Canaries) -> None:
    configured.fail_with(500, path=APP_TOKEN_PATH)
    html = error_page("/call/partner-api/")
    device = get_pipeline("partner").peek_step("device")
    assert device is not None  # the first step succeeded: its token is in the failing frames
    assert_absent(html, [*secrets.needles(), device.access_token])
    assert_useful(html, "AuthenticationException", "service=partner, step=app", "/app/token")


def test_proxy_with_credentials_that_cannot_be_reached(configured: StubTokenEndpoint, secrets: Canaries) -> None:
    html = error_page("/call/proxied/")
    assert_absent(html, secrets.needles())
    assert_useful(html, "ConnectionException", "proxied", "proxy-user")


def test_api_key_in_a_custom_header_rejected_by_the_partner(configured: StubTokenEndpoint, secrets: Canaries) -> None:
    html = error_page("/call/keyed/")
    assert configured.stats().protected_unauthorized == 1
    assert_absent(html, secrets.needles())
    assert_useful(html, "HttpStatusException", "keyed", "401")


# -- without the filter: the same pages leak, and W007 says so -------------------------------------------


def test_without_the_filter_the_settings_section_shows_secrets(configured: StubTokenEndpoint, secrets: Canaries) -> None:
    configured.fail_with(500, path=APP_TOKEN_PATH)
    html = error_page("/call/partner-api/", with_filter=False)
    # Django's own filter hides AUTH and a "password" key, but not a pin, a device id or a proxy URL's password.
    for shown in (secrets.pin, secrets.device_id, secrets.proxy_password):
        assert shown in html
    assert secrets.client_secret not in html and secrets.password not in html


def test_secrets_in_application_frame_locals(configured: StubTokenEndpoint, secrets: Canaries) -> None:
    leaky = error_page("/token-then-fail/", with_filter=False)
    token = get_token_manager("billing").peek_token()
    assert token is not None
    # Django hides AUTH in the settings section; these come from the view's locals, which only our filter masks.
    assert secrets.client_secret in leaky and token.access_token in leaky
    html = error_page("/token-then-fail/")
    assert_absent(html, [*secrets.needles(), token.access_token])
    assert_useful(html, "HttpStatusException", "keyed", "authorization")
    assert "<td>authorization</td>" in html and "'Bearer ****'" in html_lib.unescape(html)  # the local is listed, masked


def test_w007_is_reported_only_with_debug_on_and_without_the_filter(configured: StubTokenEndpoint) -> None:
    def w007() -> list[Any]:
        return [message for message in run_checks() if message.id == "requestforge.W007"]

    with override_settings(DEBUG=True):
        warnings = w007()
    assert len(warnings) == 1 and FILTER_PATH in warnings[0].hint
    with override_settings(DEBUG=True, DEFAULT_EXCEPTION_REPORTER_FILTER=FILTER_PATH):
        assert w007() == []
    with override_settings(DEBUG=False):
        assert w007() == []
