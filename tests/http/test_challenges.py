"""``WWW-Authenticate`` parsing and which answers make a token client refetch and resend once."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from requestforge_django.http.challenges import Challenge, is_invalid_token, parse_challenges
from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfig
from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.tokens import TokenAuthHook, TokenManager
from tests.tokens.fakes import FakeClock, FakeProvider, auth_error

API = "https://api.example.com"
#: What django-oauth-toolkit sends (no space after the commas).
DOT_CHALLENGE = (
    'Bearer error="invalid_token",error_description="The access token is invalid.",'
    'resource_metadata="http://127.0.0.1:8000/.well-known/oauth-protected-resource"'
)


def challenge(scheme: str, token68: str | None = None, **params: str) -> Challenge:
    return Challenge(scheme, params, token68)


class TestParseChallenges:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            (None, []),
            ("", []),
            ("   ,  ", []),
            ("Bearer", [challenge("bearer")]),
            ('Bearer realm="api"', [challenge("bearer", realm="api")]),
            (
                DOT_CHALLENGE,
                [
                    challenge(
                        "bearer",
                        error="invalid_token",
                        error_description="The access token is invalid.",
                        resource_metadata="http://127.0.0.1:8000/.well-known/oauth-protected-resource",
                    )
                ],
            ),
            ("BEARER Error=invalid_token", [challenge("bearer", error="invalid_token")]),
            ('Bearer  realm = "a" ,  error = "invalid_token"', [challenge("bearer", realm="a", error="invalid_token")]),
            # A comma inside a quoted string separates nothing; escapes are undone.
            (
                'Basic realm="a, b", Bearer error="invalid_token"',
                [challenge("basic", realm="a, b"), challenge("bearer", error="invalid_token")],
            ),
            (r'Bearer error_description="say \"hi\"", error="x"', [challenge("bearer", error_description='say "hi"', error="x")]),
            # Several challenges (two WWW-Authenticate headers reach us joined with ", ").
            ('Newauth abc==, Basic realm="x", Bearer', [challenge("newauth", "abc=="), challenge("basic", realm="x"), challenge("bearer")]),
            ("Negotiate, Bearer error=invalid_token", [challenge("negotiate"), challenge("bearer", error="invalid_token")]),
            # The first of a repeated parameter wins; parameters before any scheme are dropped.
            ('Bearer error="invalid_token", error="insufficient_scope"', [challenge("bearer", error="invalid_token")]),
            ('error="invalid_token", Bearer realm="r"', [challenge("bearer", realm="r")]),
            # Garbage does not raise and does not swallow the challenges after it.
            ('@@@, Bearer error="invalid_token"', [challenge("bearer", error="invalid_token")]),
            ('Bearer error="invalid_token', [challenge("bearer", error="invalid_token")]),
        ],
    )
    def test_challenges(self, header: str | None, expected: list[Challenge]) -> None:
        assert parse_challenges(header) == expected


class TestIsInvalidToken:
    @pytest.mark.parametrize(
        "header",
        [
            DOT_CHALLENGE,
            'Bearer error="invalid_token"',
            "bearer error=invalid_token",
            'Bearer error="INVALID_TOKEN"',
            'Basic realm="x", Bearer realm="api", error="invalid_token"',
            'Bearer realm="has, comma, error=\\"insufficient_scope\\"", error="invalid_token"',
        ],
    )
    def test_rejected(self, header: str) -> None:
        assert is_invalid_token({"WWW-Authenticate": header}) is True

    @pytest.mark.parametrize(
        "header",
        [
            'Bearer error="insufficient_scope", scope="write"',
            'Bearer error="invalid_request"',
            'Bearer realm="api"',
            'Bearer resource_metadata="https://x/.well-known/oauth-protected-resource"',
            'Basic error="invalid_token"',  # not a Bearer challenge
            'Bearer realm="error=invalid_token"',  # inside a quoted value of another parameter
            "Bearer invalid_token",  # a token68, not an error parameter
            "",
        ],
    )
    def test_not_rejected(self, header: str) -> None:
        assert is_invalid_token({"WWW-Authenticate": header}) is False

    def test_without_the_header(self) -> None:
        assert is_invalid_token({}) is False
        assert is_invalid_token(None) is False


# -- the token client: one refetch and one resend ----------------------------------------------


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider(FakeClock())


def client_for(provider: FakeProvider, **hook: Any) -> HttpClient:
    manager = TokenManager(provider, clock=provider.clock)
    return HttpClient(HttpClientConfig(base_url=API, auth_hook=TokenAuthHook(manager, **hook)))


def sent_tokens() -> list[str]:
    return [call.request.headers["Authorization"] for call in responses.calls]


def answer_until_tok2(status: int, headers: dict[str, str]) -> Any:
    def api(request: Any) -> tuple[int, dict[str, str], str]:
        if request.headers["Authorization"] == "Bearer tok-2":
            return 200, {}, '{"ok": true}'
        return status, headers, '{"detail": "no"}'

    return api


class TestTokenRejected:
    @responses.activate
    @pytest.mark.parametrize("status", [401, 403, 400, 404])
    def test_invalid_token_challenge_on_any_error_status_refetches_once(self, provider: FakeProvider, status: int) -> None:
        responses.add_callback(responses.GET, f"{API}/things", callback=answer_until_tok2(status, {"WWW-Authenticate": DOT_CHALLENGE}))
        assert client_for(provider).get("/things").status_code == 200
        assert sent_tokens() == ["Bearer tok-1", "Bearer tok-2"]
        assert provider.fetch_calls == 2

    @responses.activate
    @pytest.mark.parametrize(
        "headers",
        [{}, {"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="admin"'}, {"WWW-Authenticate": 'Bearer realm="api"'}],
    )
    def test_403_without_invalid_token_is_returned_as_is(self, provider: FakeProvider, headers: dict[str, str]) -> None:
        responses.add_callback(responses.GET, f"{API}/things", callback=answer_until_tok2(403, headers))
        assert client_for(provider).get("/things").status_code == 403
        assert sent_tokens() == ["Bearer tok-1"]
        assert provider.fetch_calls == 1

    @responses.activate
    def test_a_listed_status_is_a_rejection_without_a_challenge(self, provider: FakeProvider) -> None:
        responses.add_callback(responses.GET, f"{API}/things", callback=answer_until_tok2(403, {}))
        assert client_for(provider, auth_error_statuses=(401, 403)).get("/things").status_code == 200
        assert sent_tokens() == ["Bearer tok-1", "Bearer tok-2"]

    @responses.activate
    def test_a_status_no_longer_listed_needs_the_challenge(self, provider: FakeProvider) -> None:
        responses.add(responses.GET, f"{API}/things", status=401)
        assert client_for(provider, auth_error_statuses=(403,)).get("/things").status_code == 401
        assert provider.fetch_calls == 1

    @responses.activate
    def test_a_successful_answer_with_a_stale_challenge_is_not_resent(self, provider: FakeProvider) -> None:
        responses.add(responses.POST, f"{API}/orders", status=201, headers={"WWW-Authenticate": DOT_CHALLENGE})
        assert client_for(provider).post("/orders", json_data={"n": 1}).status_code == 201
        assert len(responses.calls) == 1 and provider.fetch_calls == 1

    @responses.activate
    def test_a_second_rejection_is_returned_after_one_retry(self, provider: FakeProvider) -> None:
        responses.add(responses.GET, f"{API}/things", status=403, headers={"WWW-Authenticate": DOT_CHALLENGE})
        answer = client_for(provider).get("/things")
        assert answer.status_code == 403
        assert sent_tokens() == ["Bearer tok-1", "Bearer tok-2"]
        assert provider.fetch_calls == 2

    @responses.activate
    def test_a_failed_refetch_reaches_the_caller(self, provider: FakeProvider) -> None:
        responses.add(responses.GET, f"{API}/things", status=403, headers={"WWW-Authenticate": DOT_CHALLENGE})
        client = client_for(provider)
        client.config.auth_hook.token_manager.get_token()
        provider.fail_with = auth_error("token endpoint down")
        with pytest.raises(AuthenticationException, match="token endpoint down"):
            client.get("/things")
