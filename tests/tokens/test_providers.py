"""OAuth2 providers against ``responses`` (and one real refused socket)."""

from __future__ import annotations

import base64
import socket
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import requests
import responses

from requestforge_django.http.exceptions import AuthenticationException, ConfigurationError, ConnectionException, TimeoutException
from requestforge_django.tokens import (
    ClientCredentialsTokenProvider,
    InMemoryTokenStorage,
    PasswordGrantTokenProvider,
    TokenData,
    TokenManager,
)

from .fakes import T0, FakeClock

TOKEN_URL = "https://auth.example.com/oauth/token"
SECRET = "client-secret-value-xyz"
PASSWORD = "hunter2-password-value"


def form(call) -> dict[str, list[str]]:
    return parse_qs(call.request.body if isinstance(call.request.body, str) else call.request.body.decode())


def cc(**kw) -> ClientCredentialsTokenProvider:
    kw.setdefault("service_name", "billing")
    return ClientCredentialsTokenProvider(TOKEN_URL, "my-client", SECRET, **kw)


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


class TestClientCredentials:
    def test_post_auth_and_parsing(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1", "token_type": "bearer", "expires_in": 300, "scope": "invoices"})
        clock = FakeClock()
        token = cc(scope="invoices", audience="https://api", extra_params={"resource": "r1"}, clock=clock).fetch_token()
        assert token.access_token == "at-1"
        assert token.token_type == "bearer"
        assert token.expires_at == T0 + timedelta(seconds=300)
        body = form(mocked.calls[0])
        assert body == {
            "grant_type": ["client_credentials"],
            "client_id": ["my-client"],
            "client_secret": [SECRET],
            "scope": ["invoices"],
            "audience": ["https://api"],
            "resource": ["r1"],
        }
        assert mocked.calls[0].request.headers["Accept"] == "application/json"
        assert "Authorization" not in mocked.calls[0].request.headers

    def test_basic_auth_encodes_each_part(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1"})
        ClientCredentialsTokenProvider(TOKEN_URL, "id:with space", "se:cr/et", auth_method="client_secret_basic").fetch_token()
        header = mocked.calls[0].request.headers["Authorization"]
        assert header.startswith("Basic ")
        assert base64.b64decode(header[6:]).decode() == "id%3Awith+space:se%3Acr%2Fet"
        assert "client_secret" not in form(mocked.calls[0])

    def test_default_lifetime(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1"})
        clock = FakeClock()
        assert cc(clock=clock, default_lifetime=120).fetch_token().expires_at == T0 + timedelta(seconds=120)

    def test_custom_token_field(self, mocked):
        mocked.post(TOKEN_URL, json={"token": "at-1"})
        assert cc(token_field="token").fetch_token().access_token == "at-1"

    def test_refresh_grant(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-2", "refresh_token": "rt-2"})
        current = TokenData(access_token="at-1", refresh_token="rt-1")
        token = cc(scope="invoices").refresh_token(current)
        assert token.refresh_token == "rt-2"
        body = form(mocked.calls[0])
        assert body["grant_type"] == ["refresh_token"]
        assert body["refresh_token"] == ["rt-1"]
        assert body["client_secret"] == [SECRET]

    def test_refresh_without_refresh_token_fetches(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-2"})
        cc().refresh_token(TokenData(access_token="at-1"))
        assert form(mocked.calls[0])["grant_type"] == ["client_credentials"]

    def test_default_service_name_and_repr(self):
        provider = ClientCredentialsTokenProvider(TOKEN_URL, "my-client", SECRET)
        assert provider.service_name == "my-client@auth.example.com"
        assert SECRET not in repr(provider)
        assert "my-client" in repr(provider)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"token_url": "ftp://x/token"},
            {"token_url": "/relative"},
            {"client_id": ""},
            {"client_secret": ""},
            {"auth_method": "private_key_jwt"},
            {"timeout": 0},
            {"extra_params": ["a"]},
        ],
    )
    def test_bad_configuration(self, kwargs):
        args = {"token_url": TOKEN_URL, "client_id": "id", "client_secret": SECRET, **kwargs}
        with pytest.raises(ConfigurationError):
            ClientCredentialsTokenProvider(**args)


class TestPasswordGrant:
    def test_fields(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1", "refresh_token": "rt-1"})
        provider = PasswordGrantTokenProvider(TOKEN_URL, "alice", PASSWORD, client_id="public-app", scope="read")
        token = provider.fetch_token()
        assert token.refresh_token == "rt-1"
        assert form(mocked.calls[0]) == {
            "grant_type": ["password"],
            "username": ["alice"],
            "password": [PASSWORD],
            "client_id": ["public-app"],
            "scope": ["read"],
        }
        assert provider.service_name == "alice@auth.example.com"
        assert PASSWORD not in repr(provider)

    def test_password_scrubbed_from_error_description(self, mocked):
        mocked.post(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": f"bad password {PASSWORD}"})
        with pytest.raises(AuthenticationException) as info:
            PasswordGrantTokenProvider(TOKEN_URL, "alice", PASSWORD).fetch_token()
        assert PASSWORD not in str(info.value)
        assert info.value.error == "invalid_grant"


class TestBadAnswers:
    """Each bad answer is an AuthenticationException naming the service, and nothing is stored."""

    def fetch_through_manager(self) -> tuple[BaseException, InMemoryTokenStorage]:
        storage = InMemoryTokenStorage()
        other = TokenData(access_token="other-service-token")
        storage.set("token:other", other)
        manager = TokenManager(cc(), storage)
        with pytest.raises(AuthenticationException) as info:
            manager.get_token()
        assert storage.keys() == ["token:other"]  # nothing half-written ...
        assert storage.get("token:other") == other  # ... and other tokens untouched
        assert info.value.service_name == "billing"
        assert SECRET not in str(info.value)
        return info.value, storage

    def test_html(self, mocked):
        page = "<html><body>Login failed for client_secret=" + SECRET + "</body></html>"
        mocked.post(TOKEN_URL, body=page, content_type="text/html")
        exc, _ = self.fetch_through_manager()
        assert f"non-JSON (text/html, {len(page)} bytes)" in str(exc)
        assert "<html>" not in str(exc)

    def test_html_error_status(self, mocked):
        mocked.post(TOKEN_URL, status=502, body="<html>Bad gateway</html>", content_type="text/html")
        exc, _ = self.fetch_through_manager()
        assert exc.status_code == 502
        assert "non-JSON (text/html" in str(exc)

    def test_server_error(self, mocked):
        mocked.post(TOKEN_URL, status=500, json={"message": "internal"})
        exc, _ = self.fetch_through_manager()
        assert exc.status_code == 500
        assert "HTTP 500" in str(exc)

    def test_oauth_error_fields(self, mocked):
        mocked.post(
            TOKEN_URL, status=401, json={"error": "invalid_client", "error_description": f"Client authentication failed ({SECRET})"}
        )
        exc, _ = self.fetch_through_manager()
        assert exc.status_code == 401
        assert exc.error == "invalid_client"
        assert exc.error_description == "Client authentication failed (****)"
        assert "error=invalid_client" in str(exc)

    def test_json_without_token_field(self, mocked):
        mocked.post(TOKEN_URL, json={"token_type": "bearer", "expires_in": 60})
        exc, _ = self.fetch_through_manager()
        assert "'access_token'" in str(exc)

    def test_json_not_an_object(self, mocked):
        mocked.post(TOKEN_URL, json=["at-1"])
        exc, _ = self.fetch_through_manager()
        assert "not an object" in str(exc)

    @pytest.mark.parametrize("expires_in", [-60, 10**12, "NaN"])
    def test_bad_expires_in(self, mocked, expires_in):
        mocked.post(TOKEN_URL, json={"access_token": "the-access-token", "expires_in": expires_in})
        exc, _ = self.fetch_through_manager()
        assert "'expires_in'" in str(exc)
        assert str(expires_in) in str(exc)
        assert "the-access-token" not in str(exc)

    def test_timeout(self, mocked):
        mocked.post(TOKEN_URL, body=requests.exceptions.ReadTimeout("read timed out"))
        exc, _ = self.fetch_through_manager()
        assert "timed out" in str(exc)
        assert isinstance(exc.original, TimeoutException)

    def test_connection_error(self, mocked):
        mocked.post(TOKEN_URL, body=requests.exceptions.ConnectionError("refused"))
        exc, _ = self.fetch_through_manager()
        assert "unreachable" in str(exc)
        assert isinstance(exc.original, ConnectionException)


def test_real_refused_connection():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more: the connection is refused.
    provider = ClientCredentialsTokenProvider(f"http://127.0.0.1:{port}/token", "id", SECRET, service_name="local", timeout=2)
    with pytest.raises(AuthenticationException) as info:
        provider.fetch_token()
    assert info.value.service_name == "local"
    assert isinstance(info.value.original, ConnectionException)
    provider.close()
