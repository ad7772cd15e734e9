"""The library's providers against a real authorization server it did not write (Authlib, ``authlib_server``).

Each client-authentication method and each grant gets a token the server's protected
API accepts; what reached the server is read from its ledger: the method, the
assertion claims (``aud`` a single string, ``exp - iat`` <= 300, ``iss = sub``), a fresh
``jti`` per token request, ``resource``/``audience``, the subject token of an exchange,
and how often metadata was fetched. Bad input ends in a typed error, nothing cached,
and the next call tries again. Across processes (Redis storage) many calls make one
token request. Assertions never print a token or a key: fingerprints and statuses only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.tokens.discovery import DiscoveryCache, DiscoveryException, clear_discovery_cache
from requestforge_django.tokens.jwt_bearer import GrantAssertion, JwtBearerTokenProvider
from requestforge_django.tokens.manager import TokenManager
from requestforge_django.tokens.providers import ClientCredentialsTokenProvider
from requestforge_django.tokens.token_exchange import TokenExchangeException, TokenExchangeTokenProvider
from tests.support.authlib_server import AuthlibServer, ServerClient, fingerprint, generate_ec_key, generate_rsa_key
from tests.support.authlib_workers import calls_task, init_authlib_worker
from tests.support.processes import SpawnedPool

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
METHODS = ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"]


@pytest.fixture(autouse=True)
def fresh_discovery_cache() -> Iterator[None]:
    """The process-wide discovery cache starts empty (a reused port must not find an old issuer in it)."""
    clear_discovery_cache()
    yield
    clear_discovery_cache()


def provider(server: AuthlibServer, client: ServerClient, *, discover: bool = False, **options: Any) -> ClientCredentialsTokenProvider:
    """A client-credentials provider for ``client`` with its registered method and credentials."""
    where: dict[str, Any] = {"issuer": server.issuer} if discover else {}
    if client.method == "private_key_jwt":
        options.setdefault("private_key", client.key.private_pem)
        options.setdefault("key_id", client.key.kid)
    secret = client.secret if client.method != "private_key_jwt" else None
    token_url = None if discover else server.token_url
    return ClientCredentialsTokenProvider(token_url, client.client_id, secret, auth_method=client.method, timeout=10.0, **where, **options)


def api_status(server: AuthlibServer, token: str) -> tuple[int, str | None]:
    """The protected API's answer to ``token``: status and the client it names."""
    response = requests.get(server.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return response.status_code, response.json().get("client_id")


# -- each method and grant ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_each_client_auth_method_gets_a_token_the_api_accepts(authlib_server: AuthlibServer, method: str) -> None:
    client = authlib_server.register_client("svc", method)
    token = provider(authlib_server, client).fetch_token()
    assert api_status(authlib_server, token.access_token) == (200, "svc")
    [entry] = authlib_server.token_requests()
    assert (entry["auth_method"], entry["client_id"], entry["result"]) == (method, "svc", "issued")
    assert entry["token"] == fingerprint(token.access_token)
    sent_secret, sent_assertion = "client_secret" in entry["params"], "client_assertion" in entry["params"]
    # One method, nothing weaker beside it.
    assert (sent_secret, sent_assertion) == (method == "client_secret_post", method.endswith("_jwt"))
    if method.endswith("_jwt"):
        claims = entry["client_assertion"]
        assert claims["aud"] == authlib_server.token_url  # a single string, the token endpoint
        assert claims["iss"] == claims["sub"] == "svc" and 0 < claims["lifetime"] <= 300 and claims["jti"]


KEYS = {
    "ES256": lambda: generate_ec_key("ec-256"),
    "ES384": lambda: generate_ec_key("ec-384", curve="P-384"),
    "ES512": lambda: generate_ec_key("ec-521", curve="P-521"),
    "RS256-3072": lambda: generate_rsa_key("rsa-3072", bits=3072),
}


@pytest.mark.parametrize("kind", list(KEYS))
def test_private_key_jwt_with_ec_and_larger_rsa_keys(authlib_server: AuthlibServer, kind: str) -> None:
    key = KEYS[kind]()
    client = authlib_server.register_client("svc", "private_key_jwt", keys=[key])
    token = provider(authlib_server, client).fetch_token()
    assert api_status(authlib_server, token.access_token) == (200, "svc")
    [entry] = authlib_server.issued("svc")
    assert (entry["client_assertion"]["alg"], entry["client_assertion"]["kid"]) == (key.alg, key.kid)


@pytest.mark.parametrize("method", ["client_secret_jwt", "private_key_jwt"])
def test_a_fresh_jti_per_token_request(authlib_server: AuthlibServer, method: str) -> None:
    client = authlib_server.register_client("svc", method)
    source = provider(authlib_server, client)
    for _ in range(3):
        source.fetch_token()  # a reused jti would be refused by the server's jti cache
    issued = authlib_server.issued("svc")
    assert len(issued) == 3 and len({e["jti"] for e in issued}) == 3


def test_jwt_bearer_grant(authlib_server: AuthlibServer) -> None:
    issuer = authlib_server.register_issuer("svc@example", generate_ec_key("grant-1"), subjects=["user-7"])
    assertion = GrantAssertion("svc@example", issuer.key.private_pem, subject="user-7", key_id="grant-1")
    source = JwtBearerTokenProvider(authlib_server.token_url, assertion=assertion, scope="read", timeout=10.0)
    first, _second = source.fetch_token(), source.fetch_token()
    assert api_status(authlib_server, first.access_token) == (200, "svc@example")
    entries = authlib_server.issued(grant_type="jwt_bearer")
    assert [e["auth_method"] for e in entries] == ["none", "none"]
    assert entries[0]["assertion"]["aud"] == authlib_server.token_url and entries[0]["assertion"]["sub"] == "user-7"
    assert entries[0]["assertion_jti"] != entries[1]["assertion_jti"]
    assert {t["subject"] for t in authlib_server.tokens()} == {"user-7"}


def test_jwt_bearer_grant_with_private_key_jwt_client_authentication(authlib_server: AuthlibServer) -> None:
    issuer = authlib_server.register_issuer("svc@example")
    client = authlib_server.register_client("app", "private_key_jwt", grants=["jwt_bearer"])
    source = JwtBearerTokenProvider(
        authlib_server.token_url,
        assertion=GrantAssertion("svc@example", issuer.key.private_pem, key_id=issuer.key.kid),
        client_id="app",
        auth_method="private_key_jwt",
        private_key=client.key.private_pem,
        key_id=client.key.kid,
        timeout=10.0,
    )
    assert api_status(authlib_server, source.fetch_token().access_token) == (200, "app")
    [entry] = authlib_server.issued("app", "jwt_bearer")
    assert entry["auth_method"] == "private_key_jwt" and entry["jti"] and entry["assertion_jti"] and entry["jti"] != entry["assertion_jti"]


def test_resource_and_audience_are_received(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("svc", "private_key_jwt")
    resources, audiences = ["https://a.example/api", "https://b.example/"], ["api-a", "api-b"]
    token = provider(authlib_server, client, resource=resources, audience=audiences).fetch_token()
    [entry] = authlib_server.issued("svc")
    assert (entry["resource"], entry["audience"]) == (resources, audiences)
    [record] = [t for t in authlib_server.tokens() if t["fingerprint"] == fingerprint(token.access_token)]
    assert (record["resource"], record["audience"]) == (resources, audiences)


# -- discovery -----------------------------------------------------------------------------------------------


def test_discovery_is_fetched_once_per_process(authlib_server: AuthlibServer) -> None:
    authlib_server.configure_metadata(issuer_path=f"/tenants/{uuid.uuid4().hex[:8]}")  # the path-aware location
    clients = [authlib_server.register_client(f"svc-{method}", method) for method in METHODS]
    for source in [provider(authlib_server, client, discover=True) for client in clients]:
        source.fetch_token()
        source.fetch_token()
    assert [(e["kind"], e["status"]) for e in authlib_server.metadata_fetches()] == [("oauth", 200)]
    assert authlib_server.metadata_fetches()[0]["path"].startswith("/.well-known/oauth-authorization-server/tenants/")
    assert len(authlib_server.issued()) == 8 and {e["host"] for e in authlib_server.issued()} == {f"127.0.0.1:{authlib_server.port}"}


def test_discovery_falls_back_to_openid(authlib_server: AuthlibServer) -> None:
    authlib_server.configure_metadata(documents=["openid"])
    client = authlib_server.register_client("svc", "client_secret_basic")
    provider(authlib_server, client, discover=True).fetch_token()
    provider(authlib_server, client, discover=True).fetch_token()
    assert [(e["kind"], e["status"]) for e in authlib_server.metadata_fetches()] == [("oauth", 404), ("openid", 200)]


@pytest.mark.parametrize("variant", ["wrong issuer", "token endpoint on another origin", "no document"])
def test_bad_metadata_is_refused_and_not_cached(authlib_server: AuthlibServer, variant: str) -> None:
    variants: dict[str, dict[str, Any]] = {
        "wrong issuer": {"issuer": "https://someone-else.example"},
        "token endpoint on another origin": {"token_endpoint": authlib_server.other_origin_token_url},
        "no document": {"documents": []},
    }
    authlib_server.configure_metadata(**variants[variant])
    client = authlib_server.register_client("svc", "private_key_jwt")
    source = provider(authlib_server, client, discover=True, discovery_cache=DiscoveryCache())
    for _ in range(2):
        with pytest.raises(DiscoveryException) as caught:
            source.fetch_token()
        assert isinstance(caught.value, AuthenticationException) and "svc" in (caught.value.service_name or "")
    assert authlib_server.token_requests() == []  # nothing sent anywhere, not even to the other origin
    fetched = len(authlib_server.metadata_fetches())
    assert fetched == 2 * (2 if variant == "no document" else 1)  # the failure was not cached: the second call asked again


# -- token exchange ------------------------------------------------------------------------------------------------


def exchange_pair(server: AuthlibServer, **options: Any) -> tuple[TokenManager, TokenManager]:
    """``front`` (client credentials) and ``back`` (exchanges front's token), each a TokenManager with its own cache."""
    front = server.register_client("front", "client_secret_basic")
    back = server.register_client("back", "private_key_jwt", grants=["token_exchange"])
    front_manager = TokenManager(provider(server, front))
    exchange = TokenExchangeTokenProvider(
        server.token_url,
        subject_token_source=front_manager,
        client_id="back",
        auth_method="private_key_jwt",
        private_key=back.key.private_pem,
        key_id=back.key.kid,
        timeout=10.0,
        **options,
    )
    return front_manager, TokenManager(exchange)


def test_token_exchange_shares_the_subject_tokens_cache(authlib_server: AuthlibServer) -> None:
    front, back = exchange_pair(authlib_server, audience="downstream", resource="https://down.example/")
    exchanged = back.get_token()
    subject = front.get_token()  # served from front's cache: the exchange fetched it there
    assert api_status(authlib_server, exchanged.access_token) == (200, "back")
    entries = [(e["client_id"], e["grant_type"].rsplit(":", 1)[-1], e["result"]) for e in authlib_server.token_requests()]
    assert entries == [("front", "client_credentials", "issued"), ("back", "token-exchange", "issued")]
    exchange = authlib_server.issued("back")[0]
    assert (exchange["subject_token"], exchange["subject_client"]) == (fingerprint(subject.access_token), "front")
    assert exchange["requested_token_type"] is None and exchange["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert (exchange["audience"], exchange["resource"]) == (["downstream"], ["https://down.example/"])


def test_a_rejected_subject_token_is_replaced_once_through_its_source(authlib_server: AuthlibServer) -> None:
    front, back = exchange_pair(authlib_server)
    back.get_token()
    authlib_server.revoke_tokens("front")
    back.invalidate_token()
    renewed = back.get_token()
    assert api_status(authlib_server, renewed.access_token) == (200, "back")
    sequence = [(e["client_id"], e["result"]) for e in authlib_server.token_requests()]
    assert sequence == [("front", "issued"), ("back", "issued"), ("back", "refused"), ("front", "issued"), ("back", "issued")]
    assert authlib_server.issued("back")[-1]["subject_token"] == fingerprint(front.get_token().access_token)


# -- bad input: a typed error, nothing cached, the next call tries again ----------------------------------------------


def _wrong_secret(server: AuthlibServer) -> TokenManager:
    server.register_client("svc", "client_secret_basic")
    return TokenManager(ClientCredentialsTokenProvider(server.token_url, "svc", "x" * 43, auth_method="client_secret_basic", timeout=10.0))


def _unknown_kid(server: AuthlibServer) -> TokenManager:
    client = server.register_client("svc", "private_key_jwt")
    return TokenManager(provider(server, client, key_id="not-registered"))


def _wrong_key(server: AuthlibServer) -> TokenManager:
    client = server.register_client("svc", "private_key_jwt")
    return TokenManager(provider(server, client, private_key=generate_rsa_key().private_pem))


def _method_refused(server: AuthlibServer) -> TokenManager:
    client = server.register_client("svc", "client_secret_basic")
    return TokenManager(
        ClientCredentialsTokenProvider(server.token_url, "svc", client.secret, auth_method="client_secret_post", timeout=10.0)
    )


def _expired_assertion(server: AuthlibServer) -> TokenManager:
    client = server.register_client("svc", "private_key_jwt")
    late = lambda: datetime.now(timezone.utc) - timedelta(minutes=15)  # noqa: E731 (a clock 15 min behind)
    return TokenManager(provider(server, client, clock=late))


def _unknown_issuer(server: AuthlibServer) -> TokenManager:
    key = generate_rsa_key("k")
    source = JwtBearerTokenProvider(server.token_url, assertion=GrantAssertion("svc", key.private_pem, key_id="k"), timeout=10.0)
    return TokenManager(source)


def _subject_rejected(server: AuthlibServer) -> TokenManager:
    back = server.register_client("svc", "client_secret_basic", grants=["token_exchange"])
    source = TokenExchangeTokenProvider(
        server.token_url,
        subject_token_source=lambda: "never-issued-by-this-server",
        subject_service_name="front",
        client_id="svc",
        client_secret=back.secret,
        auth_method="client_secret_basic",
        timeout=10.0,
    )
    return TokenManager(source)


BAD_INPUT = {
    "wrong secret": (_wrong_secret, "invalid_client"),
    "unknown kid": (_unknown_kid, "invalid_client"),
    "wrong key": (_wrong_key, "invalid_client"),
    "method refused": (_method_refused, "invalid_client"),
    "expired assertion": (_expired_assertion, "invalid_client"),
    "unknown issuer": (_unknown_issuer, "invalid_grant"),
    "subject token rejected": (_subject_rejected, "invalid_request"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_a_typed_error_nothing_cached_and_retried(authlib_server: AuthlibServer, case: str) -> None:
    build, error = BAD_INPUT[case]
    manager = build(authlib_server)
    for _ in range(2):
        with pytest.raises(AuthenticationException) as caught:
            manager.get_token()
        assert caught.value.error == error and "svc" in (caught.value.service_name or "")
        assert manager.peek_token() is None
    if case == "subject token rejected":
        assert isinstance(caught.value, TokenExchangeException) and caught.value.subject_service_name == "front"
    refused = authlib_server.refused()
    assert len(refused) == 2 and {e["error"] for e in refused} == {error}  # each call asked again; no weaker method tried
    assert authlib_server.issued() == []


# -- across processes -----------------------------------------------------------------------------------------------

PROCESSES, THREADS, CALLS = 4, 4, 5


@pytest.fixture
def authlib_pool(redis_server: str) -> Iterator[SpawnedPool]:
    """Four spawned Django processes on the session redis-server, lined up by a barrier."""
    with SpawnedPool(PROCESSES, init_authlib_worker, redis_server) as executor:
        yield executor


def client_spec(server: AuthlibServer, client: ServerClient, cache_key: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": "client_credentials",
        "issuer": server.issuer,
        "client_id": client.client_id,
        "auth_method": client.method,
    }
    if client.method == "private_key_jwt":
        spec.update(private_key=client.key.private_pem, key_id=client.key.kid)
    else:
        spec["client_secret"] = client.secret
    return spec | {"cache_key": cache_key}


@pytest.mark.slow
@pytest.mark.redis
def test_many_calls_in_4_processes_make_1_token_request(authlib_server: AuthlibServer, authlib_pool: SpawnedPool) -> None:
    authlib_server.configure(token_delay=0.3)  # a slow partner: every process asks while the first fetch is in flight
    client = authlib_server.register_client("svc", "private_key_jwt")
    spec = client_spec(authlib_server, client, f"authlib-{uuid.uuid4().hex[:8]}")
    results = authlib_pool.in_every_process(calls_task, spec, authlib_server.api_url, THREADS, CALLS, timeout=120)
    assert [r["errors"] for r in results] == [[]] * PROCESSES
    assert sum(r["statuses"].get(200, 0) for r in results) == PROCESSES * THREADS * CALLS
    assert len({t for r in results for t in r["tokens"]}) == 1
    assert len(authlib_server.token_requests()) == 1
    # Discovery is lazy and per process: only the process that fetched the token needed the endpoint.
    assert authlib_server.metadata_fetch_count() == 1


@pytest.mark.slow
@pytest.mark.redis
def test_token_exchange_in_4_processes_fetches_each_token_once(authlib_server: AuthlibServer, authlib_pool: SpawnedPool) -> None:
    authlib_server.configure(token_delay=0.3)
    front = authlib_server.register_client("front", "client_secret_basic")
    back = authlib_server.register_client("back", "client_secret_jwt", grants=["token_exchange"])
    run = uuid.uuid4().hex[:8]
    spec = client_spec(authlib_server, back, f"back-{run}") | {
        "kind": "token_exchange",
        "subject": client_spec(authlib_server, front, f"front-{run}"),
    }
    results = authlib_pool.in_every_process(calls_task, spec, authlib_server.api_url, THREADS, CALLS, timeout=120)
    assert [r["errors"] for r in results] == [[]] * PROCESSES
    assert sum(r["statuses"].get(200, 0) for r in results) == PROCESSES * THREADS * CALLS
    assert [(e["client_id"], e["result"]) for e in authlib_server.token_requests()] == [("front", "issued"), ("back", "issued")]
