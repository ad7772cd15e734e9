"""Client authentication at the token endpoint: the four methods, on every grant, and their refusals."""

from __future__ import annotations

import base64

import pytest
import responses

from requestforge_django.http.exceptions import AuthenticationException, ConfigurationError
from requestforge_django.http.secrets import Secret
from requestforge_django.tokens import (
    ClientAuthentication,
    ClientCredentialsTokenProvider,
    InMemoryTokenStorage,
    PasswordGrantTokenProvider,
    SigningKey,
    TokenData,
    TokenManager,
)
from requestforge_django.tokens.client_auth import CLIENT_ASSERTION_TYPE

from .conftest import form
from .fakes import T0, FakeClock
from .jose_keys import TOKEN_URL, decode, ec_key, pem, rsa_key

SECRET = "client-secret-value-that-is-32-bytes-long"


def cc(method: str, **kw) -> ClientCredentialsTokenProvider:
    kw.setdefault("service_name", "billing")
    if method == "private_key_jwt":
        kw.setdefault("private_key", pem(rsa_key()))
        return ClientCredentialsTokenProvider(TOKEN_URL, "my-client", auth_method=method, **kw)
    return ClientCredentialsTokenProvider(TOKEN_URL, "my-client", SECRET, auth_method=method, **kw)


class TestMethods:
    def test_client_secret_post(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1"})
        cc("client_secret_post").fetch_token()
        assert form(mocked.calls[0]) == {"grant_type": ["client_credentials"], "client_id": ["my-client"], "client_secret": [SECRET]}
        assert "Authorization" not in mocked.calls[0].request.headers

    def test_client_secret_basic(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1"})
        cc("client_secret_basic").fetch_token()
        assert form(mocked.calls[0]) == {"grant_type": ["client_credentials"]}
        header = mocked.calls[0].request.headers["Authorization"]
        assert base64.b64decode(header.removeprefix("Basic ")).decode() == f"my-client:{SECRET}"

    def test_client_secret_jwt(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1"})
        clock = FakeClock()
        cc("client_secret_jwt", clock=clock, key_id="hmac-1").fetch_token()
        body = form(mocked.calls[0])
        assert set(body) == {"grant_type", "client_id", "client_assertion_type", "client_assertion"}
        assert body["client_assertion_type"] == [CLIENT_ASSERTION_TYPE]
        assert "Authorization" not in mocked.calls[0].request.headers
        claims = decode(body["client_assertion"][0], SECRET.encode(), algorithms=["HS256"])
        issued = int(T0.timestamp())
        assert claims == {
            "iss": "my-client",
            "sub": "my-client",
            "aud": TOKEN_URL,
            "iat": issued,
            "exp": issued + 300,
            "jti": claims["jti"],
        }

    @pytest.mark.parametrize(
        ("key", "algorithm"), [(lambda: rsa_key(), None), (lambda: rsa_key(), "PS256"), (lambda: ec_key("secp384r1"), None)]
    )
    def test_private_key_jwt(self, mocked, key, algorithm):
        mocked.post(TOKEN_URL, json={"access_token": "at-1"})
        import jwt

        cc("private_key_jwt", private_key=pem(key()), key_id="k1", algorithm=algorithm, assertion_lifetime=60).fetch_token()
        body = form(mocked.calls[0])
        assert set(body) == {"grant_type", "client_id", "client_assertion_type", "client_assertion"}
        assert body["client_id"] == ["my-client"] and body["client_assertion_type"] == [CLIENT_ASSERTION_TYPE]
        assertion = body["client_assertion"][0]
        header = jwt.get_unverified_header(assertion)
        assert header["kid"] == "k1" and header["alg"] == (algorithm or ("RS256" if "RSA" in type(key()).__name__ else "ES384"))
        claims = decode(assertion, key())
        assert (claims["iss"], claims["sub"], claims["aud"], claims["exp"] - claims["iat"]) == ("my-client", "my-client", TOKEN_URL, 60)

    def test_private_key_jwt_with_a_signing_key_value(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1"})
        cc("private_key_jwt", private_key=SigningKey.from_pem(pem(ec_key()), key_id="ec-1")).fetch_token()
        assert decode(form(mocked.calls[0])["client_assertion"][0], ec_key())["sub"] == "my-client"

    def test_fresh_jti_for_every_token_request(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1", "refresh_token": "rt-1"})
        provider = cc("private_key_jwt")
        for _ in range(40):
            provider.fetch_token()
        provider.refresh_token(TokenData(access_token="old", refresh_token="rt-1"))
        jtis = [decode(form(call)["client_assertion"][0], rsa_key())["jti"] for call in mocked.calls]
        assert len(jtis) == 41 and len(set(jtis)) == 41
        assert form(mocked.calls[-1])["grant_type"] == ["refresh_token"]  # the refresh grant authenticates the same way

    def test_password_grant_with_private_key_jwt(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1"})
        PasswordGrantTokenProvider(
            TOKEN_URL, "alice", "pw-value", client_id="app", auth_method="private_key_jwt", private_key=pem(ec_key())
        ).fetch_token()
        body = form(mocked.calls[0])
        assert body["username"] == ["alice"] and body["client_id"] == ["app"] and "client_secret" not in body
        assert decode(body["client_assertion"][0], ec_key())["iss"] == "app"

    def test_audience_and_resource_lists_are_repeated(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1"})
        cc(
            "client_secret_basic", audience=["api-1", "api-2"], resource=("https://api.example.com/", "urn:example:res"), scope="read"
        ).fetch_token()
        body = form(mocked.calls[0])
        assert body["audience"] == ["api-1", "api-2"]
        assert body["resource"] == ["https://api.example.com/", "urn:example:res"]
        assert body["scope"] == ["read"]


class TestConfiguration:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"method": "tls_client_auth", "client_id": "c", "client_secret": SECRET}, "auth_method"),
            ({"method": "client_secret_basic", "client_id": "c"}, "auth_method"),
            ({"method": "client_secret_jwt", "client_id": "c"}, "client_secret"),
            ({"method": "client_secret_jwt"}, "client_id"),
            ({"method": "private_key_jwt", "client_id": "c"}, "private_key"),
            ({"method": "private_key_jwt", "client_id": "c", "private_key": "x", "client_secret": SECRET}, "client_secret"),
            ({"method": "client_secret_post", "client_id": "c", "client_secret": SECRET, "private_key": "pem"}, "private_key"),
            ({"method": "client_secret_basic", "client_id": "c", "client_secret": SECRET, "key_id": "k"}, "key_id"),
            ({"method": "client_secret_post", "client_id": "c", "client_secret": SECRET, "algorithm": "RS256"}, "algorithm"),
            ({"method": "client_secret_jwt", "client_id": "c", "client_secret": SECRET, "algorithm": "RS256"}, "algorithm"),
            ({"method": "private_key_jwt", "client_id": "c", "private_key": "not a pem"}, "private_key"),
            ({"client_secret": SECRET}, "client_id"),
            ({"method": "client_secret_jwt", "client_id": "c", "client_secret": SECRET, "lifetime": 600}, "assertion_lifetime"),
        ],
    )
    def test_refused(self, kwargs, field):
        kwargs = dict(kwargs)
        if kwargs.get("private_key") == "x":
            kwargs["private_key"] = pem(rsa_key())
        method = kwargs.pop("method", "client_secret_post")
        with pytest.raises(ConfigurationError) as info:
            ClientAuthentication(method, **kwargs)
        assert info.value.field == field
        assert SECRET not in str(info.value)

    def test_private_key_jwt_needs_no_secret_but_others_do(self):
        with pytest.raises(ConfigurationError):
            ClientCredentialsTokenProvider(TOKEN_URL, "c", auth_method="client_secret_jwt")
        assert ClientCredentialsTokenProvider(TOKEN_URL, "c", auth_method="private_key_jwt", private_key=pem(rsa_key())).client_id == "c"

    @pytest.mark.parametrize("resource", ["api.example.com", "https://api/#frag", ["https://ok", ""], "has space:x", 5])
    def test_bad_resource(self, resource):
        with pytest.raises(ConfigurationError) as info:
            cc("client_secret_post", resource=resource)
        assert info.value.field == "resource"

    def test_repr_and_pickle(self):
        auth = ClientAuthentication("private_key_jwt", client_id="c", private_key=pem(rsa_key()), key_id="k1")
        assert repr(auth) == (
            "ClientAuthentication(method='private_key_jwt', client_id='c', client_secret=None, "
            "signing_key=SigningKey(RSA key of 2048 bits, algorithm='RS256', key_id='k1', key='****'))"
        )
        with pytest.raises(TypeError):
            __import__("pickle").dumps(auth)
        secret_auth = ClientAuthentication("client_secret_jwt", client_id="c", client_secret=Secret(SECRET))
        assert SECRET not in repr(secret_auth) and "'****'" in repr(secret_auth)


class TestRefusals:
    """A refused credential or method: a typed error naming the client, nothing cached, no weaker method tried."""

    @pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic", "client_secret_jwt", "private_key_jwt"])
    @pytest.mark.parametrize(
        ("status", "error", "description"),
        [
            (401, "invalid_client", "client authentication failed"),
            (400, "invalid_client", "unknown key id"),
            (400, "unauthorized_client", "authentication method not allowed for this client"),
            (400, "invalid_client", "jti already used"),
            (400, "invalid_client", "assertion expired"),
        ],
    )
    def test_refused_once_then_tried_again(self, mocked, method, status, error, description):
        mocked.post(TOKEN_URL, status=status, json={"error": error, "error_description": description})
        manager = TokenManager(cc(method), InMemoryTokenStorage())
        with pytest.raises(AuthenticationException) as info:
            manager.get_token()
        exc = info.value
        assert (exc.service_name, exc.status_code, exc.error, exc.error_description) == ("billing", status, error, description)
        assert len(mocked.calls) == 1  # no fallback to another method
        sent = form(mocked.calls[0])
        assert ("client_assertion" in sent) == method.endswith("_jwt")
        with pytest.raises(AuthenticationException):
            manager.get_token()
        assert len(mocked.calls) == 2  # nothing cached: the next call asks again
        mocked.replace(responses.POST, TOKEN_URL, json={"access_token": "at-good"})
        assert manager.get_token().access_token == "at-good"
