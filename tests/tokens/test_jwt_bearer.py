"""The JWT-bearer grant (RFC 7523 section 2.1): the form, the assertion's claims, the ASSERTION block, refusals."""

from __future__ import annotations

import pickle

import pytest

from requestforge_django.http.exceptions import AuthenticationException, ConfigurationError
from requestforge_django.tokens import GrantAssertion, InMemoryTokenStorage, JwtBearerTokenProvider, SigningKey, TokenManager
from requestforge_django.tokens.jwt_bearer import JWT_BEARER_GRANT

from .conftest import form
from .fakes import T0, FakeClock
from .jose_keys import TOKEN_URL, decode, ec_key, pem, pem_needles, rsa_key

SECRET = "jwt-bearer-client-secret-value"


def bearer(**kw) -> JwtBearerTokenProvider:
    assertion = kw.pop("assertion", None) or GrantAssertion("svc@example.iam", pem(rsa_key()), key_id="k1")
    kw.setdefault("service_name", "crm")
    return JwtBearerTokenProvider(TOKEN_URL, assertion=assertion, **kw)


class TestGrant:
    def test_form_and_claims(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1", "expires_in": 3600})
        clock = FakeClock()
        token = bearer(scope="api.read", clock=clock).fetch_token()
        assert token.access_token == "at-1"
        body = form(mocked.calls[0])
        assert set(body) == {"grant_type", "assertion", "scope"}  # no client authentication configured: none sent
        assert body["grant_type"] == [JWT_BEARER_GRANT] and body["scope"] == ["api.read"]
        claims = decode(body["assertion"][0], rsa_key())
        issued = int(T0.timestamp())
        assert claims == {
            "iss": "svc@example.iam",
            "sub": "svc@example.iam",  # SUBJECT defaults to ISSUER
            "aud": TOKEN_URL,  # AUDIENCE defaults to the token endpoint
            "iat": issued,
            "exp": issued + 300,
            "jti": claims["jti"],
        }

    def test_every_assertion_setting(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1"})
        assertion = GrantAssertion.from_settings(
            {
                "ISSUER": "client-123",
                "SUBJECT": "user@example.com",
                "AUDIENCE": "https://login.example.com",
                "PRIVATE_KEY": pem(ec_key("secp384r1")),
                "KEY_ID": "ec-1",
                "LIFETIME": 180,
                "CLAIMS": {"scope": "api", "tenant": 7},
            }
        )
        bearer(assertion=assertion, audience=["crm-api"], resource="https://crm.example.com/api").fetch_token()
        body = form(mocked.calls[0])
        assert body["audience"] == ["crm-api"] and body["resource"] == ["https://crm.example.com/api"]
        claims = decode(body["assertion"][0], ec_key("secp384r1"), audience="https://login.example.com")
        assert (claims["iss"], claims["sub"], claims["aud"], claims["exp"] - claims["iat"]) == (
            "client-123",
            "user@example.com",
            "https://login.example.com",
            180,
        )
        assert (claims["scope"], claims["tenant"]) == ("api", 7)

    def test_optional_client_authentication(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1"})
        bearer(client_id="crm-app", client_secret=SECRET, auth_method="client_secret_basic").fetch_token()
        assert "Authorization" in mocked.calls[0].request.headers
        assert "client_secret" not in form(mocked.calls[0])

    def test_issuer_defaults_to_client_id(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1"})
        p = JwtBearerTokenProvider(TOKEN_URL, assertion=GrantAssertion(None, pem(rsa_key())), client_id="app-7")
        p.fetch_token()
        claims = decode(form(mocked.calls[0])["assertion"][0], rsa_key())
        assert claims["iss"] == claims["sub"] == "app-7"
        assert p.service_name == "app-7@auth.example.com"

    def test_fresh_assertion_per_request(self, mocked):
        mocked.post(TOKEN_URL, json={"access_token": "at-1"})
        p = bearer()
        for _ in range(30):
            p.fetch_token()
        jtis = {decode(form(call)["assertion"][0], rsa_key())["jti"] for call in mocked.calls}
        assert len(jtis) == 30


class TestSettingsBlock:
    @pytest.mark.parametrize(
        ("block", "field"),
        [
            ({"ISSUER": "svc"}, "ASSERTION.PRIVATE_KEY"),
            ({"ISSUER": "svc", "PRIVATE_KEY": "not a key"}, "ASSERTION.PRIVATE_KEY"),
            ({"ISSUER": "svc", "PRIVATE_KEY": "<rsa>", "ALGORITHM": "ES256"}, "ASSERTION.ALGORITHM"),
            ({"ISSUER": "svc", "PRIVATE_KEY": "<rsa>", "LIFETIME": 301}, "ASSERTION.LIFETIME"),
            ({"ISSUER": "svc", "PRIVATE_KEY": "<rsa>", "CLAIMS": {"exp": 1}}, "ASSERTION.CLAIMS"),
            ({"ISSUER": "", "PRIVATE_KEY": "<rsa>"}, "ASSERTION.ISSUER"),
            ({"ISSUER": "svc", "PRIVATE_KEY": "<rsa>", "KEY_ID": ""}, "ASSERTION.KEY_ID"),
            ({"ISSUER": "svc", "PRIVATE_KEY": "<rsa>", "AUDIENCE": 5}, "ASSERTION.AUDIENCE"),
            ({"ISSUER": "svc", "PRIVATE_KEY": "<rsa>", "SCOPE": "x"}, "ASSERTION"),
            ("not a mapping", "ASSERTION"),
        ],
    )
    def test_errors_name_the_key(self, block, field):
        key_text = pem(rsa_key())
        if isinstance(block, dict):
            block = {key: key_text if value == "<rsa>" else value for key, value in block.items()}
        with pytest.raises(ConfigurationError) as info:
            GrantAssertion.from_settings(block)
        assert info.value.field == field
        assert str(info.value).startswith(f"{field}: ")
        for needle in pem_needles(key_text):
            assert needle not in str(info.value)

    def test_needs_an_issuer_somewhere(self):
        with pytest.raises(ConfigurationError, match="needs an issuer"):
            JwtBearerTokenProvider(TOKEN_URL, assertion=GrantAssertion(None, pem(rsa_key())))

    def test_hmac_key_refused_and_never_pickled(self):
        with pytest.raises(ConfigurationError):
            GrantAssertion("svc", SigningKey.from_secret("x" * 40))
        assertion = GrantAssertion("svc", pem(rsa_key()))
        with pytest.raises(TypeError):
            pickle.dumps(assertion)
        assert "key='****'" in repr(assertion)


class TestRefusals:
    @pytest.mark.parametrize(
        "description",
        ["JWT signature verification failed", "unknown kid", "jti already used", "assertion has expired", "iat in the future"],
    )
    def test_refused_assertion(self, mocked, description):
        mocked.post(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": description})
        manager = TokenManager(bearer(), InMemoryTokenStorage())
        with pytest.raises(AuthenticationException) as info:
            manager.get_token()
        assert (info.value.service_name, info.value.error, info.value.error_description) == ("crm", "invalid_grant", description)
        with pytest.raises(AuthenticationException):
            manager.get_token()
        assert len(mocked.calls) == 2  # nothing cached, tried again
        first, second = (decode(form(call)["assertion"][0], rsa_key())["jti"] for call in mocked.calls)
        assert first != second
