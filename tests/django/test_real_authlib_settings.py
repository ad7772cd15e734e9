"""Settings- and admin-configured clients against a real authorization server the project did not write (Authlib).

The provider-level tests (``tests/tokens/test_real_authlib_grants.py``) build providers by
hand; these go through what a user writes: a ``REQUESTFORGE`` entry (or a client definition
with a credential in the database), ``get_client(name)`` and a call to the server's
protected API. What the server received is read from its ledger (fingerprints, claims,
``jti``). A canary private key is then looked for in DEBUG logs, reprs, exceptions,
command output and the token cache: never found.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import uuid
from collections.abc import Callable, Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.cache import caches
from django.core.management import call_command

from requestforge_django import aget_client, get_client, get_token_manager
from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.models import ClientDefinition, Credential
from requestforge_django.registry import registry
from requestforge_django.tokens.discovery import clear_discovery_cache
from tests.support.authlib_fixtures import authlib_client_setting
from tests.support.authlib_server import AuthlibServer, fingerprint, generate_ec_key, generate_rsa_key

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
API_PATH = "/api/whoami"

pytestmark = pytest.mark.django_db


@pytest.fixture
def configure(settings: Any) -> Iterator[Callable[..., None]]:
    def apply(clients: dict[str, Any]) -> None:
        settings.REQUESTFORGE = {**settings.REQUESTFORGE, "KEY_PREFIX": f"rf-{uuid.uuid4().hex[:8]}", "CLIENTS": clients}

    clear_discovery_cache()
    caches["default"].clear()
    yield apply
    clear_discovery_cache()


def whoami(name: str) -> dict[str, Any]:
    response = get_client(name).get(API_PATH)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def key_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def cached_bytes() -> bytes:
    """Everything the (LocMem) token cache holds, pickled as it is stored."""
    store = caches["default"]._cache  # type: ignore[attr-defined]  # LocMemCache's private dict
    return b"".join(value if isinstance(value, bytes) else pickle.dumps(value) for value in store.values())


# -- client assertions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_jwt", "private_key_jwt"])
def test_settings_client_with_a_signed_client_assertion(authlib_server: AuthlibServer, configure: Any, method: str) -> None:
    client = authlib_server.register_client("shop", method)
    configure({"shop": authlib_client_setting(authlib_server, client, RESOURCE=["https://orders.example/"], AUDIENCE="orders")})
    for _ in range(5):
        assert whoami("shop")["client_id"] == "shop"
    get_token_manager("shop").force_refresh()
    first, second = authlib_server.issued("shop")
    assert first["auth_method"] == method and "client_secret" not in first["params"]
    assert first["client_assertion"]["aud"] == authlib_server.token_url and first["client_assertion"]["lifetime"] <= 300
    assert first["jti"] != second["jti"]
    assert (first["resource"], first["audience"]) == (["https://orders.example/"], ["orders"])


def test_issuer_discovery_once_for_every_client_and_call(authlib_server: AuthlibServer, configure: Any) -> None:
    authlib_server.configure_metadata(issuer_path="/tenants/acme")
    a = authlib_server.register_client("a", "private_key_jwt")
    b = authlib_server.register_client("b", "client_secret_basic")
    configure(
        {"a": authlib_client_setting(authlib_server, a, discover=True), "b": authlib_client_setting(authlib_server, b, discover=True)}
    )
    for _ in range(3):
        whoami("a")
        whoami("b")
    assert [(e["kind"], e["status"]) for e in authlib_server.metadata_fetches()] == [("oauth", 200)]
    assert [e["client_id"] for e in authlib_server.issued()] == ["a", "b"]
    assert authlib_server.issued("a")[0]["client_assertion"]["aud"] == authlib_server.token_url  # the discovered endpoint


def test_metadata_naming_another_issuer_is_a_typed_error_and_nothing_is_sent(authlib_server: AuthlibServer, configure: Any) -> None:
    authlib_server.configure_metadata(token_endpoint=authlib_server.other_origin_token_url)
    client = authlib_server.register_client("shop", "private_key_jwt")
    configure({"shop": authlib_client_setting(authlib_server, client, discover=True)})
    for _ in range(2):  # not cached: the second call asks again
        with pytest.raises(AuthenticationException) as caught:
            get_client("shop").get(API_PATH)
        assert caught.value.service_name == "shop"
    assert authlib_server.token_requests() == [] and len(authlib_server.metadata_fetches()) == 2


def test_a_key_the_partner_does_not_know_is_refused_without_fallback(authlib_server: AuthlibServer, configure: Any) -> None:
    client = authlib_server.register_client("shop", "private_key_jwt")
    other = generate_rsa_key(client.key.kid)  # same kid, another key
    setting = authlib_client_setting(authlib_server, client, PRIVATE_KEY=other.private_pem)
    configure({"shop": setting})
    for _ in range(2):
        with pytest.raises(AuthenticationException) as caught:
            get_client("shop").get(API_PATH)
        assert caught.value.service_name == "shop"
    refused = authlib_server.refused("shop")
    assert len(refused) == 2 and {e["auth_method"] for e in refused} == {"private_key_jwt"}  # no weaker method tried
    assert get_token_manager("shop").peek_token() is None


# -- JWT-bearer ---------------------------------------------------------------------------------------------


def test_settings_jwt_bearer_client(authlib_server: AuthlibServer, configure: Any) -> None:
    grant_key = generate_ec_key("grant-1", curve="P-384")
    authlib_server.register_issuer("svc@example", grant_key, subjects=["user-7"])
    auth = {
        "TYPE": "jwt_bearer",
        "TOKEN_URL": authlib_server.token_url,
        "SCOPE": "read",
        "ASSERTION": {"ISSUER": "svc@example", "SUBJECT": "user-7", "PRIVATE_KEY": grant_key.private_pem, "KEY_ID": "grant-1"},
    }
    configure({"crm": {"BASE_URL": authlib_server.url, "TIMEOUT": 10, "AUTH": auth}})
    assert whoami("crm")["subject"] == "user-7"
    get_token_manager("crm").force_refresh()
    first, second = authlib_server.issued(grant_type="jwt_bearer")
    assert first["auth_method"] == "none" and first["assertion"]["alg"] == "ES384" and first["assertion"]["kid"] == "grant-1"
    assert first["assertion"]["aud"] == authlib_server.token_url and first["assertion_jti"] != second["assertion_jti"]


# -- token exchange ------------------------------------------------------------------------------------------


def exchange_setting(server: AuthlibServer) -> dict[str, Any]:
    front = server.register_client("front", "client_secret_basic")
    back = server.register_client("back", "private_key_jwt", grants=["token_exchange"])
    return {
        "front": authlib_client_setting(server, front),
        "back": authlib_client_setting(server, back, TYPE="token_exchange", SUBJECT_TOKEN_FROM="front", AUDIENCE="downstream"),
    }


def test_settings_token_exchange_shares_the_subject_clients_cache(authlib_server: AuthlibServer, configure: Any) -> None:
    configure(exchange_setting(authlib_server))
    whoami("front")  # front's token is cached first: the exchange must reuse it
    for _ in range(3):
        assert whoami("back")["client_id"] == "back"
    grants = [(e["client_id"], e["grant_type"].rsplit(":", 1)[-1]) for e in authlib_server.issued()]
    assert grants == [("front", "client_credentials"), ("back", "token-exchange")]
    exchange = authlib_server.issued("back")[0]
    assert exchange["subject_token"] == fingerprint(get_token_manager("front").get_token().access_token)
    assert exchange["subject_client"] == "front" and exchange["audience"] == ["downstream"]
    assert exchange["issued_token_type"] == ACCESS_TOKEN_TYPE and exchange["requested_token_type"] is None


def test_a_revoked_subject_token_is_replaced_through_the_subject_client(authlib_server: AuthlibServer, configure: Any) -> None:
    configure(exchange_setting(authlib_server))
    whoami("back")
    authlib_server.revoke_tokens("front")
    get_token_manager("back").invalidate_token()
    assert whoami("back")["client_id"] == "back"
    sequence = [(e["client_id"], e["result"]) for e in authlib_server.token_requests()]
    assert sequence == [("front", "issued"), ("back", "issued"), ("back", "refused"), ("front", "issued"), ("back", "issued")]


def test_aget_client_and_warm_up_serve_an_exchange(authlib_server: AuthlibServer, configure: Any) -> None:
    from requestforge_django.warming import warm

    configure(exchange_setting(authlib_server))
    assert [(r.name, r.status) for r in warm(["back"])] == [("back", "renewed")]

    async def call() -> int:
        client = await aget_client("back")
        return (await client.aget(API_PATH)).status_code

    assert asyncio.run(call()) == 200
    assert len(authlib_server.issued("back")) == 1 and len(authlib_server.issued("front")) == 1


# -- the admin's way: a definition and a credential holding the key ----------------------------------------------


def test_database_definition_with_the_credentials_private_key(authlib_server: AuthlibServer, configure: Any, caplog: Any) -> None:
    configure({})
    client = authlib_server.register_client("erp", "private_key_jwt")
    credential = Credential.objects.create(
        name="erp", client_id="erp", private_key=client.key.private_pem, key_id=client.key.kid, allowed_origins=[authlib_server.url]
    )
    ClientDefinition.objects.create(
        name="erp",
        base_url=authlib_server.url,
        auth_type="client_credentials",
        issuer=authlib_server.issuer,
        client_auth_method="private_key_jwt",
        credential=credential,
    )
    caplog.set_level(logging.DEBUG)
    assert whoami("erp")["client_id"] == "erp"
    [entry] = authlib_server.issued("erp")
    assert entry["auth_method"] == "private_key_jwt" and entry["client_assertion"]["kid"] == client.key.kid
    out = StringIO()
    call_command("requestforge_status", stdout=out)
    visible = [caplog.text, out.getvalue(), repr(get_client("erp")), repr(get_token_manager("erp")), repr(registry)]
    for line in key_lines(client.key.private_pem):
        assert all(line not in text for text in visible)
        assert line.encode() not in cached_bytes()


def test_the_canary_key_never_shows_in_logs_errors_reprs_or_the_cache(authlib_server: AuthlibServer, configure: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    client = authlib_server.register_client("shop", "private_key_jwt")
    configure({"shop": authlib_client_setting(authlib_server, client)})
    whoami("shop")
    authlib_server.register_client("shop", "private_key_jwt", keys=[generate_rsa_key("rotated")])  # the partner forgets our key
    with pytest.raises(AuthenticationException) as caught:
        get_token_manager("shop").force_refresh()
    texts = [caplog.text, str(caught.value), repr(caught.value), repr(get_client("shop").config), repr(get_token_manager("shop"))]
    for line in key_lines(client.key.private_pem):
        assert all(line not in text for text in texts)
        assert line.encode() not in cached_bytes()
