"""Token exchange (RFC 8693): the form, the answer checks, a rejected subject token, errors naming both clients."""

from __future__ import annotations

import pickle

import pytest
import responses

from requestforge_django.http.exceptions import AuthenticationException, ConfigurationError
from requestforge_django.tokens import (
    ClientCredentialsTokenProvider,
    InMemoryTokenStorage,
    TokenData,
    TokenExchangeException,
    TokenExchangeTokenProvider,
    TokenManager,
)
from requestforge_django.tokens.token_exchange import ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT

from .conftest import form
from .jose_keys import TOKEN_URL, decode, pem, rsa_key

SUBJECT_URL = "https://idp.example.com/token"
SECRET = "exchange-client-secret-value"
ISSUED = {"access_token": "exchanged-1", "token_type": "Bearer", "expires_in": 600, "issued_token_type": ACCESS_TOKEN_TYPE}


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def subject(mocked) -> TokenManager:
    """The other client's token manager: its own cache and single flight."""
    counter = iter(range(1, 100))
    mocked.add_callback(
        responses.POST,
        SUBJECT_URL,
        callback=lambda request: (200, {}, f'{{"access_token": "subject-{next(counter)}", "expires_in": 3600}}'),
    )
    return TokenManager(
        ClientCredentialsTokenProvider(SUBJECT_URL, "frontend", "frontend-secret", service_name="frontend"), InMemoryTokenStorage()
    )


def exchange(source, **kw) -> TokenExchangeTokenProvider:
    kw.setdefault("service_name", "orders")
    kw.setdefault("client_id", "orders-app")
    kw.setdefault("client_secret", SECRET)
    return TokenExchangeTokenProvider(TOKEN_URL, subject_token_source=source, **kw)


def calls_to(mocked, url: str) -> list:
    return [call for call in mocked.calls if call.request.url == url]


class TestExchange:
    def test_form(self, mocked, subject):
        mocked.post(TOKEN_URL, json=ISSUED)
        token = exchange(subject, audience=["orders-api", "audit"], resource="https://orders.example.com/", scope="orders").fetch_token()
        assert token.access_token == "exchanged-1"
        body = form(calls_to(mocked, TOKEN_URL)[0])
        assert body == {
            "grant_type": [TOKEN_EXCHANGE_GRANT],
            "subject_token": ["subject-1"],
            "subject_token_type": [ACCESS_TOKEN_TYPE],
            "audience": ["orders-api", "audit"],
            "resource": ["https://orders.example.com/"],
            "scope": ["orders"],
            "client_id": ["orders-app"],
            "client_secret": [SECRET],
        }  # no requested_token_type unless asked

    def test_subject_token_comes_from_its_cache(self, mocked, subject):
        mocked.post(TOKEN_URL, json=ISSUED)
        p = exchange(subject)
        for _ in range(5):
            p.fetch_token()
        assert len(calls_to(mocked, SUBJECT_URL)) == 1 and len(calls_to(mocked, TOKEN_URL)) == 5

    def test_requested_type_and_private_key_jwt(self, mocked, subject):
        mocked.post(TOKEN_URL, json={**ISSUED, "issued_token_type": JWT_TOKEN_TYPE})
        exchange(
            subject, requested_token_type=JWT_TOKEN_TYPE, client_secret=None, auth_method="private_key_jwt", private_key=pem(rsa_key())
        ).fetch_token()
        body = form(calls_to(mocked, TOKEN_URL)[0])
        assert body["requested_token_type"] == [JWT_TOKEN_TYPE]
        assert decode(body["client_assertion"][0], rsa_key())["aud"] == TOKEN_URL

    def test_callable_source(self, mocked):
        mocked.post(TOKEN_URL, json=ISSUED)
        exchange(lambda: "plain-subject-token", subject_service_name="session").fetch_token()
        assert form(mocked.calls[0])["subject_token"] == ["plain-subject-token"]

    @pytest.mark.parametrize(
        ("answer", "words"),
        [
            ({"issued_token_type": None}, "issued_token_type is missing"),
            ({"issued_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}, "refresh_token', expected"),
            ({"issued_token_type": "<b>not a urn</b>"}, "not a token type URI"),
            ({"token_type": "N_A"}, "token_type is N_A"),
        ],
    )
    def test_answer_checked_before_caching(self, mocked, subject, answer, words):
        mocked.post(TOKEN_URL, json={key: value for key, value in {**ISSUED, **answer}.items() if value is not None})
        manager = TokenManager(exchange(subject), InMemoryTokenStorage())
        with pytest.raises(TokenExchangeException) as info:
            manager.get_token()
        assert words in info.value.message
        assert (info.value.service_name, info.value.subject_service_name) == ("orders", "frontend")
        assert "frontend" in info.value.message
        with pytest.raises(TokenExchangeException):
            manager.get_token()
        assert len(calls_to(mocked, TOKEN_URL)) == 2  # nothing cached


class TestRejectedSubject:
    @pytest.mark.parametrize("error", ["invalid_grant", "invalid_token", "invalid_request"])
    def test_replaced_and_retried_once(self, mocked, subject, error):
        mocked.add(responses.POST, TOKEN_URL, status=400, json={"error": error, "error_description": "subject token expired"})
        mocked.add(responses.POST, TOKEN_URL, json=ISSUED)
        assert exchange(subject).fetch_token().access_token == "exchanged-1"
        sent = [form(call)["subject_token"][0] for call in calls_to(mocked, TOKEN_URL)]
        assert sent == ["subject-1", "subject-2"]  # the rejected one was replaced through its own manager
        assert subject.get_token().access_token == "subject-2"

    def test_rejected_twice(self, mocked, subject):
        mocked.post(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "bad subject"})
        manager = TokenManager(exchange(subject), InMemoryTokenStorage())
        with pytest.raises(TokenExchangeException) as info:
            manager.get_token()
        exc = info.value
        assert isinstance(exc, AuthenticationException) and exc.subject_rejected
        assert (exc.service_name, exc.subject_service_name, exc.error, exc.status_code) == ("orders", "frontend", "invalid_grant", 400)
        assert "rejected the subject token" in exc.message and "frontend" in exc.message
        restored = pickle.loads(pickle.dumps(exc))
        assert (restored.subject_service_name, restored.subject_rejected, str(restored)) == ("frontend", True, str(exc))
        assert len(calls_to(mocked, TOKEN_URL)) == 2  # one retry, no more
        with pytest.raises(TokenExchangeException):
            manager.get_token()
        assert len(calls_to(mocked, TOKEN_URL)) == 4  # nothing cached: the next call tries again

    def test_client_refusal_is_not_a_subject_problem(self, mocked, subject):
        mocked.post(TOKEN_URL, status=401, json={"error": "invalid_client"})
        with pytest.raises(TokenExchangeException) as info:
            exchange(subject).fetch_token()
        assert not info.value.subject_rejected and info.value.error == "invalid_client"
        assert len(calls_to(mocked, TOKEN_URL)) == 1 and len(calls_to(mocked, SUBJECT_URL)) == 1

    def test_callable_source_is_not_retried(self, mocked):
        mocked.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
        with pytest.raises(TokenExchangeException) as info:
            exchange(lambda: TokenData(access_token="s-1"), subject_service_name="session").fetch_token()
        assert info.value.subject_service_name == "session"
        assert len(mocked.calls) == 1

    def test_subject_token_unavailable(self, mocked):
        mocked.post(SUBJECT_URL, status=401, json={"error": "invalid_client"})
        source = TokenManager(
            ClientCredentialsTokenProvider(SUBJECT_URL, "frontend", "bad", service_name="frontend"), InMemoryTokenStorage()
        )
        with pytest.raises(TokenExchangeException) as info:
            exchange(source).fetch_token()
        assert "could not obtain the subject token from frontend" in info.value.message
        assert info.value.subject_service_name == "frontend" and info.value.service_name == "orders"
        assert isinstance(info.value.__cause__, AuthenticationException) and info.value.__cause__.service_name == "frontend"
        assert calls_to(mocked, TOKEN_URL) == []


class TestConfiguration:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"subject_token_source": 42}, "subject_token_source"),
            ({"subject_token_type": "access_token"}, "subject_token_type"),
            ({"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}, "requested_token_type"),
            ({"subject_token_source": lambda: "t"}, "subject_service_name"),
        ],
    )
    def test_refused(self, subject, kwargs, field):
        source = kwargs.pop("subject_token_source", subject)
        with pytest.raises(ConfigurationError) as info:
            exchange(source, **kwargs)
        assert info.value.field == field

    def test_repr(self, subject):
        text = repr(exchange(subject))
        assert "subject='frontend'" in text and SECRET not in text
