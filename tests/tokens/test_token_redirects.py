"""Token requests never carry secrets across origins (issue 12).

Two real loopback servers: ``auth`` is the configured token endpoint, ``other`` is
another origin (another port: scheme, host and port make an origin). ``other`` records
every request it receives, so "nothing secret arrived" is asserted where it matters:
at the host that must not receive it.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.http.secrets import Origin, Secret
from requestforge_django.tokens import (
    BodyTokenFetcher,
    ClientCredentialsTokenProvider,
    HeaderTokenFetcher,
    InMemoryTokenStorage,
    PasswordGrantTokenProvider,
    TokenFetchPipeline,
    TokenManager,
)
from requestforge_django.tokens.providers import MAX_TOKEN_REDIRECTS
from tests.support.partner_server import PartnerServer as _PartnerServer
from tests.support.partner_server import Received, Reply


def PartnerServer() -> _PartnerServer:
    """The recording partner server, quiet: a client that stops reading (the size cap) breaks its write on purpose."""
    return _PartnerServer(quiet=True)


SECRET = "client-secret-canary-31337"
PASSWORD = "step-password-canary-4242"
DEVICE_TOKEN = "device-token-canary-7777"
PIN = "98765432"
REDIRECTS = [302, 307, 308]
TOKEN = {"access_token": "good-token", "token_type": "Bearer", "expires_in": 3600}


@pytest.fixture
def auth() -> Iterator[_PartnerServer]:
    with PartnerServer() as server:
        yield server


@pytest.fixture
def other() -> Iterator[_PartnerServer]:
    """Another origin: answers everything with a token, so following it would 'work'."""
    with PartnerServer() as server:
        server.route("*", "*", Reply(200, {"access_token": "stolen", "expires_in": 3600}))
        yield server


def redirect(status: int, location: str) -> Reply:
    return Reply(status, b"", {"Location": location})


def assert_refused(exc: AuthenticationException, other: _PartnerServer, *, secrets: tuple[str, ...]) -> None:
    """Names the other origin only; no path, no query, no secret, no chain, in text and in pickle."""
    origin = str(Origin.of(other.url))
    assert origin in str(exc)
    assert "redirected to another origin" in str(exc)
    shown = [str(exc), repr(exc), pickle.dumps(exc).decode("latin-1")]
    for text in shown:
        assert "/steal" not in text and "code=abc" not in text
        for secret in secrets:
            assert secret not in text
    assert exc.__cause__ is None and exc.__context__ is None and exc.original is None
    assert other.received == [], "the other origin received a request"


def form_of(received: Received) -> dict[str, list[str]]:
    return parse_qs(received.body.decode())


class TestOAuthProviders:
    @pytest.mark.parametrize("status", REDIRECTS)
    @pytest.mark.parametrize("auth_method", ["client_secret_post", "client_secret_basic"])
    def test_cross_origin_redirect_is_refused_and_nothing_is_cached(self, auth, other, status, auth_method) -> None:
        auth.route("POST", "/oauth/token", redirect(status, f"{other.url}/steal?code=abc"))
        storage = InMemoryTokenStorage()
        provider = ClientCredentialsTokenProvider(
            f"{auth.url}/oauth/token", "my-client", SECRET, auth_method=auth_method, service_name="billing"
        )
        manager = TokenManager(provider, storage)
        with pytest.raises(AuthenticationException) as info:
            manager.get_token()
        assert info.value.service_name == "billing"
        assert_refused(info.value, other, secrets=(SECRET,))
        assert storage.keys() == []
        assert len(auth.requests_to("/oauth/token")) == 1
        # The next call asks again (nothing poisoned); the endpoint now answers.
        auth.route("POST", "/oauth/token", Reply(200, TOKEN))
        assert manager.get_token().access_token == "good-token"

    @pytest.mark.parametrize("status", REDIRECTS)
    def test_password_grant_redirect_sends_no_password(self, auth, other, status) -> None:
        auth.route("POST", "/oauth/token", redirect(status, f"{other.url}/steal?code=abc"))
        provider = PasswordGrantTokenProvider(
            f"{auth.url}/oauth/token", "alice", Secret(PASSWORD), client_id="app", client_secret=Secret(SECRET), service_name="legacy"
        )
        with pytest.raises(AuthenticationException) as info:
            provider.fetch_token()
        assert info.value.service_name == "legacy"
        assert_refused(info.value, other, secrets=(SECRET, PASSWORD))

    def test_scheme_change_is_another_origin(self, auth) -> None:
        https = auth.url.replace("http://", "https://")
        auth.route("POST", "/oauth/token", redirect(307, f"{https}/oauth/token"))
        with pytest.raises(AuthenticationException, match="another origin") as info:
            ClientCredentialsTokenProvider(f"{auth.url}/oauth/token", "my-client", SECRET).fetch_token()
        assert str(Origin.of(https)) in str(info.value)
        assert len(auth.received) == 1

    @pytest.mark.parametrize("status", [307, 308])
    def test_same_origin_307_308_are_followed_with_the_form(self, auth, status) -> None:
        auth.route("POST", "/oauth/token", redirect(status, "/oauth/v2/token"))
        auth.route("POST", "/oauth/v2/token", Reply(200, TOKEN))
        token = ClientCredentialsTokenProvider(f"{auth.url}/oauth/token", "my-client", SECRET).fetch_token()
        assert token.access_token == "good-token"
        [second] = auth.requests_to("/oauth/v2/token")
        assert second.method == "POST"
        assert form_of(second)["client_secret"] == [SECRET]

    def test_same_origin_302_becomes_a_get_without_the_form(self, auth) -> None:
        auth.route("POST", "/oauth/token", redirect(302, f"{auth.url}/oauth/v2/token"))
        auth.route("GET", "/oauth/v2/token", Reply(200, TOKEN))
        assert ClientCredentialsTokenProvider(f"{auth.url}/oauth/token", "my-client", SECRET).fetch_token().access_token == "good-token"
        [second] = auth.requests_to("/oauth/v2/token")
        assert (second.method, second.body) == ("GET", b"")

    def test_same_origin_redirects_are_bounded(self, auth) -> None:
        auth.route("POST", "/loop", redirect(307, "/loop"))
        with pytest.raises(AuthenticationException) as info:
            ClientCredentialsTokenProvider(f"{auth.url}/loop", "my-client", SECRET, service_name="billing").fetch_token()
        assert info.value.service_name == "billing"
        assert 1 < len(auth.requests_to("/loop")) <= MAX_TOKEN_REDIRECTS + 1


class TestPipelineSteps:
    def pipeline(self, auth: _PartnerServer) -> TokenFetchPipeline:
        auth.route("POST", "/device", Reply(200, {"ok": True}, {"X-Device-Token": DEVICE_TOKEN}))
        device = HeaderTokenFetcher("device_token", auth.url, "/device", request_data={"password": PASSWORD}, token_header="X-Device-Token")
        app = BodyTokenFetcher(
            "app_token",
            auth.url,
            "/app",
            depends_on=["device_token"],
            # An ordinary header name: requests itself would forward it on every redirect.
            request_headers={"X-Device": "{device_token}"},
            request_data={"password": PASSWORD, "pin": PIN},
        )
        return TokenFetchPipeline([device, app], InMemoryTokenStorage(), cache_key_prefix="partner", name="partner")

    @pytest.mark.parametrize("status", REDIRECTS)
    def test_step_redirect_to_another_origin_sends_no_token_and_no_password(self, auth, other, status) -> None:
        auth.route("POST", "/app", redirect(status, f"{other.url}/steal?code=abc"))
        pipeline = self.pipeline(auth)
        with pytest.raises(AuthenticationException) as info:
            pipeline.execute()
        assert (info.value.service_name, info.value.step) == ("partner", "app_token")
        assert_refused_step(info.value, other)
        # What did go to the configured origin: the earlier token and the step's form, revealed.
        [sent] = auth.requests_to("/app")
        assert sent.header("X-Device") == DEVICE_TOKEN
        assert form_of(sent) == {"password": [PASSWORD], "pin": [PIN]}
        # The earlier step's token stays cached, the failed step has nothing.
        assert pipeline.peek_step("device_token") is not None
        assert pipeline.peek_step("app_token") is None

    @pytest.mark.parametrize("status", REDIRECTS)
    def test_first_step_redirect_is_refused_too(self, auth, other, status) -> None:
        pipeline = self.pipeline(auth)
        auth.route("POST", "/device", redirect(status, f"{other.url}/steal?code=abc"))
        with pytest.raises(AuthenticationException) as info:
            pipeline.execute()
        assert (info.value.service_name, info.value.step) == ("partner", "device_token")
        assert other.received == []
        assert pipeline.peek_step("device_token") is None

    def test_same_origin_step_redirect_is_followed(self, auth) -> None:
        pipeline = self.pipeline(auth)
        auth.route("POST", "/app", redirect(308, "/v2/app"))
        auth.route("POST", "/v2/app", Reply(200, TOKEN))
        assert pipeline.execute().access_token == "good-token"
        [second] = auth.requests_to("/v2/app")
        assert second.header("X-Device") == DEVICE_TOKEN


def assert_refused_step(exc: AuthenticationException, other: _PartnerServer) -> None:
    # The pipeline relabels the fetcher's error and chains it (same text, same rules).
    assert str(Origin.of(other.url)) in str(exc)
    for text in (str(exc), repr(exc), pickle.dumps(exc).decode("latin-1")):
        for secret in ("/steal", "code=abc", PASSWORD, DEVICE_TOKEN, PIN):
            assert secret not in text
    cause = exc.__cause__
    assert isinstance(cause, AuthenticationException) and cause.__cause__ is None and cause.__context__ is None
    assert other.received == [], "the other origin received a request"
