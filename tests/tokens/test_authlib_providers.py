"""The token-layer providers against a real authorization server the project did not write (Authlib, ``authlib_server``).

Provider-level (no Django settings): each client authentication method, the JWT-bearer
grant, token exchange and discovery, and each refusal ending in a typed error with no
fallback. What the server received is read from its ledger (fingerprints, claims, ``jti``).
"""

from __future__ import annotations

import pytest
import requests

from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.tokens import (
    ClientCredentialsTokenProvider,
    DiscoveryCache,
    DiscoveryException,
    GrantAssertion,
    InMemoryTokenStorage,
    JwtBearerTokenProvider,
    TokenExchangeException,
    TokenExchangeTokenProvider,
    TokenManager,
)
from tests.support.authlib_server import AuthlibServer, generate_ec_key, generate_rsa_key


def provider(server: AuthlibServer, client_id: str, **kw) -> ClientCredentialsTokenProvider:
    client = server.clients[client_id]
    if client.method == "private_key_jwt":
        kw.setdefault("private_key", client.key.private_pem)
        kw.setdefault("key_id", client.key.kid)
        secret = None
    else:
        secret = client.secret
    kw.setdefault("token_url", server.token_url)
    return ClientCredentialsTokenProvider(kw.pop("token_url"), client_id, secret, auth_method=client.method, service_name=client_id, **kw)


def api_status(server: AuthlibServer, token: str) -> int:
    return requests.get(server.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic", "client_secret_jwt", "private_key_jwt"])
def test_each_method_gets_a_working_token(authlib_server, method):
    authlib_server.register_client("svc", method)
    token = provider(authlib_server, "svc").fetch_token()
    assert api_status(authlib_server, token.access_token) == 200
    [entry] = authlib_server.issued("svc")
    assert entry["auth_method"] == method
    if method.endswith("_jwt"):
        claims = entry["client_assertion"]
        assert (claims["iss"], claims["sub"], claims["aud"], claims["lifetime"]) == ("svc", "svc", authlib_server.token_url, 300)


def test_ec_and_pss_keys_and_fresh_jti(authlib_server):
    ec_key = generate_ec_key("ec-1", curve="P-384")
    authlib_server.register_client("ec", "private_key_jwt", keys=[ec_key])
    authlib_server.register_client("pss", "private_key_jwt", keys=[generate_rsa_key("rsa-1")])
    ec, pss = provider(authlib_server, "ec"), provider(authlib_server, "pss", algorithm="PS256")
    for _ in range(10):
        ec.fetch_token()
        pss.fetch_token()
    issued = authlib_server.issued()
    assert len(issued) == 20
    assert {entry["client_assertion"]["alg"] for entry in issued} == {"ES384", "PS256"}
    assert len({entry["jti"] for entry in issued}) == 20


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("wrong_secret", "invalid_client"),
        ("wrong_key", "invalid_client"),
        ("unknown_kid", "invalid_client"),
        ("refused_method", "invalid_client"),
    ],
)
def test_refusals_are_typed_not_cached_and_not_downgraded(authlib_server, case, error):
    if case == "wrong_secret":
        authlib_server.register_client("svc", "client_secret_jwt")
        p = ClientCredentialsTokenProvider(authlib_server.token_url, "svc", "x" * 43, auth_method="client_secret_jwt", service_name="svc")
    elif case == "wrong_key":
        authlib_server.register_client("svc", "private_key_jwt", keys=[generate_rsa_key("k1")])
        p = provider(authlib_server, "svc", private_key=generate_rsa_key("k1").private_pem)
    elif case == "unknown_kid":
        authlib_server.register_client("svc", "private_key_jwt", keys=[generate_rsa_key("k1")])
        p = provider(authlib_server, "svc", key_id="k2")
    else:
        client = authlib_server.register_client("svc", "client_secret_basic")
        p = ClientCredentialsTokenProvider(
            authlib_server.token_url, "svc", client.secret, auth_method="client_secret_jwt", service_name="svc"
        )
    manager = TokenManager(p, InMemoryTokenStorage())
    for attempt in (1, 2):
        with pytest.raises(AuthenticationException) as info:
            manager.get_token()
        assert (info.value.service_name, info.value.error) == ("svc", error)
        assert len(authlib_server.token_requests("svc")) == attempt  # one request per call: no fallback, nothing cached
    assert {entry["auth_method"] for entry in authlib_server.token_requests("svc")} == {p.auth_method}


def test_jwt_bearer_grant(authlib_server):
    issuer = authlib_server.register_issuer("svc@partner.iam", subjects=["user-7"])
    p = JwtBearerTokenProvider(
        authlib_server.token_url,
        assertion=GrantAssertion(issuer.issuer, issuer.key.private_pem, subject="user-7", key_id=issuer.key.kid, lifetime=120),
        service_name="crm",
        resource="https://crm.example.com/api",
    )
    token = p.fetch_token()
    assert api_status(authlib_server, token.access_token) == 200
    p.fetch_token()
    issued = authlib_server.issued(grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer")
    assert len(issued) == 2 and issued[0]["resource"] == ["https://crm.example.com/api"]
    claims = issued[0]["assertion"]
    assert (claims["iss"], claims["sub"], claims["aud"], claims["lifetime"]) == ("svc@partner.iam", "user-7", authlib_server.token_url, 120)
    assert issued[0]["assertion_jti"] != issued[1]["assertion_jti"]
    refused = JwtBearerTokenProvider(
        authlib_server.token_url,
        assertion=GrantAssertion(issuer.issuer, issuer.key.private_pem, subject="someone-else"),
        service_name="crm",
    )
    with pytest.raises(AuthenticationException) as info:
        refused.fetch_token()
    assert info.value.service_name == "crm" and info.value.error == "invalid_grant"


def test_token_exchange_shares_the_subject_cache_and_retries_a_rejected_subject(authlib_server):
    authlib_server.register_client("frontend", "client_secret_basic")
    authlib_server.register_client("orders", "private_key_jwt", grants=["token_exchange"])
    subject = TokenManager(provider(authlib_server, "frontend"), InMemoryTokenStorage())
    orders = TokenExchangeTokenProvider(
        authlib_server.token_url,
        subject_token_source=subject,
        client_id="orders",
        auth_method="private_key_jwt",
        private_key=authlib_server.clients["orders"].key.private_pem,
        key_id=authlib_server.clients["orders"].key.kid,
        audience="orders-api",
        resource=["https://orders.example.com/"],
        service_name="orders",
    )
    first = orders.fetch_token()
    orders.fetch_token()
    assert api_status(authlib_server, first.access_token) == 200
    assert len(authlib_server.issued("frontend")) == 1  # the subject token came from its own cache
    exchanged = authlib_server.issued("orders")
    assert exchanged[0]["audience"] == ["orders-api"] and exchanged[0]["resource"] == ["https://orders.example.com/"]
    assert exchanged[0]["subject_client"] == "frontend" and exchanged[0]["issued_token_type"].endswith("access_token")
    assert "requested_token_type" not in exchanged[0]["params"]

    authlib_server.revoke_tokens("frontend")  # the partner now rejects the cached subject token
    assert orders.fetch_token().access_token
    assert len(authlib_server.issued("frontend")) == 2  # replaced once through its manager
    assert [entry["result"] for entry in authlib_server.token_requests("orders")][-2:] == ["refused", "issued"]

    authlib_server.register_client("frontend", "client_secret_basic")  # new secret: the subject can no longer be had
    subject.invalidate_token()
    with pytest.raises(TokenExchangeException) as info:
        orders.fetch_token()
    assert (info.value.service_name, info.value.subject_service_name) == ("orders", "frontend")


def test_discovery_path_aware_once_per_process(authlib_server):
    authlib_server.configure_metadata(issuer_path="/tenants/acme", documents=["openid"])
    authlib_server.register_client("svc", "private_key_jwt")
    cache = DiscoveryCache()
    p = provider(authlib_server, "svc", token_url=None, issuer=authlib_server.issuer, discovery_cache=cache)
    for _ in range(5):
        p.fetch_token()
    fetches = [(fetch["kind"], fetch["status"]) for fetch in authlib_server.metadata_fetches()]
    assert fetches == [("oauth", 404), ("openid", 200)]  # RFC 8414 (path-aware) tried first, then OpenID; once
    [claims] = {entry["client_assertion"]["aud"] for entry in authlib_server.issued("svc")}
    assert claims == authlib_server.token_url


@pytest.mark.parametrize("bad", ["issuer", "endpoint"])
def test_discovery_refuses_a_foreign_issuer_or_endpoint(authlib_server, bad):
    if bad == "issuer":
        authlib_server.configure_metadata(issuer="https://evil.example.com")
    else:
        authlib_server.configure_metadata(token_endpoint=authlib_server.other_origin_token_url)
    client = authlib_server.register_client("svc", "client_secret_post")
    p = ClientCredentialsTokenProvider(
        None, "svc", client.secret, issuer=authlib_server.issuer, discovery_cache=DiscoveryCache(), service_name="svc"
    )
    with pytest.raises(DiscoveryException) as info:
        p.fetch_token()
    assert info.value.service_name == "svc" and info.value.issuer == authlib_server.issuer
    assert authlib_server.token_requests() == []  # the secret went nowhere
