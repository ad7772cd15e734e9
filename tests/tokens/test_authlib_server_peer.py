"""The Authlib test peer itself: each method and grant works, and each refusal happens, driven by hand with ``requests``.

Before the library is tested against ``authlib_server`` (``test_real_authlib_grants.py``),
these prove the peer is a faithful partner: a request built by hand per RFC 6749 / 7523 /
8693 gets a token, and each kind of bad request gets the error a real server gives. The
assertions are signed here with joserfc, independently of the library's own signing code.
No assertion message shows a secret, a token or an assertion: failures report the status
and the error code only.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
import requests
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata

from tests.support.authlib_server import (
    GRANTS,
    AuthlibServer,
    ServerClient,
    SigningKey,
    assertion_claims,
    client_assertion_form,
    fingerprint,
    generate_ec_key,
    generate_rsa_key,
    sign_assertion,
)

JWT_BEARER, TOKEN_EXCHANGE = GRANTS["jwt_bearer"], GRANTS["token_exchange"]
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def post(server: AuthlibServer, data: dict[str, Any], auth: tuple[str, str] | None = None) -> requests.Response:
    return requests.post(server.token_url, data=data, auth=auth, timeout=10)


def outcome(response: requests.Response) -> tuple[int, str | None]:
    """Status and error code only: what a failing assertion may print (never the token)."""
    body = response.json()
    return response.status_code, body.get("error") if "access_token" not in body else "issued"


ISSUED = (200, "issued")


def cc(server: AuthlibServer, form: dict[str, str] | None = None, *, auth: tuple[str, str] | None = None) -> tuple[int, str | None]:
    """The outcome of a ``client_credentials`` request with ``form`` added."""
    return outcome(post(server, {"grant_type": "client_credentials", **(form or {})}, auth=auth))


def client_assertion(server: AuthlibServer, client: ServerClient, **claims: Any) -> dict[str, str]:
    """``client_assertion`` parameters for ``client``: its key (private_key_jwt) or its secret (client_secret_jwt)."""
    key: SigningKey | str = claims.pop("key", None) or (client.key if client.method == "private_key_jwt" else client.secret or "")
    kid = claims.pop("kid", None)
    alg = claims.pop("alg", None)
    body = assertion_claims(client.client_id, claims.pop("aud", server.token_url), **claims)
    return client_assertion_form(sign_assertion(key, body, alg=alg, kid=kid))


# -- client authentication methods (client_credentials) ---------------------------------------------


def test_server_runs_in_its_own_process_and_stops(authlib_server: AuthlibServer) -> None:
    assert authlib_server.pid != os.getpid()
    assert requests.get(authlib_server.url + "/_control/health/", timeout=10).json()["ok"] is True
    authlib_server.stop()
    assert authlib_server.running is False


def test_client_secret_basic(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("basic", "client_secret_basic")
    response = post(authlib_server, {"grant_type": "client_credentials", "scope": "read"}, auth=(client.client_id, client.secret or ""))
    assert outcome(response) == ISSUED
    assert response.json()["token_type"] == "Bearer" and response.json()["expires_in"] == 3600
    [entry] = authlib_server.token_requests()
    assert entry["auth_method"] == "client_secret_basic" and entry["client_id"] == "basic" and entry["result"] == "issued"
    assert entry["secret"] == fingerprint(client.secret or "") and entry["token"] == fingerprint(response.json()["access_token"])
    assert entry["params"] == ["grant_type", "scope"]  # the secret travelled in the header only


def test_client_secret_post(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("post", "client_secret_post")
    data = {"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": client.secret}
    assert outcome(post(authlib_server, data)) == ISSUED
    assert [e["auth_method"] for e in authlib_server.issued("post")] == ["client_secret_post"]


def test_client_secret_jwt(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("hs", "client_secret_jwt")
    form = client_assertion(authlib_server, client)
    assert cc(authlib_server, form) == ISSUED
    [entry] = authlib_server.token_requests()
    assert entry["auth_method"] == "client_secret_jwt" and entry["client_id"] == "hs"
    assert entry["client_assertion"]["alg"] == "HS256" and entry["client_assertion"]["aud"] == authlib_server.token_url
    assert entry["jti"] and entry["client_assertion"]["lifetime"] == 300


KEY_MAKERS = [generate_rsa_key, generate_ec_key, lambda kid: generate_ec_key(kid, curve="P-384")]


@pytest.mark.parametrize("make_key", KEY_MAKERS, ids=["RS256", "ES256", "ES384"])
def test_private_key_jwt(authlib_server: AuthlibServer, make_key: Any) -> None:
    key = make_key("k1")
    client = authlib_server.register_client("pk", "private_key_jwt", keys=[key])
    assert cc(authlib_server, client_assertion(authlib_server, client)) == ISSUED
    [entry] = authlib_server.issued("pk")
    assert entry["auth_method"] == "private_key_jwt"
    assert (entry["client_assertion"]["alg"], entry["client_assertion"]["kid"]) == (key.alg, "k1")


def test_private_key_jwt_with_a_registered_public_pem(authlib_server: AuthlibServer) -> None:
    key = generate_rsa_key("pem-1")
    authlib_server.register_client("pem", "private_key_jwt", public_key_pem=key.public_pem, kid="pem-1")
    form = client_assertion_form(sign_assertion(key, assertion_claims("pem", authlib_server.token_url)))
    assert cc(authlib_server, form) == ISSUED


def test_each_assertion_request_records_its_own_jti(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("pk", "private_key_jwt")
    for _ in range(3):
        assert cc(authlib_server, client_assertion(authlib_server, client)) == ISSUED
    assert len({e["jti"] for e in authlib_server.issued("pk")}) == 3


# -- refusals of client authentication ----------------------------------------------------------------


def test_wrong_secret_is_refused(authlib_server: AuthlibServer) -> None:
    authlib_server.register_client("basic", "client_secret_basic")
    authlib_server.register_client("post", "client_secret_post")
    assert outcome(post(authlib_server, {"grant_type": "client_credentials"}, auth=("basic", "not-the-secret"))) == (401, "invalid_client")
    data = {"grant_type": "client_credentials", "client_id": "post", "client_secret": "not-the-secret"}
    assert outcome(post(authlib_server, data)) == (401, "invalid_client")  # Authlib answers 401 whenever Basic is an accepted method
    entries = authlib_server.refused()
    assert [(e["client_id"], e["error"]) for e in entries] == [("basic", "invalid_client"), ("post", "invalid_client")]
    assert {e["secret"] for e in entries} == {fingerprint("not-the-secret")}


def test_wrong_client_secret_jwt_secret_is_refused(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("hs", "client_secret_jwt")
    form = client_assertion(authlib_server, client, key="x" * 43)
    assert cc(authlib_server, form) == (400, "invalid_client")


def test_unknown_kid_is_refused(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("pk", "private_key_jwt")
    other = generate_rsa_key("not-registered")
    form = client_assertion(authlib_server, client, key=other)
    assert cc(authlib_server, form) == (400, "invalid_client")
    [entry] = authlib_server.refused("pk")
    assert entry["client_assertion"]["kid"] == "not-registered" and "kid" in entry["error_description"]


def test_wrong_key_with_the_registered_kid_is_refused(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("pk", "private_key_jwt")
    impostor = generate_rsa_key(client.key.kid)
    form = client_assertion(authlib_server, client, key=impostor)
    assert cc(authlib_server, form) == (400, "invalid_client")
    assert authlib_server.refused("pk")[0]["error_description"] == "BadSignatureError"


def test_replayed_jti_is_refused(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("pk", "private_key_jwt")
    form = client_assertion(authlib_server, client)
    assert cc(authlib_server, form) == ISSUED
    assert cc(authlib_server, form) == (400, "invalid_client")
    first, second = authlib_server.token_requests("pk")
    assert first["jti"] == second["jti"] and second["error_description"] == "JWT ID is used before."


def test_expired_assertion_is_refused(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("pk", "private_key_jwt")
    form = client_assertion(authlib_server, client, issued_at=time.time() - 900)  # exp 10 min ago, beyond the 60 s leeway
    assert cc(authlib_server, form) == (400, "invalid_client")
    assert "expired" in authlib_server.refused("pk")[0]["error_description"]


def test_assertion_lifetime_over_300_s_is_refused_unless_allowed(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("pk", "private_key_jwt")
    form = client_assertion(authlib_server, client, lifetime=301)
    assert cc(authlib_server, form) == (400, "invalid_client")
    assert authlib_server.refused("pk")[0]["client_assertion"]["lifetime"] == 301
    authlib_server.configure(max_assertion_lifetime=3600)
    form = client_assertion(authlib_server, client, lifetime=301)
    assert cc(authlib_server, form) == ISSUED


def test_assertion_audience_must_be_the_token_endpoint(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("pk", "private_key_jwt")
    form = client_assertion(authlib_server, client, aud=authlib_server.issuer)
    assert cc(authlib_server, form) == (400, "invalid_client")
    authlib_server.configure(accept_issuer_audience=True)
    form = client_assertion(authlib_server, client, aud=authlib_server.issuer)
    assert cc(authlib_server, form) == ISSUED


def test_algorithm_outside_the_configured_list_is_refused(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("pk", "private_key_jwt", keys=[generate_ec_key("k", curve="P-384")])
    authlib_server.configure(algorithms=["HS256", "RS256", "ES256"])  # what Authlib accepts on its own
    form = client_assertion(authlib_server, client)
    assert cc(authlib_server, form) == (400, "invalid_client")


@pytest.mark.parametrize(
    ("registered", "used"),
    [
        ("client_secret_basic", "client_secret_post"),
        ("client_secret_post", "client_secret_basic"),
        ("client_secret_basic", "client_secret_jwt"),
    ],
)
def test_method_not_allowed_for_the_client_is_refused(authlib_server: AuthlibServer, registered: str, used: str) -> None:
    client = authlib_server.register_client("c", registered)
    secret = client.secret or ""
    auth, data = None, {"grant_type": "client_credentials"}
    if used == "client_secret_basic":
        auth = ("c", secret)
    elif used == "client_secret_post":
        data.update(client_id="c", client_secret=secret)
    else:
        data.update(client_assertion_form(sign_assertion(secret, assertion_claims("c", authlib_server.token_url))))
    assert outcome(post(authlib_server, data, auth=auth))[1] == "invalid_client"
    assert [e["auth_method"] for e in authlib_server.refused("c")] == [used]


def test_grant_not_allowed_for_the_client_is_refused(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("cc", grants=["client_credentials"])
    data = {"grant_type": TOKEN_EXCHANGE, "subject_token": "x", "subject_token_type": ACCESS_TOKEN_TYPE}
    assert outcome(post(authlib_server, data, auth=("cc", client.secret or ""))) == (400, "unauthorized_client")


# -- resource and audience ------------------------------------------------------------------------------


def test_resource_and_audience_are_recorded_on_the_token(authlib_server: AuthlibServer) -> None:
    client = authlib_server.register_client("c")
    data = {"grant_type": "client_credentials", "resource": ["https://a.example/api", "https://b.example/"], "audience": ["api-a"]}
    response = post(authlib_server, data, auth=("c", client.secret or ""))
    assert outcome(response) == ISSUED
    [entry] = authlib_server.issued("c")
    assert (entry["resource"], entry["audience"]) == (["https://a.example/api", "https://b.example/"], ["api-a"])
    who = requests.get(authlib_server.api_url, headers={"Authorization": "Bearer " + response.json()["access_token"]}, timeout=10)
    assert who.status_code == 200 and who.json()["resource"] == ["https://a.example/api", "https://b.example/"]


@pytest.mark.parametrize("data", [{"resource": "https://a.example/#frag"}, {"resource": "relative/path"}, {"audience": "refused-api"}])
def test_unacceptable_target_is_refused(authlib_server: AuthlibServer, data: dict[str, str]) -> None:
    client = authlib_server.register_client("c")
    authlib_server.configure(invalid_targets=["refused-api"])
    assert cc(authlib_server, data, auth=("c", client.secret or "")) == (400, "invalid_target")


# -- JWT-bearer grant (RFC 7523 section 2.1) ------------------------------------------------------------------


def bearer_grant(server: AuthlibServer, key: Any, issuer: str = "svc@example", **claims: Any) -> dict[str, str]:
    body = assertion_claims(issuer, claims.pop("aud", server.token_url), **claims)
    return {"grant_type": JWT_BEARER, "assertion": sign_assertion(key, body)}


def test_jwt_bearer_grant(authlib_server: AuthlibServer) -> None:
    issuer = authlib_server.register_issuer("svc@example", generate_ec_key("iss-1"))
    response = post(authlib_server, {**bearer_grant(authlib_server, issuer.key, subject="user-7"), "scope": "read"})
    assert outcome(response) == ISSUED
    [entry] = authlib_server.issued(grant_type="jwt_bearer")
    assert entry["client_id"] == "svc@example" and entry["auth_method"] == "none"
    assert entry["assertion"]["sub"] == "user-7" and entry["assertion_jti"]
    [token] = authlib_server.tokens()
    assert (token["client_id"], token["subject"], token["grant_type"]) == ("svc@example", "user-7", JWT_BEARER)


def test_jwt_bearer_grant_with_client_authentication(authlib_server: AuthlibServer) -> None:
    issuer = authlib_server.register_issuer("svc@example")
    client = authlib_server.register_client("app", "client_secret_basic", grants=["jwt_bearer"])
    assert outcome(post(authlib_server, bearer_grant(authlib_server, issuer.key), auth=("app", client.secret or ""))) == ISSUED
    [entry] = authlib_server.issued(grant_type="jwt_bearer")
    assert (entry["client_id"], entry["auth_method"]) == ("app", "client_secret_basic")
    assert authlib_server.tokens()[0]["client_id"] == "app"


def test_jwt_bearer_refusals(authlib_server: AuthlibServer) -> None:
    issuer = authlib_server.register_issuer("svc@example", subjects=["allowed"])
    replayed = bearer_grant(authlib_server, issuer.key, subject="allowed")
    assert outcome(post(authlib_server, replayed)) == ISSUED
    cases = {
        "replayed jti": replayed,
        "unknown issuer": bearer_grant(authlib_server, issuer.key, issuer="stranger@example", subject="allowed"),
        "wrong key": bearer_grant(authlib_server, generate_rsa_key(issuer.key.kid), subject="allowed"),
        "expired": bearer_grant(authlib_server, issuer.key, subject="allowed", issued_at=time.time() - 900),
        "too long": bearer_grant(authlib_server, issuer.key, subject="allowed", lifetime=301),
        "other audience": bearer_grant(authlib_server, issuer.key, subject="allowed", aud="https://elsewhere.example/token"),
        "subject not allowed": bearer_grant(authlib_server, issuer.key, subject="intruder"),
    }
    results = {name: outcome(post(authlib_server, data)) for name, data in cases.items()}
    assert results == dict.fromkeys(cases, (400, "invalid_grant"))
    reasons = ["used before", "not trusted", "BadSignature", "expired", "exceeds 300", "'aud'", "'sub'"]  # each refused for its own reason
    refused = authlib_server.refused(grant_type="jwt_bearer")
    assert [reason in entry["error_description"] for reason, entry in zip(reasons, refused, strict=True)] == [True] * len(cases)


# -- token exchange (RFC 8693) ----------------------------------------------------------------------------------


def subject_token(server: AuthlibServer, client_id: str = "front") -> str:
    client = server.register_client(client_id)
    response = post(server, {"grant_type": "client_credentials"}, auth=(client_id, client.secret or ""))
    return str(response.json()["access_token"])


def exchange(server: AuthlibServer, client: ServerClient, token: str, **extra: Any) -> requests.Response:
    data = {"grant_type": TOKEN_EXCHANGE, "subject_token": token, "subject_token_type": ACCESS_TOKEN_TYPE, **extra}
    return post(server, data, auth=(client.client_id, client.secret or ""))


def test_token_exchange(authlib_server: AuthlibServer) -> None:
    token = subject_token(authlib_server)
    client = authlib_server.register_client("back", grants=["token_exchange"])
    response = exchange(authlib_server, client, token, audience="downstream", resource="https://down.example/")
    assert outcome(response) == ISSUED
    assert response.json()["issued_token_type"] == ACCESS_TOKEN_TYPE
    [entry] = authlib_server.issued("back", "token_exchange")
    assert entry["subject_token"] == fingerprint(token) and entry["subject_client"] == "front"
    assert (entry["audience"], entry["resource"]) == (["downstream"], ["https://down.example/"])
    exchanged = next(t for t in authlib_server.tokens() if t["client_id"] == "back")
    assert (exchanged["exchanged_from"], exchanged["exchanged_from_client"]) == (fingerprint(token), "front")


def test_token_exchange_with_a_private_key_jwt_client(authlib_server: AuthlibServer) -> None:
    token = subject_token(authlib_server)
    client = authlib_server.register_client("back", "private_key_jwt", grants=["token_exchange"])
    data = {"grant_type": TOKEN_EXCHANGE, "subject_token": token, "subject_token_type": ACCESS_TOKEN_TYPE}
    assert outcome(post(authlib_server, {**data, **client_assertion(authlib_server, client)})) == ISSUED


def test_subject_token_rejected(authlib_server: AuthlibServer) -> None:
    token = subject_token(authlib_server)
    client = authlib_server.register_client("back", grants=["token_exchange"])
    assert outcome(exchange(authlib_server, client, "never-issued")) == (400, "invalid_request")
    jwt_type = "urn:ietf:params:oauth:token-type:jwt"
    assert outcome(exchange(authlib_server, client, token, requested_token_type=jwt_type)) == (400, "invalid_request")
    assert authlib_server.revoke_tokens("front") == 1
    assert outcome(exchange(authlib_server, client, token)) == (400, "invalid_request")
    authlib_server.configure(subject_token_error="invalid_grant")  # what some partners answer instead
    assert outcome(exchange(authlib_server, client, token)) == (400, "invalid_grant")
    assert [e["subject_client"] for e in authlib_server.refused("back")] == [None, "front", "front", "front"]


# -- metadata (RFC 8414, OpenID Connect Discovery) ---------------------------------------------------------------


def test_metadata_documents_are_valid_and_counted(authlib_server: AuthlibServer) -> None:
    oauth = requests.get(authlib_server.oauth_metadata_url, timeout=10).json()
    openid = requests.get(authlib_server.openid_metadata_url, timeout=10).json()
    AuthorizationServerMetadata(oauth).validate()
    OpenIDProviderMetadata(openid).validate()
    assert oauth["issuer"] == openid["issuer"] == authlib_server.issuer
    assert oauth["token_endpoint"] == authlib_server.token_url
    assert "private_key_jwt" in oauth["token_endpoint_auth_methods_supported"] and JWT_BEARER in oauth["grant_types_supported"]
    assert [(e["kind"], e["status"]) for e in authlib_server.metadata_fetches()] == [("oauth", 200), ("openid", 200)]
    assert authlib_server.metadata_fetch_count("oauth") == 1


def test_issuer_with_a_path_uses_the_path_aware_locations(authlib_server: AuthlibServer) -> None:
    authlib_server.configure_metadata(issuer_path="/tenants/acme")
    assert authlib_server.issuer == authlib_server.url + "/tenants/acme"
    urls = {
        "oauth": authlib_server.url + "/.well-known/oauth-authorization-server/tenants/acme",
        "openid": authlib_server.url + "/tenants/acme/.well-known/openid-configuration",
        "root": authlib_server.url + "/.well-known/oauth-authorization-server",
    }
    answers = {name: requests.get(url, timeout=10) for name, url in urls.items()}
    assert {name: r.status_code for name, r in answers.items()} == {"oauth": 200, "openid": 200, "root": 404}
    assert answers["oauth"].json()["issuer"] == authlib_server.issuer


def test_metadata_variants(authlib_server: AuthlibServer) -> None:
    authlib_server.configure_metadata(documents=["openid"])
    assert requests.get(authlib_server.oauth_metadata_url, timeout=10).status_code == 404
    assert requests.get(authlib_server.openid_metadata_url, timeout=10).status_code == 200
    authlib_server.configure_metadata(issuer="https://someone-else.example", token_endpoint=authlib_server.other_origin_token_url)
    document = requests.get(authlib_server.oauth_metadata_url, timeout=10).json()
    assert document["issuer"] == "https://someone-else.example"
    assert document["token_endpoint"] == f"http://localhost:{authlib_server.port}/oauth/token"
    assert [(e["kind"], e["status"]) for e in authlib_server.metadata_fetches()] == [("oauth", 404), ("openid", 200), ("oauth", 200)]


# -- protected API, reset and masking ---------------------------------------------------------------------------


def test_protected_api_accepts_issued_tokens_only(authlib_server: AuthlibServer) -> None:
    token = subject_token(authlib_server)

    def call(value: str) -> requests.Response:
        return requests.get(authlib_server.api_url, headers={"Authorization": "Bearer " + value}, timeout=10)

    assert call(token).json()["client_id"] == "front"
    assert call("never-issued").status_code == 401
    authlib_server.revoke_tokens()
    assert call(token).status_code == 401
    assert [c["status"] for c in authlib_server.calls()] == [200, 401, 401]


def test_reset_forgets_clients_tokens_and_history(authlib_server: AuthlibServer) -> None:
    subject_token(authlib_server)
    authlib_server.reset()
    assert authlib_server.ledger() == {"token_requests": [], "metadata_fetches": [], "calls": []}
    assert authlib_server.registrations() == {"clients": {}, "issuers": {}}
    assert authlib_server.tokens() == []


def test_nothing_secret_leaves_the_server(authlib_server: AuthlibServer) -> None:
    secret_client = authlib_server.register_client("hs", "client_secret_jwt")
    key_client = authlib_server.register_client("pk", "private_key_jwt")
    form = client_assertion(authlib_server, key_client)
    token = post(authlib_server, {"grant_type": "client_credentials", **form}).json()["access_token"]
    post(authlib_server, {"grant_type": "client_credentials", **client_assertion(authlib_server, secret_client)})
    post(authlib_server, {"grant_type": "client_credentials"}, auth=("hs", secret_client.secret or ""))
    published = json.dumps([authlib_server.ledger(), authlib_server.registrations(), authlib_server.tokens()])
    secrets_seen = {
        "client secret": (secret_client.secret or "") in published,
        "private key": key_client.key.private_pem.splitlines()[1] in published,
        "assertion": form["client_assertion"] in published,
        "token": token in published,
    }
    assert secrets_seen == dict.fromkeys(secrets_seen, False)
    shown = repr(secret_client) + repr(key_client)
    assert ((secret_client.secret or "") in shown, key_client.key.private_pem.splitlines()[1] in shown) == (False, False)
