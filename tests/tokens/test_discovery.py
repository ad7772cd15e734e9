"""``ISSUER`` instead of ``TOKEN_URL``: RFC 8414 then OpenID metadata, strict checks, one fetch per process."""

from __future__ import annotations

import pickle
import threading
from urllib.parse import parse_qs

import pytest
import responses

from requestforge_django.http.exceptions import AuthenticationException, ConfigurationError
from requestforge_django.tokens import (
    ClientCredentialsTokenProvider,
    DiscoveryCache,
    DiscoveryException,
    InMemoryTokenStorage,
    TokenManager,
)
from requestforge_django.tokens.discovery import ServerMetadata, metadata_urls, validate_issuer

from .jose_keys import decode, pem, rsa_key

ISSUER = "https://auth.example.com"
TOKEN_ENDPOINT = "https://auth.example.com/oauth2/v1/token"
RFC8414 = "https://auth.example.com/.well-known/oauth-authorization-server"
OPENID = "https://auth.example.com/.well-known/openid-configuration"
SECRET = "discovery-client-secret-value"


def metadata(issuer: str = ISSUER, token_endpoint: str = TOKEN_ENDPOINT, **extra) -> dict:
    return {"issuer": issuer, "token_endpoint": token_endpoint, "jwks_uri": f"{issuer}/jwks", **extra}


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def cache() -> DiscoveryCache:
    return DiscoveryCache()


def provider(cache: DiscoveryCache, issuer: str = ISSUER, **kw) -> ClientCredentialsTokenProvider:
    kw.setdefault("service_name", "billing")
    return ClientCredentialsTokenProvider(None, "my-client", SECRET, issuer=issuer, discovery_cache=cache, **kw)


def urls(mocked) -> list[str]:
    return [call.request.url for call in mocked.calls]


class TestLocations:
    def test_rfc8414_first(self, mocked, cache):
        mocked.get(RFC8414, json=metadata())
        mocked.post(TOKEN_ENDPOINT, json={"access_token": "at-1"})
        token = provider(cache).fetch_token()
        assert token.access_token == "at-1"
        assert urls(mocked) == [RFC8414, TOKEN_ENDPOINT]
        assert mocked.calls[0].request.method == "GET"
        assert "Authorization" not in mocked.calls[0].request.headers and mocked.calls[0].request.body is None  # no secret to metadata

    def test_openid_when_rfc8414_is_missing(self, mocked, cache):
        mocked.get(RFC8414, status=404)
        mocked.get(OPENID, json=metadata())
        mocked.post(TOKEN_ENDPOINT, json={"access_token": "at-1"})
        p = provider(cache)
        p.fetch_token()
        assert urls(mocked) == [RFC8414, OPENID, TOKEN_ENDPOINT]
        assert p.token_url == TOKEN_ENDPOINT

    def test_path_aware_locations(self):
        assert metadata_urls("https://as.example.com/tenant/1") == (
            "https://as.example.com/.well-known/oauth-authorization-server/tenant/1",
            "https://as.example.com/tenant/1/.well-known/openid-configuration",
        )
        assert metadata_urls("https://as.example.com:8443/") == (
            "https://as.example.com:8443/.well-known/oauth-authorization-server",
            "https://as.example.com:8443/.well-known/openid-configuration",
        )

    def test_path_issuer_end_to_end_and_assertion_audience(self, mocked, cache):
        issuer = "https://auth.example.com/realms/shop"
        endpoint = f"{issuer}/protocol/openid-connect/token"
        mocked.get("https://auth.example.com/.well-known/oauth-authorization-server/realms/shop", status=404)
        mocked.get(f"{issuer}/.well-known/openid-configuration", json=metadata(issuer, endpoint))
        mocked.post(endpoint, json={"access_token": "at-1"})
        ClientCredentialsTokenProvider(
            None, "my-client", issuer=issuer, auth_method="private_key_jwt", private_key=pem(rsa_key()), discovery_cache=cache
        ).fetch_token()
        body = mocked.calls[-1].request.body
        assertion = parse_qs(body if isinstance(body, str) else body.decode())["client_assertion"][0]
        assert decode(assertion, rsa_key(), audience=endpoint)["aud"] == endpoint  # aud: the discovered endpoint


class TestRefusedDocuments:
    @pytest.mark.parametrize(
        ("document", "words"),
        [
            (metadata(issuer="https://evil.example.com"), "its issuer is 'https://evil.example.com', not exactly"),
            (metadata(issuer=ISSUER + "/"), "not exactly"),
            (metadata(issuer=None), "its issuer is NoneType"),
            (metadata(token_endpoint="https://evil.example.com/token"), "another origin (https://evil.example.com)"),
            (metadata(token_endpoint="http://auth.example.com/token"), "another origin (http://auth.example.com)"),
            (metadata(token_endpoint="https://auth.example.com:8443/token"), "another origin"),
            (metadata(token_endpoint="/relative/token"), "not an absolute http(s) URL"),
            ({"issuer": ISSUER}, "names no token_endpoint"),
        ],
    )
    def test_typed_error_and_no_token_request(self, mocked, cache, document, words):
        mocked.get(RFC8414, json=document)
        mocked.get(OPENID, json=metadata())  # a good second document does not rescue a bad first one
        manager = TokenManager(provider(cache), InMemoryTokenStorage())
        with pytest.raises(DiscoveryException) as info:
            manager.get_token()
        exc = info.value
        assert isinstance(exc, AuthenticationException)
        assert exc.service_name == "billing" and exc.issuer == ISSUER
        assert words in exc.message
        assert urls(mocked) == [RFC8414]
        assert SECRET not in str(exc)
        assert len(cache) == 0
        restored = pickle.loads(pickle.dumps(exc))  # crosses Celery / multiprocessing intact
        assert (type(restored), restored.issuer, restored.service_name, str(restored)) == (DiscoveryException, ISSUER, "billing", str(exc))

    def test_neither_location(self, mocked, cache):
        mocked.get(RFC8414, status=404)
        mocked.get(OPENID, status=500, body="<html>oops</html>")
        with pytest.raises(DiscoveryException, match="no authorization server metadata") as info:
            provider(cache).fetch_token()
        assert "answered HTTP 404" in info.value.message and "answered HTTP 500" in info.value.message
        assert "oops" not in str(info.value)

    def test_non_json_document(self, mocked, cache):
        mocked.get(RFC8414, body="<html>login</html>", content_type="text/html")
        with pytest.raises(DiscoveryException, match=r"non-JSON \(text/html"):
            provider(cache).fetch_token()

    def test_unreachable(self, mocked, cache):
        import requests

        mocked.get(RFC8414, body=requests.ConnectionError("refused"))
        with pytest.raises(DiscoveryException, match="unreachable") as info:
            provider(cache).fetch_token()
        assert info.value.service_name == "billing"

    def test_redirect_to_another_origin_is_not_followed(self, mocked, cache):
        mocked.get(RFC8414, status=302, headers={"Location": "https://evil.example.com/meta"})
        with pytest.raises(DiscoveryException, match="another origin"):
            provider(cache).fetch_token()
        assert urls(mocked) == [RFC8414]


class TestCaching:
    def test_one_discovery_for_many_fetches_and_providers(self, mocked, cache):
        mocked.get(RFC8414, json=metadata())
        mocked.post(TOKEN_ENDPOINT, json={"access_token": "at-1"})
        first, second = provider(cache), provider(cache, service_name="other")
        for _ in range(5):
            first.fetch_token()
            second.fetch_token()
        assert urls(mocked).count(RFC8414) == 1 and urls(mocked).count(TOKEN_ENDPOINT) == 10

    def test_one_discovery_across_threads(self, mocked, cache):
        mocked.get(RFC8414, json=metadata())
        start = threading.Barrier(8)
        found: list[ServerMetadata] = []

        def run() -> None:
            start.wait()
            found.append(cache.get_or_discover(ISSUER, lambda: _fetch(provider(cache))))

        threads = [threading.Thread(target=run) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(found) == 8 and len(set(found)) == 1
        assert urls(mocked).count(RFC8414) == 1

    def test_failure_is_not_cached(self, mocked, cache):
        mocked.get(RFC8414, json=metadata(issuer="https://other.example.com"))
        p = provider(cache)
        with pytest.raises(DiscoveryException):
            p.fetch_token()
        mocked.replace(responses.GET, RFC8414, json=metadata())
        mocked.post(TOKEN_ENDPOINT, json={"access_token": "at-1"})
        assert p.fetch_token().access_token == "at-1"
        assert urls(mocked).count(RFC8414) == 2

    def test_ttl_and_bound(self):
        now = [0.0]
        small = DiscoveryCache(max_entries=2, ttl=60, clock=lambda: now[0])
        calls: list[str] = []

        def fetch(issuer: str):
            return lambda: calls.append(issuer) or ServerMetadata(issuer, issuer + "/token", issuer)

        for issuer in ("https://a", "https://b", "https://a", "https://c", "https://b"):
            small.get_or_discover(issuer, fetch(issuer))
        assert calls == ["https://a", "https://b", "https://c", "https://b"]  # LRU: b was dropped when c came
        assert len(small) == 2
        now[0] = 61
        small.get_or_discover("https://c", fetch("https://c"))
        assert calls[-1] == "https://c"
        small.clear()
        assert len(small) == 0


class TestIssuerSetting:
    @pytest.mark.parametrize(
        "issuer", ["auth.example.com", "ftp://auth.example.com", "https://auth.example.com?x=1", "https://a#f", "", None, 3]
    )
    def test_refused(self, issuer):
        with pytest.raises(ConfigurationError) as info:
            validate_issuer(issuer)
        assert info.value.field == "issuer"

    def test_not_both(self, cache):
        with pytest.raises(ConfigurationError, match="not both"):
            ClientCredentialsTokenProvider("https://auth.example.com/token", "c", SECRET, issuer=ISSUER)
        with pytest.raises(ConfigurationError, match="token_url or an issuer"):
            ClientCredentialsTokenProvider(None, "c", SECRET)

    def test_construction_does_no_io(self, mocked, cache):
        p = provider(cache)
        assert len(mocked.calls) == 0
        assert p.token_url is None and p.issuer == ISSUER and p.service_name == "billing"
        assert "issuer='https://auth.example.com'" in repr(p)


def _fetch(p: ClientCredentialsTokenProvider) -> ServerMetadata:
    from requestforge_django.tokens.discovery import fetch_metadata

    return fetch_metadata(ISSUER, p._http, service_name=p.service_name)
