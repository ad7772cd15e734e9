"""Credential version fencing, and dropping tokens by name, with two registries standing in for two processes.

Process A is the module registry (the receivers run in it: it saves); process B is a
second :class:`Registry` holding a client object built *before* the change, which is
what a process still on the previous definitions, or any code keeping a client, does.
Both share the session's Redis and the test database. The partner's token endpoint
(a :class:`PartnerServer`) tells which secret obtained each token: ``tok-v1-*`` or
``tok-v2-*``; its API records the token every call carried.
"""

from __future__ import annotations

import io
import itertools
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from requestforge_django import get_client, get_token_manager
from requestforge_django.fencing import GONE, MEMORY_LIMIT, credential_version_key, current_credential_version, prepare_credential_change
from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.models import ClientDefinition, Credential, PipelineDefinition, PipelineStep
from requestforge_django.registry import Registry, registry
from requestforge_django.shared.token_storage import DjangoCacheTokenStorage
from requestforge_django.signals import token_invalidated
from requestforge_django.status import token_statuses
from requestforge_django.tokens.data import TokenData
from tests.support.partner_server import PartnerServer, Received, Reply

FERNET_KEY = "9lrjcDK1nqbXgNjm3wz7PZ3tNGgtsM2Yq6_tV9m1nPA="
PREFIX = "rf-fence"
SECRETS = {"secret-one-0123456789": "v1", "secret-two-0123456789": "v2"}
OLD, NEW = list(SECRETS)

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


class Partner:
    """Token endpoint labelling each token with the secret that obtained it; an API recording the tokens it got."""

    def __init__(self, server: PartnerServer) -> None:
        self.server = server
        self.url = server.url
        self.token_url = server.url + "/token"
        self.secrets_used: list[str] = []
        self.api_tokens: list[str] = []
        self.hold_next_fetch: threading.Event | None = None  # set(): answer; None: answer at once
        self.fetch_arrived = threading.Event()
        self._numbers = itertools.count(1)
        server.route("POST", "/token", self._token)
        server.route("GET", "/api", self._api)
        server.route("POST", "/device", lambda received: Reply(200, {"ok": True}, headers={"X-Device-Token": "dev-token-1"}))

    def _token(self, received: Received) -> Reply:
        form = urllib.parse.parse_qs(received.body.decode())
        label = SECRETS.get(form.get("client_secret", [""])[0])
        if label is None:
            return Reply(401, {"error": "invalid_client"})
        self.secrets_used.append(label)
        hold, self.hold_next_fetch = self.hold_next_fetch, None
        self.fetch_arrived.set()
        if hold is not None:
            assert hold.wait(10), "the test never released the held token request"
        return Reply(200, {"access_token": f"tok-{label}-{next(self._numbers)}", "token_type": "Bearer", "expires_in": 3600})

    def _api(self, received: Received) -> Reply:
        token = (received.header("Authorization") or "").removeprefix("Bearer ")
        self.api_tokens.append(token)
        return Reply(200, {"token": token})


@pytest.fixture
def partner() -> Iterator[Partner]:
    with PartnerServer() as server:
        yield Partner(server)


@pytest.fixture
def configured(settings: Any, partner: Partner, redis_cache: str) -> Partner:
    settings.REQUESTFORGE = {
        "CACHE": redis_cache,
        "KEY_PREFIX": PREFIX,
        "ENCRYPTION_KEYS": [FERNET_KEY],
        "CLIENTS": {
            "erp": {
                "BASE_URL": partner.url,
                "AUTH": {"TYPE": "client_credentials", "TOKEN_URL": partner.token_url, "CREDENTIAL": "erp-cred"},
            }
        },
    }
    Credential.objects.create(name="erp-cred", client_id="erp-client", client_secret=OLD, allowed_origins=[partner.url])
    return partner


@pytest.fixture
def other_process(configured: Partner) -> Iterator[Registry]:
    """Process B: a registry of its own, sharing Redis and the database."""
    other = Registry()
    try:
        yield other
    finally:
        other.reset()


@pytest.fixture
def invalidations() -> Iterator[list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []

    def receiver(sender: Any, name: str, step: Any, reason: str, **kwargs: Any) -> None:
        seen.append((name, reason))

    token_invalidated.connect(receiver)
    try:
        yield seen
    finally:
        token_invalidated.disconnect(receiver)


def change_secret(secret: str = NEW) -> None:
    credential = Credential.objects.get(name="erp-cred")
    credential.client_secret = secret
    credential.save()  # autocommit: on_commit runs before save() returns


def token_of(response: Any) -> str:
    assert response.status_code == 200
    return response.json()["token"]


def raw_storage() -> DjangoCacheTokenStorage:
    return DjangoCacheTokenStorage("redis", PREFIX)


# -- the fence -------------------------------------------------------------------------------------


def test_a_held_client_follows_a_secret_change_at_once(configured: Partner, other_process: Registry) -> None:
    held = other_process.get_client("erp")
    assert token_of(held.get("/api")).startswith("tok-v1-")

    change_secret()

    # No pause: neither the token it read a moment ago nor its old secret may be used any more.
    first = token_of(held.get("/api"))
    assert first.startswith("tok-v2-")
    assert [token_of(held.get("/api")) for _ in range(5)] == [first] * 5
    assert token_of(get_client("erp").get("/api")) == first  # and every process shares it
    assert configured.secrets_used == ["v1", "v2"]
    assert get_token_manager("erp").peek_token().credential_version == current_credential_version("erp-cred")  # type: ignore[union-attr]


def test_a_token_fetched_with_the_old_secret_across_the_change_is_never_stored_or_served(
    configured: Partner, other_process: Registry
) -> None:
    held = other_process.get_client("erp")
    configured.hold_next_fetch = release = threading.Event()
    answers: list[Any] = []
    caller = threading.Thread(target=lambda: answers.append(held.get("/api")))
    caller.start()
    assert configured.fetch_arrived.wait(10)  # B is fetching with the old secret ...

    change_secret()  # ... when the change commits
    release.set()
    caller.join(10)

    assert configured.secrets_used == ["v1", "v2"]  # the old-secret token was dropped and fetched again
    served = token_of(answers[0])
    assert served.startswith("tok-v2-")
    assert not [t for t in configured.api_tokens if t.startswith("tok-v1-")]
    assert raw_storage().get("client:erp").access_token == served  # type: ignore[union-attr]
    assert token_of(get_client("erp").get("/api")) == served


def test_a_token_of_an_older_version_stored_late_is_not_served(configured: Partner) -> None:
    before = current_credential_version("erp-cred")
    change_secret()
    # A writer that missed the change (another host, a stale process) stores a token of the old version.
    raw_storage().set("client:erp", TokenData("late-old-version-token", credential_version=before))

    served = token_of(get_client("erp").get("/api"))
    assert served.startswith("tok-v2-")
    assert "late-old-version-token" not in configured.api_tokens


def test_a_missing_published_version_is_repaired_without_a_fetch_storm(
    configured: Partner, other_process: Registry, redis_client: Any
) -> None:
    first = token_of(get_client("erp").get("/api"))
    held = other_process.get_client("erp")  # built, nothing read yet
    [published] = redis_client.keys(f"*{credential_version_key(PREFIX, 'erp-cred')}")
    redis_client.delete(published)  # evicted

    again = [token_of(held.get("/api")) for _ in range(10)]
    assert again[0] != first and again == [again[0]] * 10  # one refetch, then served from the cache
    assert configured.secrets_used == ["v1", "v1"]
    assert redis_client.get(published) is not None  # published again, from the database

    redis_client.delete(published)
    third = Registry()  # building a client publishes a missing version: the cached token stays valid
    try:
        assert token_of(third.get_client("erp").get("/api")) == again[0]
    finally:
        third.reset()
    assert configured.secrets_used == ["v1", "v1"]


def test_clients_with_secrets_in_settings_are_not_fenced(settings: Any, partner: Partner, redis_cache: str) -> None:
    auth = {"TYPE": "client_credentials", "TOKEN_URL": partner.token_url, "CLIENT_ID": "erp-client", "CLIENT_SECRET": OLD}
    settings.REQUESTFORGE = {"CACHE": redis_cache, "KEY_PREFIX": PREFIX, "CLIENTS": {"plain": {"BASE_URL": partner.url, "AUTH": auth}}}
    client = get_client("plain")
    assert token_of(client.get("/api")) == token_of(client.get("/api"))
    token = raw_storage().get("client:plain")
    assert token is not None and token.credential_version is None


# -- deactivated, deleted, renamed: dropped by name -----------------------------------------------------


@pytest.mark.parametrize("change", ["deactivate", "delete"])
def test_a_credential_gone_drops_tokens_this_process_never_built(
    configured: Partner, other_process: Registry, invalidations: list, caplog: pytest.LogCaptureFixture, change: str
) -> None:
    held = other_process.get_client("erp")
    token_of(held.get("/api"))
    registry.reset()  # process A has built nothing
    assert raw_storage().get("client:erp") is not None

    credential = Credential.objects.get(name="erp-cred")
    if change == "delete":
        credential.delete()
    else:
        credential.is_active = False
        credential.save()

    assert raw_storage().get("client:erp") is None
    assert invalidations == [("erp", "credential_changed")]
    assert "Could not" not in caplog.text
    assert current_credential_version("erp-cred") == GONE

    calls = len(configured.api_tokens)
    with pytest.raises(AuthenticationException, match='credential "erp-cred" does not exist or is not active'):
        held.get("/api")  # the held client follows the change: no old token, no old secret
    assert len(configured.api_tokens) == calls

    [row] = token_statuses(["erp"])
    assert row.problem == 'credential "erp-cred" missing or inactive' and row.error is None
    out = io.StringIO()
    call_command("requestforge_status", "erp", stdout=out)
    assert 'credential "erp-cred" missing or inactive' in out.getvalue() and "unreadable" not in out.getvalue()


def test_renaming_a_credential_fences_out_the_old_name(configured: Partner, other_process: Registry, invalidations: list) -> None:
    held = other_process.get_client("erp")
    token_of(held.get("/api"))
    credential = Credential.objects.get(name="erp-cred")
    credential.name = "erp-cred-2"
    credential.save()

    assert invalidations == [("erp", "credential_changed")]
    with pytest.raises(AuthenticationException, match='credential "erp-cred" does not exist or is not active'):
        held.get("/api")


def test_deleting_database_definitions_drops_their_tokens_by_name(configured: Partner, invalidations: list) -> None:
    ClientDefinition.objects.create(
        name="db-erp",
        base_url=configured.url,
        auth_type="client_credentials",
        token_url=configured.token_url,
        credential=Credential.objects.get(name="erp-cred"),
    )
    pipeline = PipelineDefinition.objects.create(name="db-flow")
    PipelineStep.objects.create(
        pipeline=pipeline, order=1, name="device", fetcher="header", url=configured.url + "/device", token_header="X-Device-Token"
    )
    token_of(get_client("db-erp").get("/api"))
    assert registry.get_pipeline("db-flow").execute().access_token == "dev-token-1"
    other = Registry()  # the deleting process knows the definitions but has built nothing
    other.definitions()
    invalidations.clear()

    ClientDefinition.objects.filter(name="db-erp").delete()
    pipeline.delete()

    assert raw_storage().get("client:db-erp") is None and raw_storage().get("pipeline:db-flow:device") is None
    assert sorted(invalidations) == [("db-erp", "definition_changed"), ("db-flow", "definition_changed")]


# -- the bounded process memory, and the numbers the docs state ------------------------------------------


def test_a_change_marker_stops_process_memory_and_the_save_waits_out_earlier_copies(configured: Partner, other_process: Registry) -> None:
    client = other_process.get_client("erp")
    token_of(client.get("/api"))
    manager = other_process.get_token_manager("erp")
    storage = manager.storage
    token = storage.get("client:erp")
    assert token is not None and 0 < storage.memory_allowance(token) <= MEMORY_LIMIT

    assert prepare_credential_change(["erp-cred"]) == pytest.approx(MEMORY_LIMIT + 0.05)
    marked = storage.get("client:erp")
    assert marked == token  # still served while the change has not committed ...
    assert storage.memory_allowance(marked) == 0  # ... but no longer kept in memory
    assert prepare_credential_change(["erp-cred"]) == 0  # already marked: nothing read since can be in memory
    assert prepare_credential_change(["no-such-credential"]) == 0


def test_the_docs_state_the_numbers_of_the_code() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    admin, clients, deployment = (" ".join((docs / page).read_text().split()) for page in ("admin.md", "clients.md", "deployment.md"))
    wait = f"{MEMORY_LIMIT + 0.05:g} s"
    assert f"the save waits {wait}" in admin and f"longer than {MEMORY_LIMIT:g} s after reading it" in admin
    assert f"a credential save waits {wait}" in clients and f"at most {MEMORY_LIMIT:g} s between cache reads" in clients
    assert f"kept for at most **{MEMORY_LIMIT:g} s**" in deployment
    assert "never outlives the change" not in admin
