"""One canary secret per kind, configured in ``REQUESTFORGE``; none may ever be printed in full.

Kinds: a client secret, a pipeline step's ``password`` and ``pin``, an API key in a
custom header, a static bearer token, the access tokens the token endpoints return
(one from a real :class:`StubTokenEndpoint`, one from the pipeline's partner), a proxy
password and an encryption key. Each is proven to be *in use* (the partner, the
proxy or the database received it), then searched for in everything an operator or a
log aggregator can see: ``requestforge_django`` logs at DEBUG, ``repr``/``str`` of
specs, clients, requests, responses and exceptions, exception chains, tracebacks and
pickles, ``to_curl``, the management commands' output and the admin pages.

A prefix such as ``cana****`` is allowed; the full value never.
"""

from __future__ import annotations

import base64
import io
import logging
import pickle
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from requestforge_django import get_client, get_pipeline, get_token_manager
from requestforge_django.http.exceptions import HttpClientException
from requestforge_django.http.messages import HttpResponse
from requestforge_django.models import ClientDefinition, Credential
from requestforge_django.registry import registry
from requestforge_django.setting.conf import requestforge_settings
from requestforge_django.testing import PROTECTED_PATH, TOKEN_PATH, StubTokenEndpoint
from tests.admin.conftest import raw_column
from tests.http.test_masking_everywhere import canary, every_exception
from tests.support.partner_server import PartnerServer, Received, Reply

pytestmark = pytest.mark.django_db

PROXY_USER = "proxy-user"
LOGGING_HOOKS = [f"requestforge_django.http.builtin_hooks.Logging{kind}Hook" for kind in ("Request", "Response", "Error")]


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Canaries:
    client_secret: str = field(default_factory=lambda: canary("client-secret"))
    step_password: str = field(default_factory=lambda: canary("step-password"))
    step_pin: str = field(default_factory=lambda: canary("step-pin"))
    api_key: str = field(default_factory=lambda: canary("api-key"))
    bearer: str = field(default_factory=lambda: canary("bearer"))
    device_token: str = field(default_factory=lambda: canary("device-token"))
    access_token: str = field(default_factory=lambda: canary("access-token"))
    proxy_password: str = field(default_factory=lambda: canary("proxy-password"))
    encryption_key: str = field(default_factory=lambda: Fernet.generate_key().decode())


@dataclass
class World:
    secrets: Canaries
    token_server: StubTokenEndpoint
    partner: PartnerServer
    proxy: PartnerServer
    caplog: pytest.LogCaptureFixture
    seen: list[tuple[str, str]] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)
    token_clients: list[str] = field(default_factory=lambda: ["billing"])

    def needles(self) -> dict[str, str]:
        """Every secret by kind, with the Basic credentials built from them and the tokens the StubTokenEndpoint issued."""
        found = dict(vars(self.secrets))
        found["basic client secret"] = basic("svc", self.secrets.client_secret)
        found["basic proxy password"] = basic(PROXY_USER, self.secrets.proxy_password)
        found.update({f"issued access token {index}": token for index, token in enumerate(sorted(self.issued))})
        return found

    def remember_tokens(self) -> None:
        """Add the access tokens the StubTokenEndpoint issued to the clients using it (random values) to the needles."""
        for name in self.token_clients:
            token = get_token_manager(name).peek_token()
            if token is not None:
                self.issued.add(token.access_token)

    def call(self, name: str, path: str) -> HttpResponse:
        try:
            return get_client(name).get(path)
        finally:
            self.remember_tokens()

    def see(self, label: str, *values: Any) -> None:
        """Record what ``values`` look like to someone reading them (text, bytes as latin-1, else repr and str)."""
        for value in values:
            if isinstance(value, bytes):
                self.seen.append((label, value.decode("latin-1")))
            elif isinstance(value, str):
                self.seen.append((label, value))
            else:
                self.seen.append((label, repr(value) + "\n" + str(value)))

    def see_exception(self, label: str, error: BaseException) -> None:
        """The exception and each one it chains: str, repr, response, pickle (and the unpickled copy); the traceback."""
        self.see(f"{label}: traceback", "".join(traceback.format_exception(error)))
        for item in every_exception(error):
            name = f"{label}: {type(item).__name__}"
            data = pickle.dumps(item)
            self.see(name, item, data, pickle.loads(data))
            if isinstance(getattr(item, "response", None), HttpResponse):
                self.see_response(f"{name}.response", item.response)

    def see_response(self, label: str, response: HttpResponse) -> None:
        self.see(label, response, response.masked())
        if response.request is not None:
            request = response.request
            self.see(f"{label}: request", request, request.to_dict(), request.masked())
            self.see(f"{label}: curl", request.to_curl(), request.with_url(response.url).to_curl())

    def assert_clean(self) -> None:
        """No secret in full in anything seen, nor in what the ``requestforge_django`` loggers wrote at DEBUG."""
        self.remember_tokens()
        self.see("logs", self.caplog.text, *(repr(record.__dict__) for record in self.caplog.records))
        assert any(record.levelno == logging.DEBUG for record in self.caplog.records), "DEBUG logs were not captured"
        leaks = [(label, kind) for label, text in self.seen for kind, needle in self.needles().items() if needle in text]
        assert not leaks, f"secrets shown in full: {leaks}"


# -- the partners ----------------------------------------------------------------------------------------


def partner_routes(server: PartnerServer, secrets: Canaries) -> None:
    def device(received: Received) -> Reply:
        form = received.body.decode()
        if f"pin={secrets.step_pin}" in form and f"password={secrets.step_password}" in form:
            return Reply(200, {"registered": True}, {"X-Device-Token": secrets.device_token})
        return Reply(400, {"error": "invalid_request"})

    def app_token(received: Received) -> Reply:
        if received.header("X-Device-Token") == secrets.device_token:
            return Reply(200, {"access_token": secrets.access_token, "token_type": "Bearer", "expires_in": 3600})
        return Reply(401, {"error": "invalid_grant"})

    def items(received: Received) -> Reply:
        if received.header("Authorization") == f"Bearer {secrets.access_token}" or received.header("X-Partner-Auth") == secrets.api_key:
            return Reply(200, {"items": [1, 2]})
        return Reply(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    server.route("POST", "/device/register", device).route("POST", "/app/token", app_token).route("GET", "/api/items", items)
    server.route("GET", "/api/denied", Reply(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'}))


def setting(world: World) -> dict[str, Any]:
    secrets, partner = world.secrets, world.partner.url
    common = {"TIMEOUT": 5, "RETRY": {"STRATEGY": "none"}, "HOOKS": LOGGING_HOOKS}
    return {
        "CACHE": "default",
        "KEY_PREFIX": f"rf-canary-{uuid.uuid4().hex[:8]}",
        "ENCRYPTION_KEYS": [secrets.encryption_key],
        "CLIENTS": {
            "billing": {
                **common,
                "BASE_URL": world.token_server.url,
                "AUTH": {
                    "TYPE": "client_credentials",
                    "TOKEN_URL": world.token_server.token_url,
                    "CLIENT_ID": "svc",
                    "CLIENT_SECRET": secrets.client_secret,
                },
            },
            "partner-api": {**common, "BASE_URL": partner, "AUTH": {"TYPE": "pipeline", "PIPELINE": "partner"}},
            "keyed": {**common, "BASE_URL": partner, "AUTH": {"TYPE": "api_key", "KEY": secrets.api_key, "HEADER": "X-Partner-Auth"}},
            "proxied": {
                **common,
                "BASE_URL": partner,
                "PROXIES": {"http": f"http://{PROXY_USER}:{secrets.proxy_password}@127.0.0.1:{world.proxy.port}"},
                "AUTH": {"TYPE": "bearer", "TOKEN": secrets.bearer},
            },
        },
        "PIPELINES": {
            "partner": {
                "STEPS": [
                    {
                        "NAME": "device",
                        "FETCHER": "header",
                        "URL": partner + "/device/register",
                        "DATA": {"pin": secrets.step_pin, "password": secrets.step_password},
                        "TOKEN_HEADER": "X-Device-Token",
                        "TTL": 3600,
                    },
                    {
                        "NAME": "app",
                        "FETCHER": "body",
                        "URL": partner + "/app/token",
                        "HEADERS": {"X-Device-Token": "{device}"},
                        "DEPENDS_ON": ["device"],
                    },
                ]
            }
        },
    }


@pytest.fixture
def world(settings: Any, caplog: pytest.LogCaptureFixture) -> Iterator[World]:
    secrets = Canaries()
    with (
        StubTokenEndpoint(client_id="svc", client_secret=secrets.client_secret) as token_server,
        PartnerServer() as partner,
        PartnerServer() as proxy,
    ):
        partner_routes(partner, secrets)
        proxy.route("*", "*", Reply(200, {"items": [], "via": "proxy"}))
        result = World(secrets, token_server, partner, proxy, caplog)
        settings.REQUESTFORGE = setting(result)
        caplog.set_level(logging.DEBUG, logger="requestforge_django")
        yield result


def failure(action: Callable[[], Any]) -> BaseException:
    with pytest.raises(HttpClientException) as info:
        action()
    return info.value


# -- the canaries are really in use ----------------------------------------------------------------------


def test_every_canary_reaches_its_partner(world: World) -> None:
    secrets = world.secrets
    for name, path in (("billing", PROTECTED_PATH), ("partner-api", "/api/items"), ("keyed", "/api/items"), ("proxied", "/api/items")):
        response = world.call(name, path)
        assert response.status_code == 200, name
        world.see_response(name, response)
    assert world.token_server.stats().token_requests == 1 and world.token_server.stats().protected_ok == 1
    device = world.partner.requests_to("/device/register")[0].body.decode()
    assert f"pin={secrets.step_pin}" in device and f"password={secrets.step_password}" in device
    assert any(r.header("Authorization") == f"Bearer {secrets.access_token}" for r in world.partner.requests_to("/api/items"))
    assert any(r.header("X-Partner-Auth") == secrets.api_key for r in world.partner.requests_to("/api/items"))
    via_proxy = world.proxy.received[0]
    assert via_proxy.header("Proxy-Authorization") == f"Basic {basic(PROXY_USER, secrets.proxy_password)}"
    assert via_proxy.header("Authorization") == f"Bearer {secrets.bearer}" and via_proxy.path.startswith("http://")
    credential = Credential.objects.create(name="erp", client_id="svc", client_secret=secrets.client_secret)
    stored = raw_column(Credential._meta.db_table, "client_secret", credential.pk)
    assert Fernet(secrets.encryption_key.encode()).decrypt(stored.encode()).decode() == secrets.client_secret
    assert "X-Partner-Auth: cana****" in get_client("keyed").get("/api/items").request.to_curl()  # masked, not dropped
    world.assert_clean()


def test_reprs_of_specs_clients_managers_and_tokens(world: World) -> None:
    for name, path in (("billing", PROTECTED_PATH), ("partner-api", "/api/items")):
        world.call(name, path)
    world.see("settings spec", requestforge_settings.spec, registry, registry.definitions())
    for name in ("billing", "partner-api", "keyed", "proxied"):
        client = get_client(name)
        world.see(f"client {name}", client, client.config)
    world.see("token manager", get_token_manager("billing"), get_token_manager("billing").peek_token())
    pipeline = get_pipeline("partner")
    world.see("pipeline", pipeline, *(pipeline.peek_step(step) for step in ("device", "app")))
    assert get_token_manager("billing").peek_token() is not None  # the issued token is among the needles
    world.assert_clean()


# -- failing calls ---------------------------------------------------------------------------------------


ECHO = "echo"  # the body: an OAuth2 error quoting the client secret back


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, None), (200, "<html>garbage</html>"), (200, "{not json"), (401, ECHO), (400, ECHO)],
    ids=["500", "html", "bad-json", "401-echo", "400-echo-text"],
)
def test_a_failing_token_endpoint(world: World, status: int, body: Any) -> None:
    world.call("billing", PROTECTED_PATH)
    get_token_manager("billing").invalidate_token()
    if body == ECHO:
        echoed = f"the secret {world.secrets.client_secret} is not valid for svc"
        body = {"error": "invalid_client", "error_description": echoed} if status == 401 else echoed
    world.token_server.fail_with(status, body=body, path=TOKEN_PATH)
    error = failure(lambda: world.call("billing", PROTECTED_PATH))
    assert "billing" in str(error) and world.token_server.stats().token_requests == 2
    world.see_exception("token endpoint", error)
    world.assert_clean()


def test_a_partner_or_proxy_that_says_no(world: World) -> None:
    world.proxy.route("*", "*", Reply(407, {"error": "proxy auth"}, {"Proxy-Authenticate": 'Basic realm="proxy"'}))
    for name, path, status in (("keyed", "/api/denied", 401), ("partner-api", "/api/denied", 401), ("proxied", "/api/items", 407)):
        response = world.call(name, path)
        assert response.status_code == status, name
        world.see_response(f"{name} {status}", response)
        world.see_exception(f"{name} {status}", failure(response.raise_for_status))
    world.assert_clean()


def echo_json(received: Received) -> Reply:
    values = " ".join(value for _, value in parse_qsl(received.body.decode()))  # the values without their names
    return Reply(400, {"error": "invalid_request", "error_description": f"rejected {values}"})


def echo_text(received: Received) -> Reply:
    return Reply(500, f"upstream exploded on {received.body.decode()} with {received.headers}")


@pytest.mark.parametrize(
    ("path", "handler"),
    [("/app/token", Reply(500, "upstream exploded")), ("/device/register", echo_json), ("/device/register", echo_text)],
    ids=["app-500", "device-echo-json", "device-echo-text"],
)
def test_a_failing_pipeline_step(world: World, path: str, handler: Any) -> None:
    world.partner.route("POST", path, handler)
    error = failure(lambda: world.call("partner-api", "/api/items"))
    assert "partner" in str(error) and world.partner.requests_to(path)
    world.see_exception("pipeline step", error)
    world.assert_clean()


# -- management commands ---------------------------------------------------------------------------------


def command(world: World, *args: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        world.see(f"{args[0]} error", str(exc))
    world.remember_tokens()
    world.see(" ".join(args), out.getvalue(), err.getvalue())


def test_management_commands(world: World) -> None:
    command(world, "requestforge_warm")
    assert get_token_manager("billing").peek_token() is not None and get_pipeline("partner").peek_step("app") is not None
    command(world, "requestforge_status")
    command(world, "requestforge_status", "--json")
    for name, path in (("billing", PROTECTED_PATH), ("partner-api", "/api/items"), ("keyed", "/api/items"), ("proxied", "/api/items")):
        command(world, "requestforge_call", name, "GET", path, "--curl")
    command(world, "requestforge_call", "keyed", "GET", "/api/denied", "--curl")
    command(
        world, "requestforge_call", "partner-api", "POST", "/app/token", "--curl", "-H", f"X-Device-Token: {world.secrets.device_token}"
    )
    world.token_server.fail_with(500, path=TOKEN_PATH)
    command(world, "requestforge_invalidate", "--all")
    command(world, "requestforge_warm")
    command(world, "requestforge_status")
    assert any("requestforge_warm error" in label for label, _ in world.seen)  # the failing warm did fail
    curl = next(text for label, text in world.seen if label.startswith("requestforge_call keyed GET /api/items"))
    assert "X-Partner-Auth: cana****" in curl
    world.assert_clean()


# -- admin -----------------------------------------------------------------------------------------------


def test_admin_pages(world: World, admin_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    secrets = world.secrets
    with django_capture_on_commit_callbacks(execute=True):
        credential = Credential.objects.create(
            name="erp",
            client_id="svc",
            client_secret=secrets.client_secret,
            password=secrets.step_password,
            api_key=secrets.api_key,
            token=secrets.bearer,
            allowed_origins=[world.token_server.url],
        )
        definition = ClientDefinition.objects.create(
            name="erp-api",
            base_url=world.token_server.url,
            auth_type="client_credentials",
            token_url=world.token_server.token_url,
            credential=credential,
        )
    world.token_clients.append("erp-api")
    assert world.call("erp-api", PROTECTED_PATH).status_code == 200 and world.call("billing", PROTECTED_PATH).status_code == 200
    world.token_server.fail_with(500, path=TOKEN_PATH)
    status_url = reverse("admin:requestforge_django_tokenstatus")
    refreshed = admin_client.post(status_url, {"action": "refresh", "kind": "client", "name": "billing"}, follow=True)
    assert any(str(m).startswith("Could not refresh billing") for m in refreshed.context["messages"])
    admin = "admin:requestforge_django_"
    pages = {  # label: (response, text the page must show, so it is the page we think)
        "token status after a failed refresh": (refreshed, "AuthenticationException"),
        "token status": (admin_client.get(status_url), "erp-api"),
        "credential list": (admin_client.get(reverse(f"{admin}credential_changelist")), "erp"),
        "credential change": (admin_client.get(reverse(f"{admin}credential_change", args=[credential.pk])), "Currently set"),
        "client list": (admin_client.get(reverse(f"{admin}clientdefinition_changelist")), "erp-api"),
        "client change": (admin_client.get(reverse(f"{admin}clientdefinition_change", args=[definition.pk])), world.token_server.token_url),
    }
    for label, (response, expected) in pages.items():
        html = response.content.decode()
        assert response.status_code == 200 and expected in html, label
        world.see(f"admin {label}", html)
    world.assert_clean()
