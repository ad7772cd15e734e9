"""``requestforge.E009`` (no ENCRYPTION_KEYS although secrets need them) and ``requestforge.E031`` (a name in settings and the database).

Run through Django's check framework; the database parts only with ``databases``
(``manage.py check --database default``), as Django requires of checks that query.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import Error
from django.core.checks.registry import CheckRegistry
from django.test import override_settings

from requestforge_django.checks import CHECK_TAG, check_definition_names, check_encryption_keys, register_database_checks
from requestforge_django.models import ClientDefinition, Credential, PipelineDefinition
from tests.admin.conftest import KEY_A
from tests.support.app_tables import without_app_tables

CREDENTIAL_CLIENT = {"BASE_URL": "https://erp.example.com", "AUTH": {"TYPE": "bearer", "CREDENTIAL": "erp-prod"}}


def run(databases: list[str] | None = None) -> list[Any]:
    """Only this module's checks, through a registry like Django's own."""
    registry = CheckRegistry()
    registry.register(check_encryption_keys, CHECK_TAG)
    registry.register(check_definition_names, CHECK_TAG)
    return registry.run_checks(tags=[CHECK_TAG], databases=databases)


@pytest.mark.parametrize(
    "setting", [{"CLIENTS": {"erp": CREDENTIAL_CLIENT}}, {"ENCRYPTION_KEYS": [], "CLIENTS": {"erp": CREDENTIAL_CLIENT}}]
)
def test_e009_keys_missing_while_a_client_uses_a_credential(setting: dict[str, Any]) -> None:
    with override_settings(REQUESTFORGE=setting):
        messages = run()
    assert [(type(m), m.id) for m in messages] == [(Error, "requestforge.E009")]
    message = messages[0]
    assert 'REQUESTFORGE["ENCRYPTION_KEYS"]' in message.msg and 'client "erp" use' in message.msg
    assert message.obj == "REQUESTFORGE"
    assert "Fernet.generate_key()" in message.hint
    fresh = message.hint.split('["')[2].split('"]')[0]
    assert len(fresh) == 44  # a freshly generated key, ready to paste
    from cryptography.fernet import Fernet

    Fernet(fresh)
    with override_settings(REQUESTFORGE=setting):
        assert run()[0].hint != message.hint  # new each time


@pytest.mark.django_db
def test_e009_keys_missing_while_the_database_holds_secrets() -> None:
    credential = Credential.objects.create(name="erp-prod", client_id="i")
    with override_settings(REQUESTFORGE={}):
        assert run(["default"]) == []  # no secret stored: no key needed yet
    credential.token = "t"
    credential.save()
    with override_settings(REQUESTFORGE={}):
        assert run() == []  # no database access without `databases`
        assert [m.id for m in run(["default"])] == ["requestforge.E009"]
        assert "the database holds encrypted credential secrets" in run(["default"])[0].msg


@pytest.mark.django_db
@pytest.mark.parametrize(
    "setting",
    [
        {},  # nothing needs keys: an absent setting stays valid and silent
        {"ENCRYPTION_KEYS": [KEY_A], "CLIENTS": {"erp": CREDENTIAL_CLIENT}},
        {"ENCRYPTION_KEYS": "not-a-list", "CLIENTS": {"erp": CREDENTIAL_CLIENT}},  # E003's job
        {"ENCRYPTION_KEYS": ["not-a-key"], "CLIENTS": {"erp": CREDENTIAL_CLIENT}},  # E007's job
        ["not", "a", "dict"],  # E001's job
    ],
)
def test_e009_is_not_reported_when_keys_are_set_or_not_needed_or_another_check_covers_it(setting: Any) -> None:
    with override_settings(REQUESTFORGE=setting):
        assert run(["default"]) == []


@pytest.mark.django_db
def test_e031_a_name_defined_in_settings_and_in_the_database() -> None:
    client = ClientDefinition.objects.create(name="erp", base_url="https://erp.example.com")
    ClientDefinition.objects.create(name="only-db", base_url="https://db.example.com")
    pipeline = PipelineDefinition.objects.create(name="partner")
    setting = {
        "ENCRYPTION_KEYS": [KEY_A],
        "CLIENTS": {"erp": {"BASE_URL": "https://erp.example.com"}, "partner": {"BASE_URL": "https://p.example.com"}},
        "PIPELINES": {"partner": {"STEPS": [{"NAME": "a", "URL": "https://a.example.com"}]}},
    }
    with override_settings(REQUESTFORGE=setting):
        assert run() == []  # no database access without `databases`
        messages = run(["default"])
    assert [(type(m), m.id, m.obj) for m in messages] == [
        (Error, "requestforge.E031", 'REQUESTFORGE client "erp"'),
        (Error, "requestforge.E031", 'REQUESTFORGE pipeline "partner"'),
    ]
    assert f'REQUESTFORGE["CLIENTS"]["erp"] is also defined in the database (client definition pk={client.pk})' in messages[0].msg
    assert f"pipeline definition pk={pipeline.pk}" in messages[1].msg


@pytest.mark.django_db(transaction=True)
def test_e031_and_e009_tolerate_missing_tables() -> None:
    """Before ``migrate``: the tables do not exist, so nothing is stored and nothing is reported."""

    with (
        without_app_tables(),
        override_settings(REQUESTFORGE={"CLIENTS": {"erp": {"BASE_URL": "https://erp.example.com"}}, "PIPELINES": {}}),
    ):
        assert run(["default"]) == []


def test_register_is_idempotent_and_tags_the_checks() -> None:
    from django.core.checks.registry import registry

    before = set(registry.registered_checks)
    try:
        register_database_checks()
        register_database_checks()
        added = set(registry.registered_checks) - before
        assert added <= {check_encryption_keys, check_definition_names}
        assert check_encryption_keys in registry.registered_checks and check_definition_names in registry.registered_checks
        assert {CHECK_TAG, "database"} <= set(check_encryption_keys.tags)  # type: ignore[attr-defined]
    finally:
        registry.registered_checks = before  # apps.ready() decides whether they are registered for the other tests
