"""The trust boundary of the HTTP core, asserted at real loopback servers.

Where a client's credentials may go (its BASE_URL origin and its trusted origins only),
what each redirect hop carries, and the limits of one send (size cap, overall deadline).
A second :class:`PartnerServer` (``other``) records everything it receives: the tests
assert there, on its recorded headers, query strings and bodies, that no credential of
any kind arrived.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import responses

from requestforge_django.http.auth import ApiKeyAuthHook, BasicAuthHook, BearerTokenAuthHook, CompositeAuthHook
from requestforge_django.http.builtin_hooks import AuthorizationHook
from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfig, HttpClientConfigBuilder
from requestforge_django.http.exceptions import (
    ConfigurationError,
    HttpClientException,
    ResponseParseException,
    TimeoutException,
    UntrustedOriginException,
)
from requestforge_django.http.hooks import RequestHookInterface
from requestforge_django.http.messages import HttpRequest, RequestContext
from requestforge_django.http.secrets import Secret
from requestforge_django.tokens.data import TokenData
from requestforge_django.tokens.interfaces import TokenProviderInterface
from requestforge_django.tokens.manager import TokenManager
from tests.support.partner_server import PartnerServer, Received, Reply

BEARER = "bearer-canary-0123456789abcdef"
API_KEY = "apikey-canary-0123456789abcdef"
PASSWORD = "basic-canary-password-0123456789"
BASIC = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
HEADER_SECRET = "header-canary-0123456789abcdef"
OAUTH_TOKEN = "oauth-canary-0123456789abcdef"
USER_TOKEN = "user-canary-0123456789abcdef"
SECRETS = (BEARER, API_KEY, PASSWORD, BASIC, HEADER_SECRET, OAUTH_TOKEN, USER_TOKEN)


class CountingProvider(TokenProviderInterface):
    """Hands out OAUTH_TOKEN and counts fetches (a refused request must not even fetch a token)."""

    def __init__(self) -> None:
        self.fetches = 0

    @property
    def service_name(self) -> str:
        return "oauth"

    def fetch_token(self) -> TokenData:
        self.fetches += 1
        return TokenData(OAUTH_TOKEN)


def _oauth(builder: HttpClientConfigBuilder) -> HttpClientConfigBuilder:
    return builder.with_token_auth(TokenManager(CountingProvider()))


#: Every way a client can hold credentials, each applied to a builder.
AUTH_KINDS: dict[str, Callable[[HttpClientConfigBuilder], HttpClientConfigBuilder]] = {
    "oauth": _oauth,
    "bearer": lambda b: b.with_bearer_token(BEARER),
    "api_key_header": lambda b: b.with_auth_hook(ApiKeyAuthHook(API_KEY, header_name="X-Partner-Key")),
    "api_key_query": lambda b: b.with_auth_hook(ApiKeyAuthHook(API_KEY, query_param="key")),
    "basic": lambda b: b.with_basic_auth("alice", PASSWORD),
    "composite": lambda b: b.with_auth_hook(
        CompositeAuthHook(BasicAuthHook("alice", PASSWORD), ApiKeyAuthHook(Secret(API_KEY), header_name="X-Partner-Key"))
    ),
    "secret_default_header": lambda b: b.with_header("X-Partner-Secret", HEADER_SECRET).with_sensitive_headers(["X-Partner-Secret"]),
    "secret_header_by_name": lambda b: b.with_header("X-Access-Token", HEADER_SECRET),
    "secret_header_value": lambda b: b.with_header("X-Plain", Secret(HEADER_SECRET)),
    "authorization_hook": lambda b: b.with_request_hook(AuthorizationHook(lambda: USER_TOKEN, header_name="X-User")),
}
KINDS = list(AUTH_KINDS)


@pytest.fixture
def partner() -> Iterator[PartnerServer]:
    """The client's own partner (its BASE_URL)."""
    with PartnerServer() as server:
        yield server


@pytest.fixture
def other() -> Iterator[PartnerServer]:
    """Another origin (same host, another port): it must never see a credential unless trusted."""
    with PartnerServer() as server:
        server.route("*", "*", Reply(200, {"other": True}))
        yield server


def client_with(kind: str, base_url: str = "", **options: object) -> HttpClient:
    builder = HttpClientConfigBuilder().with_timeout(5)
    if base_url:
        builder.with_base_url(base_url)
    AUTH_KINDS[kind](builder)
    for name, value in options.items():
        getattr(builder, f"with_{name}")(*value if isinstance(value, tuple) else (value,))
    return HttpClient(builder.build())


def wire(received: Received) -> str:
    """Everything a server saw of one request: request line (path and query), headers, body."""
    return f"{received.method} {received.path}\n{received.headers!r}\n{received.body!r}"


def leaked(received: list[Received]) -> list[str]:
    return [secret for r in received for secret in SECRETS if secret in wire(r)]


def assert_no_credential(received: list[Received]) -> None:
    assert received, "the request should have arrived"
    assert leaked(received) == []
    for r in received:
        names = {name.lower() for name in r.headers}
        assert not names & {"authorization", "proxy-authorization", "cookie", "x-partner-key", "x-partner-secret", "x-access-token"}
        assert "key=" not in r.path


# -- origin binding ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_request_to_another_origin_is_refused_and_nothing_is_sent(kind, method, partner, other):
    client = client_with(kind, partner.url)
    with pytest.raises(UntrustedOriginException) as caught:
        client.request(HttpRequest(method, f"{other.url}/steal/secret-path?q=secret-query", json_data={"a": 1}))
    error = caught.value
    assert error.origin == other.url
    text = str(error)
    assert other.url in text and "TRUSTED_ORIGINS" in text
    assert "secret-path" not in text and "secret-query" not in text
    assert other.received == [] and partner.received == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_trusted_origin_receives_the_credentials(kind, partner, other):
    client = client_with(kind, partner.url, trusted_origins=other.url)
    assert client.get(f"{other.url}/api").status_code == 200
    assert leaked(other.received)


@pytest.mark.parametrize("kind", KINDS)
def test_the_own_origin_by_path_or_absolute_url_receives_the_credentials(kind, partner):
    partner.route("GET", "/api", Reply(200))
    client = client_with(kind, partner.url)
    client.get("/api")
    client.get(f"{partner.url}/api")
    assert len(partner.received) == 2
    assert all(leaked([r]) for r in partner.received)


def test_no_token_is_fetched_for_a_refused_request(partner, other):
    provider = CountingProvider()
    client = HttpClient(HttpClientConfigBuilder().with_base_url(partner.url).with_token_auth(TokenManager(provider)).build())
    with pytest.raises(UntrustedOriginException):
        client.get(f"{other.url}/x")
    assert provider.fetches == 0


def test_a_client_without_credentials_may_call_any_url(partner, other):
    client = HttpClient(HttpClientConfigBuilder().with_base_url(partner.url).with_header("User-Agent", "shop/1.0").build())
    response = client.get(f"{other.url}/open", headers={"Authorization": "Bearer caller-chosen"})
    assert response.json() == {"other": True}
    assert other.received[0].header("Authorization") == "Bearer caller-chosen"  # the caller's own header, to the caller's URL


def test_a_request_hook_that_moves_the_request_to_another_origin_is_refused(partner, other):
    class Rewrite(RequestHookInterface):
        def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
            return request.with_url(f"{other.url}/moved")

    client = client_with("bearer", partner.url, request_hook=Rewrite())
    with pytest.raises(UntrustedOriginException):
        client.get("/api")
    assert other.received == [] and partner.received == []


def test_without_a_base_url_only_trusted_origins_receive_credentials(partner, other):
    bare = client_with("api_key_header")
    with pytest.raises(UntrustedOriginException, match="neither a base URL nor trusted origins"):
        bare.get(f"{partner.url}/x")
    trusting = client_with("api_key_header", trusted_origins=partner.url)
    trusting.get(f"{partner.url}/x")
    with pytest.raises(UntrustedOriginException):
        trusting.get(f"{other.url}/x")
    assert leaked(partner.received) == [API_KEY] and other.received == []


def test_a_url_that_only_looks_relative_stays_on_the_base_origin(partner, other):
    partner.route("*", "*", Reply(200))
    client = client_with("bearer", partner.url)
    for url in (f"//127.0.0.1:{other.port}/x", f"@127.0.0.1:{other.port}/x", f"HTTP://127.0.0.1:{other.port}/x"):
        client.get(url)
    assert other.received == [] and len(partner.received) == 3


# -- redirects ------------------------------------------------------------------------------------


REDIRECTS = [301, 302, 303, 307, 308]


def redirect_to(location: str, status: int = 302) -> Reply:
    return Reply(status, {"moved": True}, headers={"Location": location})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", REDIRECTS)
def test_a_redirect_to_another_origin_carries_no_credential(kind, status, partner, other):
    partner.route("GET", "/hop", redirect_to(f"{other.url}/landing?page=2", status))
    response = client_with(kind, partner.url).get("/hop")
    assert response.status_code == 200 and response.url == f"{other.url}/landing?page=2"
    assert leaked(partner.requests_to("/hop"))  # the partner itself got them
    assert_no_credential(other.received)
    assert other.received[0].method == "GET" and other.received[0].path == "/landing?page=2"


@pytest.mark.parametrize("status", [301, 302, 303])
@pytest.mark.parametrize("kind", KINDS)
def test_a_post_redirected_to_another_origin_becomes_a_get_without_body_or_credential(kind, status, partner, other):
    partner.route("POST", "/hop", redirect_to(f"{other.url}/landing", status))
    client_with(kind, partner.url).post("/hop", data={"client_secret": "form-canary-0123456789", "amount": "10"})
    [landed] = other.received
    assert landed.method == "GET" and landed.body == b"" and landed.header("Content-Type") is None
    assert_no_credential(other.received)
    assert b"form-canary" not in landed.body


@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("kind", KINDS)
def test_a_307_308_that_would_resend_a_body_to_another_origin_is_refused(kind, status, partner, other):
    partner.route("POST", "/hop", redirect_to(f"{other.url}/landing", status))
    with pytest.raises(UntrustedOriginException) as caught:
        client_with(kind, partner.url).post("/hop", json_data={"amount": 10})
    assert caught.value.origin == other.url and "body" in str(caught.value)
    assert other.received == []


def test_a_307_without_credentials_keeps_method_and_body_but_not_the_callers_secret_headers(partner, other):
    partner.route("PUT", "/hop", redirect_to(f"{other.url}/landing", 307))
    client = HttpClient(HttpClientConfigBuilder().with_base_url(partner.url).build())
    client.put("/hop", json_data={"amount": 10}, headers={"Authorization": f"Bearer {USER_TOKEN}", "Cookie": f"s={USER_TOKEN}"})
    [landed] = other.received
    assert landed.method == "PUT" and landed.body == b'{"amount": 10}'
    assert_no_credential(other.received)


def test_a_307_body_that_looks_secret_is_not_resent_to_another_origin_even_without_credentials(partner, other):
    partner.route("POST", "/token", redirect_to(f"{other.url}/steal", 307))
    client = HttpClient(HttpClientConfigBuilder().build())
    for body in ({"client_secret": "form-canary-0123456789"}, "grant_type=password&password=form-canary-0123456789"):
        with pytest.raises(UntrustedOriginException):
            client.post(f"{partner.url}/token", data=body)
    assert other.received == []


def test_a_secret_query_parameter_echoed_into_the_location_is_dropped(partner, other):
    partner.route("GET", "/hop", lambda r: redirect_to(f"{other.url}/landing?{r.path.split('?', 1)[1]}&page=2"))
    client_with("api_key_query", partner.url).get("/hop")
    assert partner.received[0].path == f"/hop?key={API_KEY}"
    assert_no_credential(other.received)
    assert other.received[0].path == "/landing?page=2"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", REDIRECTS)
def test_a_same_origin_redirect_keeps_the_credentials(kind, status, partner):
    partner.route("GET", "/hop", redirect_to("/final", status))
    partner.route("GET", "/final", Reply(200, {"final": True}))
    response = client_with(kind, partner.url).get("/hop")
    assert response.json() == {"final": True}
    [final] = partner.requests_to("/final")
    assert leaked([final])


@pytest.mark.parametrize("status", [307, 308])
def test_a_same_origin_307_308_keeps_method_body_and_credentials(status, partner):
    partner.route("POST", "/hop", redirect_to(f"{partner.url}/final", status))
    partner.route("POST", "/final", Reply(201))
    assert client_with("bearer", partner.url).post("/hop", json_data={"amount": 10}).status_code == 201
    [final] = partner.requests_to("/final")
    assert final.body == b'{"amount": 10}' and final.header("Authorization") == f"Bearer {BEARER}"


@pytest.mark.parametrize("kind", KINDS)
def test_credentials_once_stripped_are_not_added_back_when_the_chain_returns(kind, partner, other):
    partner.route("GET", "/hop", redirect_to(f"{other.url}/bounce"))
    other.route("GET", "/bounce", redirect_to(f"{partner.url}/final", 307))
    partner.route("GET", "/final", Reply(200))
    client_with(kind, partner.url).get("/hop")
    assert_no_credential(other.received)
    assert_no_credential(partner.requests_to("/final"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_redirect_to_a_trusted_origin_keeps_the_credentials(kind, partner, other):
    partner.route("GET", "/hop", redirect_to(f"{other.url}/landing"))
    client_with(kind, partner.url, trusted_origins=other.url).get("/hop")
    assert leaked(other.received)


@pytest.mark.parametrize("status", REDIRECTS)
def test_refuse_mode_raises_on_a_hop_to_another_origin(status, partner, other):
    partner.route("POST", "/token", redirect_to(f"{other.url}/steal?x=1", status))
    client = HttpClient(HttpClientConfigBuilder().with_cross_origin_redirects("refuse").with_timeout(5).build())
    with pytest.raises(UntrustedOriginException) as caught:
        client.post(f"{partner.url}/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {BASIC}"})
    assert caught.value.origin == other.url and "x=1" not in str(caught.value) and "steal" not in str(caught.value)
    assert other.received == []


def test_refuse_mode_follows_same_origin_redirects(partner):
    partner.route("POST", "/token", redirect_to("/token2", 308))
    partner.route("POST", "/token2", Reply(200, {"access_token": "t"}))
    client = HttpClient(HttpClientConfigBuilder().with_cross_origin_redirects("refuse").build())
    assert client.post(f"{partner.url}/token", data={"a": "b"}).json() == {"access_token": "t"}
    assert partner.requests_to("/token2")[0].body == b"a=b"


@responses.activate
def test_a_downgrade_from_https_to_http_is_another_origin():
    seen: list[dict[str, str]] = []

    def landing(request):
        seen.append(dict(request.headers))
        return (200, {}, "{}")

    responses.get("https://partner.test/hop", status=302, headers={"Location": "http://partner.test/landing"})
    responses.add_callback("GET", "http://partner.test/landing", callback=landing)
    client_with("bearer", "https://partner.test").get("/hop")
    client_with("api_key_header", "https://partner.test").get("/hop")
    assert len(seen) == 2
    assert all(not ({"authorization", "x-partner-key"} & {k.lower() for k in headers}) for headers in seen)


def test_too_many_redirects_is_a_typed_error(partner):
    partner.route("GET", "/loop", redirect_to("/loop"))
    client = HttpClient(HttpClientConfigBuilder().with_base_url(partner.url).with_redirects(True, 3).build())
    with pytest.raises(HttpClientException, match=r"Too many redirects \(more than 3\)"):
        client.get("/loop")
    assert len(partner.received) == 4


def test_redirects_can_be_left_to_the_caller(partner, other):
    partner.route("GET", "/hop", redirect_to(f"{other.url}/landing"))
    response = client_with("bearer", partner.url, redirects=False).get("/hop")
    assert response.status_code == 302 and other.received == []


def test_method_rules_follow_requests(partner):
    partner.route("*", "/final", lambda r: Reply(200, {"method": r.method, "body": r.body.decode()}))
    cases = {
        (301, "POST"): "GET",
        (301, "PUT"): "PUT",
        (302, "PUT"): "GET",
        (302, "HEAD"): "HEAD",
        (303, "DELETE"): "GET",
        (307, "PATCH"): "PATCH",
    }
    client = HttpClient(HttpClientConfigBuilder().with_base_url(partner.url).build())
    for (status, method), expected in cases.items():
        partner.route(method, "/hop", redirect_to("/final", status))
        response = client.request(HttpRequest(method, "/hop"))
        assert partner.received[-1].method == expected, (status, method)
        assert response.url.endswith("/final")


# -- limits ---------------------------------------------------------------------------------------


class RawServer:
    """A loopback server whose answer is written by ``script(conn, stop)``, byte by byte if it likes."""

    def __init__(self, script: Callable[[socket.socket, threading.Event], None]) -> None:
        self._script = script
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.stop = threading.Event()
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                request += chunk
            try:
                self._script(conn, self.stop)
            except OSError:
                pass  # the client hung up, as it should

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self._thread.join()
        self._listener.close()


def trickle_body(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n")
    while not stop.wait(0.1):  # one byte every 100 ms: every single read is quick, the whole never ends
        conn.sendall(b"x")


def trickle_headers(conn: socket.socket, stop: threading.Event) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 1000:
        if stop.wait(0.1):
            return
        conn.sendall(bytes([byte]))


def endless_chunks(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"4000\r\n" + b"z" * 0x4000 + b"\r\n"
    while not stop.is_set():
        conn.sendall(chunk)


def limited(**options: object) -> HttpClient:
    builder = HttpClientConfigBuilder().with_timeout(5)
    for name, value in options.items():
        getattr(builder, f"with_{name}")(value)
    return HttpClient(builder.build())


@pytest.mark.parametrize("script", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_total_timeout_stops_a_trickling_server_at_the_deadline(script):
    with RawServer(script) as server:
        client = limited(total_timeout=0.6)
        started = time.monotonic()
        with pytest.raises(TimeoutException, match=r"Total timeout of 0.6 s exceeded"):
            client.get(f"{server.url}/token")
        elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2.0  # the per-read timeout is 5 s and each read is quick: only the deadline stops it


def test_total_timeout_covers_every_redirect_hop(partner):
    release = threading.Event()
    partner.route("GET", "/hop", redirect_to("/slow"))
    partner.route("GET", "/slow", lambda r: Reply(200) if release.wait(10) else Reply(500))
    client = limited(base_url=partner.url, total_timeout=0.6)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutException):
            client.get("/hop")
    finally:
        release.set()
    assert time.monotonic() - started < 2.0


def test_total_timeout_lets_quick_calls_through_and_keeps_their_connections(partner):
    partner.route("GET", "/quick", Reply(200, {"ok": 1}))
    client = limited(base_url=partner.url, total_timeout=0.3)
    for _ in range(5):
        assert client.get("/quick").json() == {"ok": 1}
    release = threading.Event()
    release.wait(0.4)  # let every deadline of those calls pass: none may cut a pooled connection
    assert client.get("/quick").json() == {"ok": 1}


def test_a_body_above_max_response_bytes_is_refused_by_its_content_length(partner):
    partner.route("GET", "/big", Reply(200, b"a" * 5000))
    partner.route("GET", "/fits", Reply(200, b"a" * 1000))
    client = limited(base_url=partner.url, max_response_bytes=1000)
    with pytest.raises(ResponseParseException, match=r"max_response_bytes \(1000 bytes\)"):
        client.get("/big")
    assert client.get("/fits").content == b"a" * 1000


def test_an_endless_chunked_body_stops_at_the_cap():
    with RawServer(endless_chunks) as server:
        client = limited(max_response_bytes=100_000)
        with pytest.raises(ResponseParseException, match="100000 bytes"):
            client.get(f"{server.url}/token")


def test_limits_apply_to_a_redirect_body_too(partner):
    partner.route("GET", "/hop", Reply(302, b"r" * 5000, headers={"Location": "/final"}))
    partner.route("GET", "/final", Reply(200, b"ok"))
    with pytest.raises(ResponseParseException):
        limited(base_url=partner.url, max_response_bytes=1000).get("/hop")


# -- typed errors at run time ---------------------------------------------------------------------


def test_a_missing_ca_bundle_is_a_configuration_error(tmp_path):
    client = HttpClient(HttpClientConfigBuilder().with_ssl_verification(str(tmp_path / "missing-ca.pem")).build())
    with pytest.raises(ConfigurationError) as caught:
        client.get("https://127.0.0.1:9/x")
    assert caught.value.field == "verify_ssl" and "missing-ca.pem" in str(caught.value)


def test_a_missing_client_certificate_is_a_configuration_error(tmp_path):
    client = HttpClient(HttpClientConfigBuilder().with_ssl_verification(True, client_cert=str(tmp_path / "client.pem")).build())
    with pytest.raises(ConfigurationError) as caught:
        client.get("https://127.0.0.1:9/x")
    assert caught.value.field == "client_cert"


@pytest.mark.parametrize("value", [f"{HEADER_SECRET}\r\nX-Injected: 1", f"{HEADER_SECRET}\n", "\x00", f"{HEADER_SECRET}€"])
def test_a_header_value_that_http_cannot_carry_is_a_typed_error(value, partner):
    client = HttpClient(HttpClientConfigBuilder().with_base_url(partner.url).build())
    with pytest.raises(HttpClientException) as caught:
        client.get("/x", headers={"X-Custom": value})
    assert not isinstance(caught.value, ValueError)
    assert HEADER_SECRET not in str(caught.value) and HEADER_SECRET not in repr(caught.value.original)
    assert partner.received == []


# -- configuration --------------------------------------------------------------------------------


def test_config_repr_shows_no_secret():
    config = (
        HttpClientConfigBuilder()
        .with_base_url("https://api.example.com")
        .with_headers({"X-Partner-Secret": HEADER_SECRET, "X-Api-Key": API_KEY, "X-Plain": Secret(USER_TOKEN), "Accept": "text/plain"})
        .with_sensitive_headers(["X-Partner-Secret"])
        .with_proxies({"https": f"http://proxyuser:{PASSWORD}@proxy.example:3128"})
        .with_basic_auth("alice", PASSWORD)
        .with_trusted_origins("https://auth.example.com")
        .build()
    )
    text = repr(config)
    assert not [secret for secret in SECRETS if secret in text]
    assert "proxyuser" in text and "'Accept': 'text/plain'" in text and "BasicAuthHook(username='alice'" in text
    assert "trusted_origins=('https://auth.example.com',)" in text


def test_trusted_origins_are_normalized():
    config = HttpClientConfig(trusted_origins=("HTTPS://Auth.Example.com:443/", "http://127.0.0.1:8080", "https://auth.example.com"))
    assert config.trusted_origins == ("https://auth.example.com", "http://127.0.0.1:8080")
    assert config.trusts("https://auth.example.com/oauth/token") and not config.trusts("https://auth.example.com:8443/x")


@pytest.mark.parametrize(
    "entry",
    ["https://auth.example.com/oauth", "https://auth.example.com?x=1", "https://u:p@auth.example.com", "ftp://auth.example.com",
     "auth.example.com", "https://auth.example.com#f", "https://auth.example.com:99999", "", 42],
)  # fmt: skip
def test_malformed_trusted_origins_are_configuration_errors(entry):
    with pytest.raises(ConfigurationError) as caught:
        HttpClientConfigBuilder().with_trusted_origins(["https://ok.example.com", entry]).build()
    assert caught.value.field == "trusted_origins[1]"


@pytest.mark.parametrize(
    ("option", "value"),
    [("cross_origin_redirects", "follow"), ("max_response_bytes", 0), ("max_response_bytes", True), ("total_timeout", -1.0)],
)
def test_limits_are_validated(option, value):
    with pytest.raises(ConfigurationError) as caught:
        getattr(HttpClientConfigBuilder(), f"with_{option}")(value).build()
    assert caught.value.field == option


def test_auth_hooks_take_secrets_and_mark_what_they_add():
    request = HttpRequest("GET", "/x")
    context = RequestContext(request)
    bearer = BearerTokenAuthHook(Secret(BEARER)).before_request(request, context)
    assert bearer.header("Authorization") == f"Bearer {BEARER}" and bearer.sensitive == {"authorization"}
    query = ApiKeyAuthHook(Secret(API_KEY), query_param="Key").before_request(request, context)
    assert query.params == {"Key": API_KEY} and query.sensitive == {"key"}
    basic = BasicAuthHook("alice", Secret(PASSWORD)).before_request(request, context)
    assert basic.header("Authorization") == f"Basic {BASIC}" and basic.sensitive == {"authorization"}
    for hook in (BearerTokenAuthHook(Secret(BEARER)), ApiKeyAuthHook(Secret(API_KEY)), BasicAuthHook("alice", Secret(PASSWORD))):
        assert not [secret for secret in SECRETS if secret in repr(hook)]
