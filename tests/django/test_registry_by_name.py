"""The registry reads and forgets definitions by name (issue 15): cost follows what is used, not what exists.

* a cold lookup reads that one name (and its credential), a settings name reads nothing;
* a saved credential or definition reaches other processes as the names that changed:
  they forget those (and the clients using them) and keep every other object;
* one published change per committed transaction; a rolled-back one publishes nothing;
* a process that cannot tell what changed forgets everything (today's behaviour);
* a slow build never holds the callers of objects already built.

"Another process" is a second :class:`Registry` on the same cache (LocMem), polling every
time (``GENERATION_CHECK_INTERVAL`` 0).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

import requestforge_django.registry as registry_module
from requestforge_django import models
from requestforge_django.models import ClientDefinition, Credential, PipelineDefinition, PipelineStep
from requestforge_django.registry import Registry, UnknownNameError, bump_generation, read_generation
from requestforge_django.registry.changes import CHANGE_LOG_SIZE, Changes, change_key, generation_key, publish_changes, read_changes

FERNET_KEY = "9lrjcDK1nqbXgNjm3wz7PZ3tNGgtsM2Yq6_tV9m1nPA="
API = "https://api.example.com"
TOKEN_URL = "https://auth.example.com/token"
TENANTS = 12


@pytest.fixture
def configured(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    prefix = f"rf-{uuid.uuid4().hex[:8]}"  # LocMem outlives a test: a fresh generation counter each time
    settings.REQUESTFORGE = {
        "KEY_PREFIX": prefix,
        "ENCRYPTION_KEYS": [FERNET_KEY],
        "CLIENTS": {"plain": {"BASE_URL": API}},
    }
    monkeypatch.setattr(registry_module, "GENERATION_CHECK_INTERVAL", 0.0)
    yield prefix
    registry_module.registry.reset()


def tenants(count: int = TENANTS) -> None:
    """``t0`` .. ``t<count-1>``: a client_credentials client and its own credential each."""
    credentials = Credential.objects.bulk_create(
        Credential(name=f"cred-t{i}", client_id=f"id-{i}", client_secret=f"secret-{i}", allowed_origins=[API, "https://auth.example.com"])
        for i in range(count)
    )
    ClientDefinition.objects.bulk_create(
        ClientDefinition(name=f"t{i}", base_url=API, auth_type="client_credentials", token_url=TOKEN_URL, credential=credential)
        for i, credential in enumerate(credentials)
    )


def generation() -> int:
    value = read_generation(registry_module.requestforge_settings.spec)
    return int(value or 0)


def touch_credential(name: str) -> None:
    credential = Credential.objects.get(name=name)
    credential.client_secret = "rotated"
    credential.save()


def client_definition_queries(queries: list[dict[str, str]]) -> list[str]:
    return [q["sql"] for q in queries if "requestforge_django_clientdefinition" in q["sql"]]


@pytest.mark.django_db
class TestReadingByName:
    def test_a_cold_lookup_reads_only_that_name_and_its_credential(self, configured: str) -> None:
        tenants()
        cold = Registry()
        with CaptureQueriesContext(connection) as queries:
            client = cold.get_client("t7")
        assert client.config.base_url == API
        definitions = client_definition_queries(queries.captured_queries)
        assert len(definitions) == 1 and "'t7'" in definitions[0], definitions
        # The definition, then its credential: for the auth hook, its version (the fence) and the token provider.
        assert len(queries) <= 4, [q["sql"] for q in queries.captured_queries]
        assert all("cred-t7" in q["sql"] or "'t7'" in q["sql"] for q in queries.captured_queries)

    def test_a_settings_name_reads_no_database(self, configured: str, django_assert_num_queries: Any) -> None:
        tenants()
        with django_assert_num_queries(0):
            Registry().get_client("plain")

    def test_every_definition_is_read_only_when_listed(self, configured: str) -> None:
        tenants()
        lister = Registry()
        lister.get_client("t1")
        definitions = lister.definitions()
        assert sorted(definitions.clients) == sorted(["plain", *(f"t{i}" for i in range(TENANTS))])
        assert definitions.sources["t1"] == "database" and definitions.sources["plain"] == "settings"

    def test_an_unknown_name_still_lists_every_known_one(self, configured: str) -> None:
        tenants(3)
        with pytest.raises(UnknownNameError) as info:
            Registry().get_client("t9")
        assert info.value.known == ("plain", "t0", "t1", "t2")

    def test_a_name_in_settings_and_database_keeps_the_settings_entry(self, configured: str, settings: Any) -> None:
        tenants(2)
        settings.REQUESTFORGE = {**settings.REQUESTFORGE, "CLIENTS": {"t1": {"BASE_URL": "https://settings.example.com"}}}
        reader = Registry()
        assert reader.get_client("t1").config.base_url == "https://settings.example.com"  # E031: settings win
        assert reader.get_client("t0").config.base_url == API


@pytest.mark.django_db(transaction=True)
class TestChangesByName:
    def test_an_unrelated_credential_change_keeps_every_other_object(self, configured: str) -> None:
        tenants()
        other = Registry()
        kept, changed = other.get_client("t1"), other.get_client("t2")
        manager = other.get_token_manager("t1")
        before = generation()
        touch_credential("cred-t2")
        assert generation() == before + 1
        with CaptureQueriesContext(connections["default"]) as queries:
            assert other.get_client("t1") is kept
            assert other.get_token_manager("t1") is manager
        assert queries.captured_queries == []
        assert other.get_client("t2") is not changed

    def test_a_changed_definition_is_rebuilt_from_the_database(self, configured: str) -> None:
        tenants(3)
        other = Registry()
        kept, old = other.get_client("t0"), other.get_client("t1")
        row = ClientDefinition.objects.get(name="t1")
        row.headers = {"X-Tenant": "one"}
        row.save()
        new = other.get_client("t1")
        assert new is not old and new.config.default_headers["X-Tenant"] == "one"
        assert other.get_client("t0") is kept

    def test_a_new_definition_is_seen_after_a_lookup_found_nothing(self, configured: str) -> None:
        other = Registry()
        with pytest.raises(UnknownNameError):
            other.get_client("late")
        ClientDefinition.objects.create(name="late", base_url=API)
        assert other.get_client("late").config.base_url == API

    def test_a_pipeline_change_reaches_its_clients_and_a_pipeline_created_later_makes_a_client_valid(self, configured: str) -> None:
        ClientDefinition.objects.create(name="partner-api", base_url=API, auth_type="pipeline", pipeline="flow")
        ClientDefinition.objects.create(name="bystander", base_url=API)
        other = Registry()
        bystander = other.get_client("bystander")
        with pytest.raises(UnknownNameError):
            other.get_client("partner-api")  # its pipeline does not exist yet
        with transaction.atomic():
            flow = PipelineDefinition.objects.create(name="flow")
            PipelineStep.objects.create(pipeline=flow, name="device", url=f"{API}/device", order=0)
        first = other.get_client("partner-api")
        assert other.get_pipeline("flow").step_names == ["device"]
        PipelineStep.objects.create(pipeline=flow, name="app", url=f"{API}/app", order=1)
        assert other.get_pipeline("flow").step_names == ["device", "app"]
        assert other.get_client("partner-api") is not first  # its auth hook held the old pipeline
        assert other.get_client("bystander") is bystander


@pytest.mark.django_db(transaction=True)
class TestOnePublishedChangePerTransaction:
    def test_a_pipeline_saved_with_three_steps_is_one_change(self, configured: str) -> None:
        before = generation()
        with transaction.atomic():
            flow = PipelineDefinition.objects.create(name="flow")
            for order, step in enumerate(("device", "app", "user")):
                PipelineStep.objects.create(pipeline=flow, name=step, url=f"{API}/{step}", order=order)
        assert generation() == before + 1
        spec = registry_module.requestforge_settings.spec
        assert read_changes(spec, str(before), str(before + 1)) == Changes.of(pipelines=["flow"])

    def test_every_save_outside_a_transaction_is_its_own_change(self, configured: str) -> None:
        before = generation()
        ClientDefinition.objects.create(name="a", base_url=API)
        ClientDefinition.objects.create(name="b", base_url=API)
        assert generation() == before + 2

    def test_a_rolled_back_transaction_publishes_nothing(self, configured: str) -> None:
        before = generation()
        with pytest.raises(RuntimeError), transaction.atomic():
            ClientDefinition.objects.create(name="a", base_url=API)
            raise RuntimeError("rolled back")
        assert generation() == before
        with transaction.atomic():
            ClientDefinition.objects.create(name="b", base_url=API)
        assert generation() == before + 1
        spec = registry_module.requestforge_settings.spec
        assert read_changes(spec, str(before), str(before + 1)) == Changes.of(clients=["b"])

    def test_a_change_in_a_rolled_back_savepoint_does_not_take_the_outer_ones_with_it(self, configured: str) -> None:
        before = generation()
        with transaction.atomic():
            ClientDefinition.objects.create(name="outer", base_url=API)
            with pytest.raises(RuntimeError), transaction.atomic():
                ClientDefinition.objects.create(name="inner", base_url=API)
                raise RuntimeError("savepoint rolled back")
            ClientDefinition.objects.create(name="after", base_url=API)
        spec = registry_module.requestforge_settings.spec
        assert read_changes(spec, str(before), str(generation())).clients == {"outer", "after"}


def admin_pipeline_post(steps: list[str]) -> dict[str, str]:
    """The admin's add form of pipeline ``flow`` with ``steps`` as inline rows."""
    data = {
        "name": "flow",
        "is_active": "on",
        "refresh_from_step": "",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for index, step in enumerate(steps):
        row = {"order": str(index), "name": step, "fetcher": "body", "url": f"{API}/{step}", "method": "POST", "headers": "{}"}
        row |= {"data": "", "json": "", "params": "{}", "token_header": "", "token_field": "access_token"}
        row |= {"expires_in_field": "expires_in", "ttl": "", "depends_on": "[]"}
        data.update({f"steps-{index}-{key}": value for key, value in row.items()})
    return data


@pytest.mark.django_db(transaction=True)
def test_saving_a_pipeline_with_three_steps_in_the_admin_is_one_change(configured: str, admin_client: Any) -> None:
    from django.urls import reverse

    before = generation()
    response = admin_client.post(reverse("admin:requestforge_django_pipelinedefinition_add"), admin_pipeline_post(["a", "b", "c"]))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert PipelineStep.objects.filter(pipeline__name="flow").count() == 3
    assert generation() == before + 1


@pytest.mark.django_db(transaction=True)
class TestWhenTheLogCannotTell:
    def test_a_process_too_far_behind_forgets_everything(self, configured: str) -> None:
        ClientDefinition.objects.create(name="a", base_url=API)
        other = Registry()
        client = other.get_client("a")
        spec = registry_module.requestforge_settings.spec
        caches[spec.cache].set(generation_key(spec), generation() + CHANGE_LOG_SIZE + 1, timeout=None)
        assert other.get_client("a") is not client

    def test_a_missing_entry_forgets_everything(self, configured: str) -> None:
        ClientDefinition.objects.create(name="a", base_url=API)
        other = Registry()
        client = other.get_client("a")
        bump_generation(clients=["unrelated"])
        assert other.get_client("a") is client
        spec = registry_module.requestforge_settings.spec
        caches[spec.cache].incr(generation_key(spec))  # counted, but its entry never written (or expired)
        assert other.get_client("a") is not client

    def test_a_bump_without_names_forgets_everything(self, configured: str) -> None:
        ClientDefinition.objects.create(name="a", base_url=API)
        other = Registry()
        client = other.get_client("a")
        bump_generation()
        assert other.get_client("a") is not client


def test_a_number_taken_by_another_process_moves_the_change_to_the_next_one(settings: Any) -> None:
    """Two processes given the same number by a non-atomic ``incr`` (database or file cache) both get logged."""
    settings.REQUESTFORGE = {"KEY_PREFIX": f"rf-{uuid.uuid4().hex[:8]}"}
    spec = registry_module.requestforge_settings.spec
    cache = caches[spec.cache]
    assert publish_changes(spec, Changes.of(clients=["a"])) == "1"
    cache.add(change_key(spec, 2), Changes.of(clients=["b"]).to_entry())  # the other process claimed 2 first
    assert publish_changes(spec, Changes.of(clients=["c"])) == "3"
    assert read_changes(spec, "1", "3") == Changes.of(clients=["b", "c"])
    assert read_changes(spec, None, "3").clients == {"a", "b", "c"}


@pytest.mark.django_db(transaction=True)
class TestNobodyWaits:
    @pytest.fixture
    def held_load(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
        """Loading client ``t2`` stops until ``release`` is set (``entered`` tells it started)."""
        entered, release = threading.Event(), threading.Event()
        original = models.database_client

        def held(name: str) -> Any:
            raw = original(name)
            if name == "t2" and not entered.is_set():  # the first read only: the saving process reads it too
                entered.set()
                assert release.wait(10)
            return raw

        monkeypatch.setattr(models, "database_client", held)
        yield entered, release
        release.set()

    def test_a_slow_build_does_not_hold_the_callers_of_built_clients(
        self, configured: str, held_load: tuple[threading.Event, threading.Event]
    ) -> None:
        entered, release = held_load
        tenants(4)
        other = Registry()
        kept = other.get_client("t1")
        builder = threading.Thread(target=lambda: (other.get_client("t2"), connections.close_all()))
        builder.start()
        assert entered.wait(10)
        bump_generation(clients=["t3"])  # a change to poll, while t2 is being built
        served: list[object] = []
        caller = threading.Thread(target=lambda: served.append(other.get_client("t1")))
        caller.start()
        caller.join(10)
        finished = not caller.is_alive()
        release.set()
        builder.join(10)
        assert finished, "a caller of a built client waited for another name's build"
        assert served == [kept]

    def test_a_build_that_read_a_definition_before_its_change_is_not_kept(
        self, configured: str, held_load: tuple[threading.Event, threading.Event]
    ) -> None:
        entered, release = held_load
        tenants(4)
        other = Registry()
        other.get_client("t1")
        built: list[object] = []
        builder = threading.Thread(target=lambda: (built.append(other.get_client("t2")), connections.close_all()))
        builder.start()
        assert entered.wait(10)
        row = ClientDefinition.objects.get(name="t2")
        row.headers = {"X-Version": "2"}
        row.save()
        other.get_client("t1")  # polls: t2 changed while it was being read
        release.set()
        builder.join(10)
        assert built and "X-Version" not in built[0].config.default_headers  # handed to its caller as read
        assert other.get_client("t2").config.default_headers["X-Version"] == "2"  # but not kept


@pytest.mark.django_db
@pytest.mark.parametrize("backend", ["locmem", "redis", "db"])
def test_changes_by_name_on_every_cache_backend(
    backend: str, settings: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counter and log work where ``incr`` is atomic (LocMem, Redis) and where it is not (the database cache)."""
    alias = {"locmem": "default", "redis": "redis_cache", "db": "db_cache"}[backend]
    cache_alias = alias if alias == "default" else request.getfixturevalue(alias)
    settings.REQUESTFORGE = {
        "CACHE": cache_alias,
        "KEY_PREFIX": f"rf-{uuid.uuid4().hex[:8]}",
        "CLIENTS": {"kept": {"BASE_URL": API}, "changed": {"BASE_URL": API}},
    }
    monkeypatch.setattr(registry_module, "GENERATION_CHECK_INTERVAL", 0.0)
    other = Registry()
    kept, changed = other.get_client("kept"), other.get_client("changed")
    assert bump_generation(clients=["changed"]) == "1"
    assert bump_generation(credentials=["unused"]) == "2"
    assert other.get_client("kept") is kept
    assert other.get_client("changed") is not changed
    assert other.definitions().generation == "2"
