"""Client-authentication styles and "token rejected" answers against a real django-oauth-toolkit server.

Clients are configured only through ``REQUESTFORGE`` (or a database definition) and
built by the registry. The server's ledger says what really reached it: the
client-auth style of every token request, and every protected call with its status and
the token it carried (``tests/support/oauth_server``).

Shown here: ``CLIENT_AUTH_METHOD`` selects the form body or HTTP Basic for client
credentials and for the password grant (and its refresh-token grant); a revoked token
answered with 401 *or* with 403 + ``WWW-Authenticate: Bearer error="invalid_token"``
heals with exactly one new token (in one process and across four); DOT's default
resource (a bare 403, no challenge) is not a rejection unless ``REJECTED_STATUSES``
lists 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from requestforge_django import get_client, get_token_manager
from requestforge_django.models import ClientDefinition, Credential
from tests.settings import TEST_ENCRYPTION_KEY
from tests.support.oauth_fixtures import oauth_client_setting
from tests.support.oauth_server import BEARER_401_PATH, BEARER_403_PATH, DOT_DEFAULT_PATH, OAuthApp, OAuthServer, OAuthUser
from tests.support.oauth_server.callers import call_task, caller_pool
from tests.support.processes import SpawnedPool

USER = OAuthUser("alice", "alice-password")
PROCESSES = 4
CC_APPS = ("cc-default", "cc-post", "cc-basic", "heal-401", "heal-403", "dot-default", "listed-403", "db-basic", "herd-403")
PW_APPS = ("pw-post", "pw-basic")


@pytest.fixture(scope="module")
def dot() -> Iterator[OAuthServer]:
    """Hour-long tokens; one application per test so the ledger entries never mix."""
    apps = [OAuthApp(cid, f"{cid}-secret-1") for cid in CC_APPS] + [OAuthApp(cid, f"{cid}-secret-1", "password") for cid in PW_APPS]
    with OAuthServer(apps=apps, users=[USER]) as server:
        yield server


@pytest.fixture
def configure(settings: Any, redis_cache: str) -> Any:
    """``configure(clients)``: ``REQUESTFORGE`` with the session's Redis and a fresh key prefix."""

    def apply(clients: dict[str, Any]) -> None:
        settings.REQUESTFORGE = {"CACHE": redis_cache, "KEY_PREFIX": f"rf-styles-{uuid.uuid4().hex[:8]}", "CLIENTS": clients}

    return apply


def styles(dot: OAuthServer, client_id: str) -> list[tuple[str, str, int]]:
    """``(grant_type, auth_method, status)`` of every token request the application made."""
    return [(e["grant_type"], e["auth_method"], e["status"]) for e in dot.token_requests(client_id)]


def refused_calls(dot: OAuthServer, client_id: str) -> list[dict[str, Any]]:
    """Protected calls of the application that were not answered 200, in order."""
    return [c for c in dot.calls(client_id=client_id) if c["status"] != 200]


# -- client authentication styles -----------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(databases=[])
@pytest.mark.parametrize(
    ("client_id", "method", "expected"),
    [
        ("cc-default", None, "client_secret_post"),
        ("cc-post", "client_secret_post", "client_secret_post"),
        ("cc-basic", "client_secret_basic", "client_secret_basic"),
    ],
)
def test_client_credentials_with_each_client_auth_style(
    dot: OAuthServer, configure: Any, client_id: str, method: str, expected: str
) -> None:
    auth = {"CLIENT_AUTH_METHOD": method} if method else {}
    configure({"api": oauth_client_setting(dot, client_id, **auth)})
    first, second = get_client("api").get(BEARER_401_PATH), get_client("api").get(BEARER_401_PATH)
    assert first.status_code == second.status_code == 200
    assert first.json()["client_id"] == client_id and first.json()["token"] == second.json()["token"]
    assert styles(dot, client_id) == [("client_credentials", expected, 200)]
    assert [e["auth_method"] for e in dot.issued(client_id)] == [expected]


@pytest.mark.redis
@pytest.mark.django_db(databases=[])
@pytest.mark.parametrize(("client_id", "method"), [("pw-post", "client_secret_post"), ("pw-basic", "client_secret_basic")])
def test_password_grant_and_its_refresh_with_each_client_auth_style(dot: OAuthServer, configure: Any, client_id: str, method: str) -> None:
    configure({"legacy": oauth_client_setting(dot, client_id, username=USER.username, CLIENT_AUTH_METHOD=method)})
    first = get_client("legacy").get(BEARER_401_PATH)
    assert first.status_code == 200 and first.json()["user"] == USER.username and first.json()["client_id"] == client_id

    get_token_manager("legacy").force_refresh()  # the refresh-token grant authenticates the client the same way
    second = get_client("legacy").get(BEARER_401_PATH)
    assert second.status_code == 200 and second.json()["user"] == USER.username
    assert second.json()["token"] != first.json()["token"]
    assert styles(dot, client_id) == [("password", method, 200), ("refresh_token", method, 200)]


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_database_definition_with_basic_client_authentication(dot: OAuthServer, settings: Any, redis_cache: str) -> None:
    settings.REQUESTFORGE = {
        "CACHE": redis_cache,
        "KEY_PREFIX": f"rf-styles-{uuid.uuid4().hex[:8]}",
        "ENCRYPTION_KEYS": [TEST_ENCRYPTION_KEY],
    }
    app = dot.apps["db-basic"]
    credential = Credential.objects.create(name="dot", client_id=app.client_id, client_secret=app.secret, allowed_origins=[dot.url])
    ClientDefinition.objects.create(
        name="dot-db",
        base_url=dot.url,
        auth_type="client_credentials",
        token_url=dot.token_url,
        credential=credential,
        client_auth_method="client_secret_basic",
    )
    answer = get_client("dot-db").get(BEARER_403_PATH)
    assert answer.status_code == 200 and answer.json()["client_id"] == "db-basic"
    assert styles(dot, "db-basic") == [("client_credentials", "client_secret_basic", 200)]


# -- which answers mean "token rejected" ---------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(databases=[])
@pytest.mark.parametrize(("client_id", "path", "status"), [("heal-401", BEARER_401_PATH, 401), ("heal-403", BEARER_403_PATH, 403)])
def test_a_revoked_token_heals_with_exactly_one_refetch(dot: OAuthServer, configure: Any, client_id: str, path: str, status: int) -> None:
    configure({"api": oauth_client_setting(dot, client_id)})
    before = get_client("api").get(path)
    assert before.status_code == 200
    old_token = before.json()["token"]
    assert dot.revoke_all(client_id)["revoked"] == 1

    after = get_client("api").get(path)
    assert after.status_code == 200 and after.json()["token"] != old_token
    assert len(dot.token_requests(client_id)) == 2
    assert [(c["status"], c["token"]) for c in refused_calls(dot, client_id)] == [(status, old_token)]
    assert get_client("api").get(path).json()["token"] == after.json()["token"]  # healed: nothing more fetched
    assert len(dot.token_requests(client_id)) == 2


@pytest.mark.redis
@pytest.mark.django_db(databases=[])
def test_a_bare_403_is_not_a_rejection_unless_listed(dot: OAuthServer, configure: Any) -> None:
    """DOT's default resource answers a revoked token with 403 and no challenge: only REJECTED_STATUSES makes it one."""
    configure(
        {
            "plain": oauth_client_setting(dot, "dot-default"),
            "listed": oauth_client_setting(dot, "listed-403", REJECTED_STATUSES=[401, 403]),
        }
    )
    for name in ("plain", "listed"):
        assert get_client(name).get(DOT_DEFAULT_PATH).status_code == 200
    for client_id in ("dot-default", "listed-403"):
        assert dot.revoke_all(client_id)["revoked"] == 1

    stuck = get_client("plain").get(DOT_DEFAULT_PATH)
    assert stuck.status_code == 403 and "WWW-Authenticate" not in stuck.headers
    assert len(dot.token_requests("dot-default")) == 1  # returned as it is: no refetch, no second call
    assert [c["status"] for c in refused_calls(dot, "dot-default")] == [403]

    healed = get_client("listed").get(DOT_DEFAULT_PATH)
    assert healed.status_code == 200 and healed.json()["client_id"] == "listed-403"
    assert len(dot.token_requests("listed-403")) == 2
    assert [c["status"] for c in refused_calls(dot, "listed-403")] == [403]


@pytest.fixture(scope="module")
def pool(redis_server: str, dot: OAuthServer) -> Iterator[SpawnedPool]:
    """Four spawned Django processes sharing the session's Redis, with client "herd" on application herd-403."""
    with caller_pool(PROCESSES, redis_server, "rf-styles", {"herd": oauth_client_setting(dot, "herd-403")}) as executor:
        yield executor


def in_every_process(pool: SpawnedPool, *args: Any) -> list[dict[str, Any]]:
    """``call_task(*args)`` once in each worker, all released together; the results of every thread."""
    return [result for task in pool.in_every_process(call_task, *args) for result in task["results"]]


@pytest.mark.slow
@pytest.mark.redis
def test_a_revoked_token_answered_with_403_invalid_token_heals_across_processes_with_one_refetch(
    pool: SpawnedPool, dot: OAuthServer, redis_client: Any
) -> None:
    before = in_every_process(pool, "herd", BEARER_403_PATH, 2)
    assert {r["status"] for r in before} == {200} and len({r["token"] for r in before}) == 1
    old_token = before[0]["token"]
    assert dot.revoke_all("herd-403")["revoked"] == 1

    after = in_every_process(pool, "herd", BEARER_403_PATH, 2)
    assert {r["status"] for r in after} == {200}, after
    assert len({r["token"] for r in after}) == 1 and after[0]["token"] != old_token
    assert len(dot.token_requests("herd-403")) == 2  # 8 callers in 4 processes: one refetch
    refused = refused_calls(dot, "herd-403")
    assert refused and {(c["status"], c["token"]) for c in refused} == {(403, old_token)}
