"""The trust boundary through the Django layer: clients defined in ``REQUESTFORGE``, ``manage.py check``, ``requestforge_call``.

Every settings-defined client with credentials (each AUTH TYPE, a pipeline, a secret
default header named in SENSITIVE_HEADERS) talks to ``partner`` (its BASE_URL). A second
:class:`PartnerServer`, ``other``, records everything it receives: the tests assert there
that nothing secret arrived unless ``TRUSTED_ORIGINS`` says it may.
"""

from __future__ import annotations

import base64
import io
import shlex
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.test import override_settings

from requestforge_django import get_client, get_pipeline, get_token_manager
from requestforge_django.http.exceptions import ConfigurationError, HttpClientException, UntrustedOriginException
from requestforge_django.http.hooks import RequestHookInterface
from requestforge_django.http.messages import HttpRequest, RequestContext
from requestforge_django.testing import APP_TOKEN_PATH, DEVICE_PATH, StubTokenEndpoint
from tests.support.partner_server import PartnerServer, Received, Reply

pytestmark = pytest.mark.django_db(databases=[])

CLIENT_SECRET = "oauth-client-secret-canary-0123456789"
DEVICE_ID = "device-id-canary-0123456789abcdef"
BEARER = "bearer-canary-0123456789abcdef"
API_KEY = "apikey-canary-0123456789abcdef"
PASSWORD = "basic-canary-password-0123456789"
BASIC = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
HEADER_SECRET = "header-canary-0123456789abcdef"
CANARIES = (CLIENT_SECRET, DEVICE_ID, BEARER, API_KEY, PASSWORD, BASIC, HEADER_SECRET)
REDIRECTS = [301, 302, 303, 307, 308]


def auth_settings(tokens: StubTokenEndpoint) -> dict[str, dict[str, Any]]:
    """Client name -> what gives it credentials; every way the REQUESTFORGE setting offers."""
    oauth = {"TYPE": "client_credentials", "TOKEN_URL": tokens.token_url, "CLIENT_ID": tokens.client_id, "CLIENT_SECRET": CLIENT_SECRET}
    return {
        "oauth": {"AUTH": oauth},
        "bearer": {"AUTH": {"TYPE": "bearer", "TOKEN": BEARER}},
        "api_key_header": {"AUTH": {"TYPE": "api_key", "KEY": API_KEY, "HEADER": "X-Partner-Key"}},
        "api_key_query": {"AUTH": {"TYPE": "api_key", "KEY": API_KEY, "QUERY_PARAM": "key"}},
        "basic": {"AUTH": {"TYPE": "basic", "USERNAME": "alice", "PASSWORD": PASSWORD}},
        "pipeline": {"AUTH": {"TYPE": "pipeline", "PIPELINE": "partner"}},
        # "X-Partner-Sig" looks harmless by name: only SENSITIVE_HEADERS makes it a credential.
        "secret_header": {"HEADERS": {"X-Partner-Sig": HEADER_SECRET}, "SENSITIVE_HEADERS": ["X-Partner-Sig"]},
    }


KINDS = ["oauth", "bearer", "api_key_header", "api_key_query", "basic", "pipeline", "secret_header"]


def pipeline_setting(tokens: StubTokenEndpoint) -> dict[str, Any]:
    """Two steps on the StubTokenEndpoint; the client sends the second step's token."""
    device = {"NAME": "device", "FETCHER": "header", "URL": tokens.url + DEVICE_PATH, "HEADERS": {"X-Device-ID": DEVICE_ID}}
    device["TOKEN_HEADER"] = "X-Device-Token"
    app = {"NAME": "app", "FETCHER": "body", "URL": tokens.url + APP_TOKEN_PATH, "HEADERS": {"X-Device-Token": "{device}"}}
    app.update(DATA={"client_id": tokens.app_client_id}, DEPENDS_ON=["device"])
    return {"STEPS": [device, app]}


@pytest.fixture
def partner() -> Iterator[PartnerServer]:
    """The clients' own partner (their BASE_URL)."""
    with PartnerServer() as server:
        yield server


@pytest.fixture
def other() -> Iterator[PartnerServer]:
    """Another origin (same host, another port): it must never see a credential unless trusted."""
    with PartnerServer() as server:
        server.route("*", "*", Reply(200, {"other": True}))
        yield server


@pytest.fixture
def tokens() -> Iterator[StubTokenEndpoint]:
    with StubTokenEndpoint(client_secret=CLIENT_SECRET, device_id=DEVICE_ID) as server:
        yield server


@pytest.fixture
def configure(settings: Any, partner: PartnerServer, tokens: StubTokenEndpoint) -> Callable[..., None]:
    """``configure(**options)``: REQUESTFORGE with one client per kind (plus ``public``, without credentials) on ``partner``."""

    def apply(**options: Any) -> None:
        clients = {name: {"BASE_URL": partner.url, "TIMEOUT": 5, **extra, **options} for name, extra in auth_settings(tokens).items()}
        clients["public"] = {"BASE_URL": partner.url, "TIMEOUT": 5, **options}
        # A fresh KEY_PREFIX: no token cached by an earlier test (for another StubTokenEndpoint) is reused.
        prefix = f"rf-trust-{uuid.uuid4().hex[:8]}"
        settings.REQUESTFORGE = {"KEY_PREFIX": prefix, "CLIENTS": clients, "PIPELINES": {"partner": pipeline_setting(tokens)}}

    return apply


def issued_tokens() -> list[str]:
    held = [get_token_manager("oauth").peek_token(), *(get_pipeline("partner").peek_step(step) for step in ("device", "app"))]
    return [token.access_token for token in held if token is not None]


STATIC_CREDENTIALS = {
    "bearer": f"Bearer {BEARER}",
    "api_key_header": f"'X-Partner-Key': '{API_KEY}'",
    "api_key_query": f"key={API_KEY}",
    "basic": f"Basic {BASIC}",
    "secret_header": f"'X-Partner-Sig': '{HEADER_SECRET}'",
}


def credential_of(kind: str) -> str:
    """What a request of client ``kind`` carries on the wire (tokens as issued by the StubTokenEndpoint)."""
    if kind in STATIC_CREDENTIALS:
        return STATIC_CREDENTIALS[kind]
    held = get_token_manager("oauth").peek_token() if kind == "oauth" else get_pipeline("partner").peek_step("app")
    assert held is not None, f"{kind}: no token was fetched"
    return f"Bearer {held.access_token}"


def wire(received: Received) -> str:
    """Everything a server saw of one request: request line (path and query), headers, body."""
    return f"{received.method} {received.path}\n{received.headers!r}\n{received.body!r}"


def leaked(text: str) -> list[str]:
    return [secret for secret in (*CANARIES, *issued_tokens()) if secret in text]


def assert_no_credential(received: list[Received]) -> None:
    assert received, "the request should have arrived"
    assert [leaked(wire(r)) for r in received] == [[]] * len(received)
    for r in received:
        names = {name.lower() for name in r.headers}
        assert not names & {"authorization", "cookie", "x-partner-key", "x-partner-sig"}
        assert "key=" not in r.path


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# -- get_client(name): origin binding -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_settings_client_refuses_another_origin_and_sends_nothing(kind, configure, partner, other, tokens):
    configure()
    with pytest.raises(UntrustedOriginException) as caught:
        get_client(kind).get(f"{other.url}/steal/secret-path?q=secret-query")
    text = str(caught.value)
    assert caught.value.origin == other.url and other.url in text and repr(kind) in text and "TRUSTED_ORIGINS" in text
    assert "secret-path" not in text and "secret-query" not in text and leaked(text) == []
    assert other.received == [] and partner.received == []
    assert tokens.stats().fetches == 0  # not even a token is fetched for a refused request


@pytest.mark.parametrize("kind", KINDS)
def test_trusted_origins_in_settings_let_the_credentials_through(kind, configure, other):
    configure(TRUSTED_ORIGINS=[other.url])
    assert get_client(kind).get(f"{other.url}/api").json() == {"other": True}
    [arrived] = other.received
    assert credential_of(kind) in wire(arrived)


@pytest.mark.parametrize("entry", ["{url}", "{url}/", "HTTP://127.0.0.1:{port}"], ids=["plain", "trailing-slash", "upper-scheme"])
def test_a_trusted_origin_is_matched_in_its_normal_form(entry, configure, other):
    configure(TRUSTED_ORIGINS=[entry.format(url=other.url, port=other.port)])
    get_client("api_key_header").get(f"{other.url}/api")
    assert leaked(wire(other.received[0])) == [API_KEY]


@pytest.mark.parametrize("status", REDIRECTS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_redirect_to_an_untrusted_origin_arrives_without_credentials(kind, status, configure, partner, other):
    configure()
    partner.route("GET", "/hop", Reply(status, {"moved": True}, headers={"Location": f"{other.url}/landing?page=2"}))
    response = get_client(kind).get("/hop")
    assert response.status_code == 200 and response.url == f"{other.url}/landing?page=2"
    assert credential_of(kind) in wire(partner.requests_to("/hop")[0])  # the partner itself got them
    assert_no_credential(other.received)
    assert other.received[0].path == "/landing?page=2"


@pytest.mark.parametrize("status", REDIRECTS)
def test_a_redirect_to_a_trusted_origin_keeps_the_api_key(status, configure, partner, other):
    configure(TRUSTED_ORIGINS=[other.url])
    partner.route("GET", "/hop", Reply(status, headers={"Location": f"{other.url}/landing"}))
    get_client("api_key_header").get("/hop")
    assert other.received[0].header("X-Partner-Key") == API_KEY


# -- manage.py check: E042 ------------------------------------------------------------------------


def api_key_client(trusted: Any) -> dict[str, Any]:
    client = {"BASE_URL": "https://api.example.com", "AUTH": {"TYPE": "api_key", "KEY": API_KEY}, "TRUSTED_ORIGINS": trusted}
    return {"CLIENTS": {"partner-api": client}}


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("https://auth.example.com/oauth", "without user, path, query or fragment"),
        ("ftp://auth.example.com", "must be http:// or https://"),
        (f"https://alice:{PASSWORD}@auth.example.com", "without user, path, query or fragment"),
        (42, "got int"),
    ],
    ids=["path", "scheme", "userinfo", "not-a-string"],
)
def test_check_reports_e042_for_a_malformed_trusted_origin(entry, fragment):
    with override_settings(REQUESTFORGE=api_key_client(["https://auth.example.com", entry])), pytest.raises(SystemCheckError) as caught:
        run("check")
    text = str(caught.value)
    [line] = [line for line in text.splitlines() if "requestforge.E042" in line]
    assert 'REQUESTFORGE client "partner-api"' in line and '["CLIENTS"]["partner-api"]["TRUSTED_ORIGINS"][1]' in line
    assert fragment in line
    assert PASSWORD not in text and API_KEY not in text


def test_check_accepts_a_valid_trusted_origins_list():
    trusted = ["https://auth.example.com", "https://auth.example.com:8443/", "HTTP://127.0.0.1:8080"]
    with override_settings(REQUESTFORGE=api_key_client(trusted)):
        err = io.StringIO()
        call_command("check", stdout=io.StringIO(), stderr=err)
        assert get_client("partner-api").config.trusted_origins == (
            "https://auth.example.com",
            "https://auth.example.com:8443",
            "http://127.0.0.1:8080",
        )
    assert "requestforge.E" not in err.getvalue()


# -- manage.py requestforge_call ------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*KINDS, "public"])
def test_requestforge_call_refuses_an_absolute_url_on_another_origin(kind, configure, partner, other):
    configure()
    with pytest.raises(CommandError, match=r"^Refused: ") as caught:
        run("requestforge_call", kind, "GET", f"{other.url}/steal?x=1", "-H", "X-Trace: 1")
    text = str(caught.value)
    assert other.url in text and "/steal" not in text and "x=1" not in text and "Nothing was sent" in text
    assert caught.value.returncode != 0
    assert other.received == [] and partner.received == []


@pytest.mark.parametrize("kind", KINDS)
def test_requestforge_call_sends_a_path_an_own_origin_url_and_a_trusted_one(kind, configure, partner, other):
    configure(TRUSTED_ORIGINS=[other.url])
    partner.route("GET", "/api", Reply(200, {"partner": True}))
    for target in ("/api?x=1", f"{partner.url}/api?x=1", f"{other.url}/api"):
        assert "HTTP 200 OK" in run("requestforge_call", kind, "GET", target)
    assert [r.path.split("&")[0] for r in partner.received] == ["/api?x=1", "/api?x=1"]
    assert all(credential_of(kind) in wire(r) for r in [*partner.received, *other.received])


@pytest.mark.parametrize(
    ("kind", "masked"),
    [
        ("bearer", "Authorization: Bearer bear****"),
        ("api_key_header", "X-Partner-Key: apik****"),
        ("api_key_query", "{url}/api?key=****"),
        ("basic", "Authorization: Basic YWxp****"),
        ("oauth", "Authorization: Bearer {token4}****"),
        ("pipeline", "Authorization: Bearer {token4}****"),
    ],
)
def test_requestforge_call_curl_masks_the_credential(kind, masked, configure, partner):
    configure()
    partner.route("GET", "/api", Reply(200))
    out = run("requestforge_call", kind, "GET", "/api", "--curl")
    words = shlex.split(out.splitlines()[0])
    assert words[:3] == ["curl", "-X", "GET"] and words[3].split("?")[0] == f"{partner.url}/api"
    assert masked.format(url=partner.url, token4=credential_of(kind).removeprefix("Bearer ")[:4]) in words
    assert leaked(out) == []


def test_requestforge_call_curl_after_a_cross_origin_redirect_shows_the_request_that_carried_the_key(configure, partner, other):
    configure()
    partner.route("GET", "/hop", Reply(302, headers={"Location": f"{other.url}/landing"}))
    out = run("requestforge_call", "api_key_header", "GET", "/hop", "--curl")
    curl = out.splitlines()[0]
    # The key went to the partner's /hop only; a curl for the other origin with the key would undo the stripping.
    assert curl == f"curl -X GET {partner.url}/hop -H 'X-Partner-Key: apik****'"
    assert leaked(out) == []
    assert_no_credential(other.received)


# -- typed failures at run time -------------------------------------------------------------------


class TenantHeaderHook(RequestHookInterface):
    """Adds ``X-Tenant`` from data known only at run time (here a class attribute the test sets)."""

    tenant = "acme"

    def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        return request.with_headers({"X-Tenant": self.tenant})


@pytest.mark.parametrize("source", ["per-call", "hook"])
@pytest.mark.parametrize("value", [f"{HEADER_SECRET}\r\nX-Injected: 1", f"{HEADER_SECRET}\n", "a\x00b"], ids=["crlf", "lf", "nul"])
def test_a_header_value_with_a_line_break_fails_every_call_typed(source, value, configure, partner, monkeypatch):
    configure(HOOKS=[f"{__name__}.TenantHeaderHook"] if source == "hook" else [])
    partner.route("GET", "/x", Reply(200))
    client = get_client("api_key_header")

    def call(tenant: str) -> Any:
        if source == "per-call":
            return client.get("/x", headers={"X-Tenant": tenant})
        monkeypatch.setattr(TenantHeaderHook, "tenant", tenant)
        return client.get("/x")

    for _ in range(2):  # every call, not only the first
        with pytest.raises(HttpClientException) as caught:
            call(value)
        assert not isinstance(caught.value, ValueError)
        assert "X-Tenant" in str(caught.value) and leaked(str(caught.value)) == [] and leaked(repr(caught.value.original)) == []
    assert partner.received == []
    assert call("acme").status_code == 200 and partner.received[0].header("X-Tenant") == "acme"


def test_a_line_break_in_settings_headers_is_refused_when_the_client_is_built(settings, partner):
    # manage.py check reports E040 for it (tests/django/test_settings_checks_headers_paths.py); without
    # running check, building the client refuses it as well, naming the key and not the value.
    client = {"BASE_URL": partner.url, "HEADERS": {"X-Tenant": f"{HEADER_SECRET}\r\nX-Injected: 1"}}
    settings.REQUESTFORGE = {"CLIENTS": {"partner-api": client}}
    with pytest.raises(ImproperlyConfigured, match=r'\["HEADERS"\]\["X-Tenant"\].*requestforge\.E040') as caught:
        get_client("partner-api")
    assert HEADER_SECRET not in str(caught.value) and "X-Injected" not in str(caught.value)
    assert partner.received == []


@pytest.mark.parametrize(("key", "field"), [("VERIFY_SSL", "verify_ssl"), ("CLIENT_CERT", "client_cert")])
def test_a_tls_file_missing_at_call_time_is_a_configuration_error(key, field, settings, partner, tmp_path: Path):
    pem = tmp_path / "partner.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    https = f"https://127.0.0.1:{partner.port}"
    settings.REQUESTFORGE = {"CLIENTS": {"partner-api": {"BASE_URL": https, "TIMEOUT": 5, key: str(pem)}}}
    client = get_client("partner-api")  # the file exists while the setting is validated and the client built
    pem.unlink()  # then a deploy or a rotation removes it
    for _ in range(2):
        with pytest.raises(ConfigurationError) as caught:
            client.get("/x")
        assert caught.value.field == field and "partner.pem" in str(caught.value)
    assert partner.received == []


def test_a_tls_file_missing_when_the_client_is_built_is_refused_with_e041(settings, tmp_path: Path):
    settings.REQUESTFORGE = {"CLIENTS": {"partner-api": {"BASE_URL": "https://127.0.0.1:9", "VERIFY_SSL": str(tmp_path / "missing.pem")}}}
    with pytest.raises(ImproperlyConfigured, match=r'\["VERIFY_SSL"\].*does not exist.*requestforge\.E041'):
        get_client("partner-api")
