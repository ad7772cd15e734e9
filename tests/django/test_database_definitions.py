"""Admin-edited definitions and credentials served by the registry like settings entries, and changes seen everywhere."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from requestforge_django import get_client, get_token_manager
from requestforge_django.http.exceptions import ConfigurationError
from requestforge_django.models import ClientDefinition, Credential, PipelineDefinition, PipelineStep
from requestforge_django.registry import registry
from requestforge_django.signals import token_invalidated
from requestforge_django.testing import DEVICE_PATH, PROTECTED_PATH, StubTokenEndpoint
from tests.support.registry_worker import ROOT, RegistryWorkerProcess, process_env

FERNET_KEY = "9lrjcDK1nqbXgNjm3wz7PZ3tNGgtsM2Yq6_tV9m1nPA="


@pytest.fixture
def server() -> Iterator[StubTokenEndpoint]:
    with StubTokenEndpoint(expires_in=3600) as server:
        yield server


@pytest.fixture
def configured(settings: Any, server: StubTokenEndpoint, redis_cache: str, db: None) -> StubTokenEndpoint:
    settings.REQUESTFORGE = {"CACHE": redis_cache, "ENCRYPTION_KEYS": [FERNET_KEY]}
    return server


def erp_client(server: StubTokenEndpoint, secret: str | None = None) -> ClientDefinition:
    credential = Credential.objects.create(
        name="erp-prod", client_id=server.client_id, client_secret=secret or server.client_secret, allowed_origins=[server.url]
    )
    return ClientDefinition.objects.create(
        name="erp", base_url=server.url, auth_type="client_credentials", token_url=server.token_url, credential=credential
    )


@pytest.mark.django_db(transaction=True)
def test_database_client_with_an_encrypted_credential(configured: StubTokenEndpoint) -> None:
    erp_client(configured)
    assert get_client("erp").get(PROTECTED_PATH).status_code == 200
    assert configured.stats().token_requests == 1
    assert registry.definitions().sources["erp"] == "database"


@pytest.mark.django_db(transaction=True)
def test_changing_the_credential_invalidates_its_tokens_and_rebuilds(configured: StubTokenEndpoint) -> None:
    erp_client(configured, secret="wrong-secret")
    with pytest.raises(Exception, match="invalid_client"):
        get_client("erp").get(PROTECTED_PATH)
    reasons: list[tuple[str, str]] = []

    def receiver(sender: Any, name: str, step: Any, reason: str, **kwargs: Any) -> None:
        reasons.append((name, reason))

    token_invalidated.connect(receiver)
    try:
        credential = Credential.objects.get(name="erp-prod")
        credential.client_secret = configured.client_secret
        credential.save()  # on_commit: invalidate + bump (transaction=True, so it commits)
    finally:
        token_invalidated.disconnect(receiver)
    assert reasons == [("erp", "credential_changed")]
    assert get_client("erp").get(PROTECTED_PATH).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_database_pipeline_and_a_client_using_it(configured: StubTokenEndpoint) -> None:
    pipeline = PipelineDefinition.objects.create(name="dbflow")
    PipelineStep.objects.create(
        pipeline=pipeline,
        order=1,
        name="device",
        fetcher="header",
        url=configured.url + DEVICE_PATH,
        headers={"X-Device-ID": configured.device_id},
        token_header="X-Device-Token",
    )
    ClientDefinition.objects.create(name="device-api", base_url=configured.url, auth_type="pipeline", pipeline="dbflow")
    assert get_client("device-api").get(PROTECTED_PATH).status_code == 200
    assert get_token_manager("dbflow").peek_token() is not None


@pytest.mark.django_db(transaction=True)
def test_missing_credential_is_a_clear_error_and_other_clients_work(configured: StubTokenEndpoint, settings: Any) -> None:
    settings.REQUESTFORGE = {
        **settings.REQUESTFORGE,
        "CLIENTS": {
            "orphan": {"BASE_URL": configured.url, "AUTH": {"TYPE": "bearer", "CREDENTIAL": "nope"}},
            "public": {"BASE_URL": configured.url},
        },
    }
    with pytest.raises(ConfigurationError, match='credential "nope" does not exist or is not active'):
        get_client("orphan")
    assert get_client("public").get(PROTECTED_PATH).status_code == 401  # reached the partner: unaffected


@pytest.mark.slow
@pytest.mark.redis
def test_a_definition_change_reaches_another_os_process_within_a_second(
    redis_server: str, redis_client: Any, server: StubTokenEndpoint, tmp_path: Path
) -> None:
    env = process_env(redis_server, server.url, RF_DB_PATH=str(tmp_path / "db.sqlite3"))

    def django(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "django", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    django("migrate", "--verbosity=0")
    django(
        "shell", "-c", f"from requestforge_django.models import ClientDefinition as C; C.objects.create(name='db', base_url='{server.url}')"
    )
    worker = RegistryWorkerProcess(env)
    try:
        assert worker.describe("db")["base_url"] == server.url
        saved_at = float(
            django(
                "shell",
                "-c",
                "import time; from requestforge_django.models import ClientDefinition as C; "
                "c = C.objects.get(name='db'); c.base_url = c.base_url + '/v2'; c.save(); print(time.time())",
            ).split()[-1]  # Django 5.2's shell first reports its automatic imports
        )
        while (answer := worker.describe("db"))["base_url"] != server.url + "/v2":
            assert time.time() - saved_at < 5, "the change never reached the other process"
        seen_after = time.time() - saved_at
        assert answer["base_url"] == server.url + "/v2"
        assert seen_after < 1.0, seen_after
    finally:
        worker.stop()
