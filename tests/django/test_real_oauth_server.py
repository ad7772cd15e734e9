"""The library against a real OAuth2 authorization server it did not write: django-oauth-toolkit.

DOT runs as a real HTTP server in its own process (``tests/support/oauth_server``);
its ledger says what really reached it: every token request (grant, client-auth
style, outcome) and every protected call with the token it carried. Clients are
built by the registry from ``REQUESTFORGE`` as in a deployment; the multi-process
tests run them in eight spawned worker processes sharing the session's Redis.

What is shown: DOT behaves as these tests and the later ones assume (both
client-auth styles, how each resource answers a bad token, revocation, secret
change); client credentials work end to end; 32 callers in 8 processes on a cold
cache cause one token request; rotating refresh tokens are refreshed across
processes without a single ``invalid_grant``; a revoked token answered with 401
heals with exactly one new token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from requestforge_django import get_client
from tests.support.oauth_fixtures import oauth_client_setting
from tests.support.oauth_server import (
    BEARER_401_PATH,
    BEARER_403_PATH,
    DOT_DEFAULT_PATH,
    OAuthApp,
    OAuthServer,
    OAuthUser,
    fingerprint,
)
from tests.support.oauth_server.callers import call_task, caller_pool, load_task
from tests.support.processes import SpawnedPool

PROCESSES = 8
SHORT_LIFETIME = 6  # seconds: DOT's access tokens on the rotation server (the library refuses < 5 s)
REFRESH_AHEAD = 3  # so a rotation token is renewed every ~3 s; hour-long tokens are unaffected
USER = OAuthUser("alice", "alice-password")


@pytest.fixture(scope="module")
def dot() -> Iterator[OAuthServer]:
    """Hour-long tokens; one application per test so their counts never mix."""
    apps = [OAuthApp(cid, f"{cid}-secret-1") for cid in ("probe-app", "cc-app", "herd-app", "revoke-app")]
    with OAuthServer(apps=apps, users=[USER]) as server:
        yield server


@pytest.fixture(scope="module")
def dot_short() -> Iterator[OAuthServer]:
    """Password grant, refresh tokens rotated on every use (no grace period), short access tokens."""
    apps = [OAuthApp("pw-app", "pw-app-secret-1", "password")]
    with OAuthServer(apps=apps, users=[USER], access_token_lifetime=SHORT_LIFETIME) as server:
        yield server


@pytest.fixture(scope="module")
def pool(redis_server: str, dot: OAuthServer, dot_short: OAuthServer) -> Iterator[SpawnedPool]:
    """Eight spawned Django processes whose registry knows the clients of the multi-process tests."""
    clients = {
        "herd": oauth_client_setting(dot, "herd-app"),
        "revoked": oauth_client_setting(dot, "revoke-app"),
        "rotating": oauth_client_setting(dot_short, "pw-app", username=USER.username),
    }
    with caller_pool(PROCESSES, redis_server, "rf-dot", clients, REFRESH_AHEAD=REFRESH_AHEAD) as executor:
        yield executor


def token_for(server: OAuthServer, client_id: str, secret: str | None = None, *, basic: bool = False) -> requests.Response:
    """A raw client-credentials request (the secret in the form body, or HTTP Basic with ``basic``)."""
    secret = server.apps[client_id].secret if secret is None else secret
    if basic:
        return requests.post(server.token_url, data={"grant_type": "client_credentials"}, auth=(client_id, secret), timeout=10)
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return requests.post(server.token_url, data=form, timeout=10)


def bearer_get(server: OAuthServer, path: str, token: str) -> requests.Response:
    return requests.get(server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)


class TestTheServer:
    """What DOT 3.4 really does, which the library tests here and later rely on."""

    def test_both_client_auth_styles_and_how_each_resource_rejects_a_token(self, dot: OAuthServer) -> None:
        post, basic = token_for(dot, "probe-app"), token_for(dot, "probe-app", basic=True)
        assert post.status_code == basic.status_code == 200
        methods = [(e["auth_method"], e["status"]) for e in dot.token_requests("probe-app")]
        assert methods == [("client_secret_post", 200), ("client_secret_basic", 200)]

        token = basic.json()["access_token"]
        for path in (BEARER_401_PATH, DOT_DEFAULT_PATH, BEARER_403_PATH):
            ok = bearer_get(dot, path, token)
            assert ok.status_code == 200 and ok.json()["client_id"] == "probe-app" and ok.json()["token"] == fingerprint(token)
        challenge = 'Bearer error="invalid_token",error_description="The access token is invalid.",resource_metadata='
        answers = {path: bearer_get(dot, path, "nope") for path in (BEARER_401_PATH, DOT_DEFAULT_PATH, BEARER_403_PATH)}
        assert answers[BEARER_401_PATH].status_code == 401 and answers[BEARER_401_PATH].headers["WWW-Authenticate"].startswith(challenge)
        assert answers[BEARER_403_PATH].status_code == 403 and answers[BEARER_403_PATH].headers["WWW-Authenticate"].startswith(challenge)
        assert answers[DOT_DEFAULT_PATH].status_code == 403 and "WWW-Authenticate" not in answers[DOT_DEFAULT_PATH].headers

        # RFC 7009 revocation (client authenticated by HTTP Basic), then the token is rejected.
        app = dot.apps["probe-app"]
        revoked = requests.post(dot.revoke_url, data={"token": token}, auth=(app.client_id, app.secret), timeout=10)
        assert revoked.status_code == 200
        assert bearer_get(dot, BEARER_401_PATH, token).status_code == 401

    def test_secret_change_is_fenced_by_version(self, dot: OAuthServer) -> None:
        old = dot.apps["probe-app"].secret
        assert dot.change_secret("probe-app", "probe-app-secret-2", keep_old=True)["version"] == 2
        still = token_for(dot, "probe-app", old)
        assert still.status_code == 200  # kept for overlap, but filed under version 1
        assert token_for(dot, "probe-app").status_code == 200
        by_token = {e["token"]: e["secret_version"] for e in dot.issued("probe-app")}
        assert by_token[fingerprint(still.json()["access_token"])] == 1
        assert max(by_token.values()) == 2

        dot.change_secret("probe-app", "probe-app-secret-3")  # no overlap: the older secrets are refused
        refused = token_for(dot, "probe-app", old, basic=True)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
        assert token_for(dot, "probe-app").status_code == 200


@pytest.mark.django_db(databases=[])
def test_client_credentials_in_the_form_body_gets_a_token_and_calls_the_resource(dot: OAuthServer, redis_cache: str, settings: Any) -> None:
    settings.REQUESTFORGE = {"CACHE": redis_cache, "KEY_PREFIX": "rf-dot-cc", "CLIENTS": {"dot": oauth_client_setting(dot, "cc-app")}}
    client = get_client("dot")
    first, second = client.get(BEARER_401_PATH), client.get(BEARER_401_PATH)
    assert first.status_code == second.status_code == 200
    assert first.json()["client_id"] == "cc-app" and first.json()["token"] == second.json()["token"]
    [request] = dot.token_requests("cc-app")
    assert (request["grant_type"], request["auth_method"], request["status"]) == ("client_credentials", "client_secret_post", 200)


@pytest.mark.slow
@pytest.mark.redis
def test_32_callers_in_8_processes_on_a_cold_cache_make_one_token_request(pool: SpawnedPool, dot: OAuthServer, redis_client: Any) -> None:
    results = [r for task in pool.in_every_process(call_task, "herd", BEARER_401_PATH, 4) for r in task["results"]]
    assert len(results) == 32
    assert {r["status"] for r in results} == {200}, results
    assert len({r["token"] for r in results}) == 1
    assert len(dot.token_requests("herd-app")) == 1


@pytest.mark.slow
@pytest.mark.redis
def test_rotating_refresh_tokens_are_refreshed_across_processes_without_invalid_grant(
    pool: SpawnedPool, dot_short: OAuthServer, redis_client: Any
) -> None:
    tasks = pool.in_every_process(load_task, "rotating", BEARER_401_PATH, 2, 2.5 * REFRESH_AHEAD)
    requests_made = dot_short.token_requests("pw-app")
    failed = [r for r in requests_made if r["status"] != 200]
    assert not failed, f"token endpoint refused: {failed}"
    grants = [r["grant_type"] for r in requests_made]
    assert grants[0] == "password" and grants.count("password") == 1, grants  # every later token came from a refresh
    refreshes = [r for r in requests_made if r["grant_type"] == "refresh_token"]
    assert len(refreshes) >= 2, grants
    used = [r["refresh_token_used"] for r in refreshes]
    assert len(set(used)) == len(used), "a refresh token was presented twice"
    assert all(set(t["statuses"]) == {200} and not t["errors"] for t in tasks), tasks
    assert len({token for t in tasks for token in t["tokens"]}) >= 3


@pytest.mark.slow
@pytest.mark.redis
def test_a_revoked_token_answered_with_401_heals_with_one_refetch(pool: SpawnedPool, dot: OAuthServer, redis_client: Any) -> None:
    before = [r for task in pool.in_every_process(call_task, "revoked", BEARER_401_PATH, 2) for r in task["results"]]
    assert {r["status"] for r in before} == {200} and len({r["token"] for r in before}) == 1
    old_token = before[0]["token"]
    assert dot.revoke_all("revoke-app")["revoked"] == 1

    after = [r for task in pool.in_every_process(call_task, "revoked", BEARER_401_PATH, 2) for r in task["results"]]
    assert {r["status"] for r in after} == {200}, after
    assert {r["token"] for r in after} != {old_token} and len({r["token"] for r in after}) == 1
    assert len(dot.token_requests("revoke-app")) == 2
    rejected = [c for c in dot.calls(client_id="revoke-app") if c["status"] == 401]
    assert rejected and {c["token"] for c in rejected} == {old_token}  # the heal went through DOT's 401
