"""Issue 17, the registry: clients configured with client assertions, JWT-bearer, token exchange and ISSUER discovery.

Token endpoints and APIs are faked with ``responses`` (the same settings against a real
Authlib authorization server are in the Authlib helper's tests); each test asserts what
reached the wire: the form, the signed JWT's claims (verified with the public key), the
token on the API call. The canary private key never appears in a repr, a log line or an
exception.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from requestforge_django import aget_client, get_client, get_token_manager
from requestforge_django.http.exceptions import AuthenticationException, ConfigurationError
from requestforge_django.models import ClientDefinition, Credential
from requestforge_django.registry import UnboundSubjectError, bump_generation, registry
from requestforge_django.signals import token_invalidated
from requestforge_django.status import token_statuses
from requestforge_django.tokens.discovery import clear_discovery_cache
from requestforge_django.warming import warm

ISSUER = "https://auth.example.com"
TOKEN_URL = f"{ISSUER}/oauth/token"
API = "https://api.example.com"
SECRET = "cs-CANARY-4c1e0d9b7a"
HS_SECRET = "hs-CANARY-" + "x" * 40
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_EC = ec.generate_private_key(ec.SECP256R1())
RSA_PEM = _RSA.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
EC_PEM = _EC.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()).decode()
#: Lines of the keys' base64 bodies: if any part of a key showed anywhere, one of these would.
KEY_LINES = (RSA_PEM.splitlines()[1], EC_PEM.splitlines()[1])

pytestmark = pytest.mark.django_db


@pytest.fixture
def configure(settings: Any) -> Callable[..., None]:
    def apply(clients: dict[str, Any], **top: Any) -> None:
        settings.REQUESTFORGE = {**settings.REQUESTFORGE, "KEY_PREFIX": f"rf-{uuid.uuid4().hex[:8]}", "CLIENTS": clients, **top}

    clear_discovery_cache()
    yield apply
    clear_discovery_cache()


def api_client(auth: dict[str, Any]) -> dict[str, Any]:
    return {"BASE_URL": API, "AUTH": auth}


def answer(token: str, url: str = TOKEN_URL, **extra: Any) -> None:
    responses.post(url, json={"access_token": token, "token_type": "Bearer", "expires_in": 3600, **extra})


def form_of(request: Any) -> dict[str, list[str]]:
    return parse_qs(request.body if isinstance(request.body, str) else request.body.decode())


def forms(url: str = TOKEN_URL) -> list[dict[str, list[str]]]:
    return [form_of(call.request) for call in calls(url)]


def calls(url: str) -> list[Any]:
    return [call for call in responses.calls if call.request.url == url]


def api_tokens() -> list[str]:
    return [call.request.headers.get("Authorization", "") for call in responses.calls if call.request.url.startswith(API)]


def claims_of(assertion: str, key: Any, audience: str = TOKEN_URL) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(assertion, key.public_key(), algorithms=["RS256", "ES256", "PS256"], audience=audience)
    return decoded


def assert_no_key(*texts: str) -> None:
    for text in texts:
        for line in (*KEY_LINES, SECRET, HS_SECRET):
            assert line not in text


# -- client assertions ------------------------------------------------------------------------------


@responses.activate
def test_private_key_jwt_signs_a_fresh_assertion_per_token_request(configure: Callable[..., None]) -> None:
    configure(
        {
            "shop": api_client(
                {
                    "TYPE": "client_credentials",
                    "TOKEN_URL": TOKEN_URL,
                    "CLIENT_ID": "shop",
                    "CLIENT_AUTH_METHOD": "private_key_jwt",
                    "PRIVATE_KEY": RSA_PEM,
                    "KEY_ID": "k1",
                    "AUDIENCE": "orders-api",
                    "RESOURCE": [API, f"{API}/v2"],
                }
            )
        }
    )
    answer("tok-1")
    answer("tok-2")
    responses.get(f"{API}/orders", json={})
    client = get_client("shop")
    client.get("/orders")
    get_token_manager("shop").force_refresh()
    first, second = forms()
    for form in (first, second):
        assert form["grant_type"] == ["client_credentials"] and form["client_id"] == ["shop"]
        assert form["client_assertion_type"] == [ASSERTION_TYPE] and "client_secret" not in form
        assert form["audience"] == ["orders-api"] and form["resource"] == [API, f"{API}/v2"]
    a, b = (claims_of(form["client_assertion"][0], _RSA) for form in (first, second))
    assert (a["iss"], a["sub"], a["aud"]) == ("shop", "shop", TOKEN_URL)
    assert 0 < a["exp"] - a["iat"] <= 300 and a["jti"] != b["jti"]
    assert jwt.get_unverified_header(first["client_assertion"][0])["kid"] == "k1"
    assert api_tokens() == ["Bearer tok-1"]
    assert_no_key(repr(client), repr(client.config), repr(get_token_manager("shop")), repr(registry))


@responses.activate
def test_client_secret_jwt_signs_with_the_secret(configure: Callable[..., None]) -> None:
    auth = {"TYPE": "client_credentials", "TOKEN_URL": TOKEN_URL, "CLIENT_ID": "shop", "CLIENT_SECRET": HS_SECRET}
    configure({"shop": api_client({**auth, "CLIENT_AUTH_METHOD": "client_secret_jwt", "ALGORITHM": "HS384"})})
    answer("tok-1")
    get_token_manager("shop").get_token()
    [form] = forms()
    assertion = form["client_assertion"][0]
    assert jwt.get_unverified_header(assertion)["alg"] == "HS384" and "client_secret" not in form
    assert jwt.decode(assertion, HS_SECRET, algorithms=["HS384"], audience=TOKEN_URL)["iss"] == "shop"


# -- ISSUER discovery -----------------------------------------------------------------------------------


@responses.activate
def test_issuer_is_discovered_once_per_process(configure: Callable[..., None]) -> None:
    metadata = {"issuer": ISSUER, "token_endpoint": TOKEN_URL}
    discovery = responses.get(f"{ISSUER}/.well-known/oauth-authorization-server", json=metadata)
    auth = {"TYPE": "client_credentials", "ISSUER": ISSUER, "CLIENT_ID": "shop", "CLIENT_SECRET": SECRET}
    configure({"a": api_client(auth), "b": api_client(auth)})
    for token in ("tok-a", "tok-b", "tok-a2"):
        answer(token)
    get_token_manager("a").get_token()
    get_token_manager("b").get_token()
    get_token_manager("a").force_refresh()
    assert discovery.call_count == 1 and len(calls(TOKEN_URL)) == 3


@responses.activate
def test_metadata_of_another_issuer_is_a_typed_error_and_nothing_is_cached(configure: Callable[..., None]) -> None:
    responses.get(f"{ISSUER}/.well-known/oauth-authorization-server", json={"issuer": "https://evil.example", "token_endpoint": TOKEN_URL})
    responses.get(f"{ISSUER}/.well-known/openid-configuration", json={"issuer": "https://evil.example", "token_endpoint": TOKEN_URL})
    configure({"shop": api_client({"TYPE": "client_credentials", "ISSUER": ISSUER, "CLIENT_ID": "shop", "CLIENT_SECRET": SECRET})})
    with pytest.raises(AuthenticationException) as caught:
        get_token_manager("shop").get_token()
    assert caught.value.service_name == "shop" and calls(TOKEN_URL) == []
    assert get_token_manager("shop").peek_token() is None
    assert_no_key(str(caught.value), repr(caught.value))


# -- JWT-bearer grant ----------------------------------------------------------------------------------


@responses.activate
def test_jwt_bearer_sends_the_signed_grant(configure: Callable[..., None]) -> None:
    assertion = {"ISSUER": "svc@example", "SUBJECT": "user-7", "PRIVATE_KEY": EC_PEM, "KEY_ID": "ec-1", "LIFETIME": 120}
    configure(
        {
            "crm": api_client(
                {"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL, "SCOPE": "read", "ASSERTION": {**assertion, "CLAIMS": {"tid": "t1"}}}
            )
        }
    )
    answer("grant-1")
    responses.get(f"{API}/leads", json=[])
    get_client("crm").get("/leads")
    [form] = forms()
    assert form["grant_type"] == [JWT_BEARER] and form["scope"] == ["read"] and "client_id" not in form
    claims = claims_of(form["assertion"][0], _EC)
    assert (claims["iss"], claims["sub"], claims["aud"], claims["tid"]) == ("svc@example", "user-7", TOKEN_URL, "t1")
    assert claims["exp"] - claims["iat"] == 120
    assert api_tokens() == ["Bearer grant-1"]


# -- token exchange ------------------------------------------------------------------------------------


def exchange_setting() -> dict[str, Any]:
    return {
        "upstream": api_client({"TYPE": "client_credentials", "TOKEN_URL": TOKEN_URL, "CLIENT_ID": "up", "CLIENT_SECRET": SECRET}),
        "downstream": {
            "BASE_URL": API,
            "AUTH": {
                "TYPE": "token_exchange",
                "TOKEN_URL": TOKEN_URL,
                "CLIENT_ID": "down",
                "CLIENT_SECRET": SECRET,
                "SUBJECT_TOKEN_FROM": "upstream",
                "AUDIENCE": "orders",
            },
        },
    }


@responses.activate
def test_token_exchange_uses_the_subject_clients_cached_token(configure: Callable[..., None]) -> None:
    configure(exchange_setting())
    answer("subject-1")
    answer("exchanged-1", issued_token_type=ACCESS)
    responses.get(f"{API}/orders", json={})
    get_token_manager("upstream").get_token()  # cached: the exchange must reuse it
    get_client("downstream").get("/orders")
    upstream, exchange = forms()
    assert upstream["grant_type"] == ["client_credentials"]
    assert exchange["grant_type"] == [EXCHANGE] and exchange["subject_token"] == ["subject-1"]
    assert exchange["subject_token_type"] == [ACCESS] and exchange["audience"] == ["orders"]
    assert "requested_token_type" not in exchange
    assert api_tokens() == ["Bearer exchanged-1"]


@responses.activate
def test_a_rejected_subject_token_is_replaced_once_then_a_typed_error_naming_both(configure: Callable[..., None]) -> None:
    configure(exchange_setting())
    rejected = {"error": "invalid_grant", "error_description": "subject token revoked"}
    answer("subject-1")
    responses.post(TOKEN_URL, json=rejected, status=400)
    answer("subject-2")
    responses.post(TOKEN_URL, json=rejected, status=400)
    with pytest.raises(AuthenticationException) as caught:
        get_token_manager("downstream").get_token()
    assert [form["grant_type"][0] for form in forms()] == ["client_credentials", EXCHANGE, "client_credentials", EXCHANGE]
    assert caught.value.service_name == "downstream" and "upstream" in str(caught.value)
    assert get_token_manager("downstream").peek_token() is None


@responses.activate
def test_async_client_and_warm_up_serve_the_new_types(configure: Callable[..., None]) -> None:
    configure(exchange_setting())
    answer("subject-1")
    answer("exchanged-1", issued_token_type=ACCESS)
    responses.get(f"{API}/orders", json={})

    async def call() -> int:
        client = await aget_client("downstream")
        return client.get("/orders").status_code

    assert asyncio.run(call()) == 200
    results = {result.name: result.status for result in warm(["upstream", "downstream"])}
    assert results == {"upstream": "fresh", "downstream": "fresh"}
    rows = {row.name: row for row in token_statuses(["upstream", "downstream"])}
    assert rows["downstream"].cached and rows["downstream"].auth == "token_exchange" and rows["upstream"].cached


# -- database definitions ------------------------------------------------------------------------------


def test_database_private_key_jwt_takes_the_key_from_the_credential(configure: Callable[..., None], caplog: Any) -> None:
    configure({})
    credential = Credential.objects.create(
        name="erp", client_id="erp-app", private_key=RSA_PEM, key_id="db-1", allowed_origins=[ISSUER, API]
    )
    ClientDefinition.objects.create(
        name="erp",
        base_url=API,
        auth_type="client_credentials",
        token_url=TOKEN_URL,
        credential=credential,
        client_auth_method="private_key_jwt",
    )
    caplog.set_level(logging.DEBUG, logger="requestforge_django")
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json={"access_token": "db-tok", "token_type": "Bearer", "expires_in": 3600})
        assert get_token_manager("erp").get_token().access_token == "db-tok"
        form = form_of(mock.calls[0].request)
    claims = claims_of(form["client_assertion"][0], _RSA)
    assert claims["iss"] == "erp-app" and jwt.get_unverified_header(form["client_assertion"][0])["kid"] == "db-1"
    assert_no_key(caplog.text, repr(get_token_manager("erp")))


def test_database_jwt_bearer_signs_with_the_credentials_key(configure: Callable[..., None]) -> None:
    configure({})
    credential = Credential.objects.create(name="svc", client_id="svc@example", private_key=EC_PEM, allowed_origins=[ISSUER, API])
    ClientDefinition.objects.create(
        name="svc", base_url=API, auth_type="jwt_bearer", token_url=TOKEN_URL, credential=credential, assertion={"SUBJECT": "u1"}
    )
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json={"access_token": "jb", "token_type": "Bearer", "expires_in": 3600})
        get_token_manager("svc").get_token()
        form = form_of(mock.calls[0].request)
    claims = claims_of(form["assertion"][0], _EC)
    assert (claims["iss"], claims["sub"]) == ("svc@example", "u1")


def test_database_exchange_may_not_send_a_settings_clients_token_to_another_origin(configure: Callable[..., None]) -> None:
    configure({"upstream": exchange_setting()["upstream"]})
    credential = Credential.objects.create(name="ex", client_id="ex", client_secret=SECRET, allowed_origins=["https://evil.example", API])
    ClientDefinition.objects.create(
        name="ex",
        base_url=API,
        auth_type="token_exchange",
        token_url="https://evil.example/token",
        credential=credential,
        subject_token_from="upstream",
    )
    with responses.RequestsMock(), pytest.raises(UnboundSubjectError) as caught:  # an unexpected request would fail the test
        get_token_manager("ex")
    assert "https://evil.example" in str(caught.value) and '"upstream"' in str(caught.value)
    assert isinstance(caught.value, ConfigurationError)


def test_database_exchanges_in_a_cycle_are_refused_when_built(configure: Callable[..., None]) -> None:
    """The admin form refuses the cycle (E053); rows changed around it are refused by the registry, nothing sent."""
    configure({})
    credential = Credential.objects.create(name="ex", client_id="ex", client_secret=SECRET, allowed_origins=[ISSUER, API])
    for name, subject in (("a", "b"), ("b", "a")):
        ClientDefinition.objects.create(
            name=name, base_url=API, auth_type="token_exchange", token_url=TOKEN_URL, credential=credential, subject_token_from=subject
        )
    with responses.RequestsMock(), pytest.raises(ConfigurationError) as caught:
        get_client("a")
    assert "requestforge.E053" in str(caught.value) and "a -> b -> a" in str(caught.value)


# -- changes: receivers and the registry --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # real commits: the receivers run when a save commits
def test_saving_a_credential_drops_the_tokens_of_the_new_types_by_name(configure: Callable[..., None]) -> None:
    configure({})
    credential = Credential.objects.create(
        name="svc", client_id="svc@example", client_secret=SECRET, private_key=EC_PEM, allowed_origins=[ISSUER, API]
    )
    common = {"base_url": API, "token_url": TOKEN_URL, "credential": credential}
    ClientDefinition.objects.create(name="grant", auth_type="jwt_bearer", **common)
    ClientDefinition.objects.create(name="signed", auth_type="client_credentials", client_auth_method="private_key_jwt", **common)
    ClientDefinition.objects.create(name="plain", auth_type="client_credentials", **common)
    dropped: list[tuple[str, str]] = []

    def record(sender: Any, name: str, reason: str, **kwargs: Any) -> None:
        dropped.append((name, reason))

    with responses.RequestsMock() as mock:
        for token in ("t1", "t2", "t3"):
            mock.post(TOKEN_URL, json={"access_token": token, "token_type": "Bearer", "expires_in": 3600})
        for name in ("grant", "signed", "plain"):
            get_token_manager(name).get_token()
    token_invalidated.connect(record)
    try:
        credential.key_id = "rotated"
        credential.save()
    finally:
        token_invalidated.disconnect(record)
    assert sorted(dropped) == [("grant", "credential_changed"), ("plain", "credential_changed"), ("signed", "credential_changed")]


def test_a_changed_subject_makes_the_registry_rebuild_the_exchange_client(configure: Callable[..., None]) -> None:
    configure(exchange_setting())
    before = get_token_manager("downstream")
    bump_generation(clients=["upstream"])
    assert get_token_manager("downstream") is not before  # it held the old source of its subject token
    kept = get_token_manager("downstream")
    bump_generation(clients=["unrelated"])
    assert get_token_manager("downstream") is kept
