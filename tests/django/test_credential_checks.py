"""Checks about credentials: ``requestforge.W008`` (a CREDENTIAL that names no active row) and E009 for empty keys.

``requestforge.W008`` is a database check (``manage.py check --database default``): a
settings client whose ``AUTH["CREDENTIAL"]`` does not exist or is inactive used to be
found only when ``get_client`` raised. ``requestforge.E009`` now also covers an
``ENCRYPTION_KEYS`` value or entry that is empty, which is what an unset or empty
environment variable gives; it used to be reported as E007 ("not a Fernet key").
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import Error, Warning, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from requestforge_django.checks import CHECK_TAG
from requestforge_django.http.exceptions import ConfigurationError
from requestforge_django.models import ClientDefinition, Credential
from requestforge_django.registry import get_client
from tests.support.app_tables import without_app_tables

KEY = "pmIUQnmBvqvM_VrE6S4HdmWZNuhK8fKOEEIIQHMSrqk="  # the tests-only key of tests/settings.py
W008 = "requestforge.W008"
E009 = "requestforge.E009"

SETTINGS_CLIENTS: dict[str, Any] = {
    "erp": {"BASE_URL": "https://erp.example.com", "AUTH": {"TYPE": "bearer", "CREDENTIAL": "erp-prod"}},
    "crm": {"BASE_URL": "https://crm.example.com", "AUTH": {"TYPE": "basic", "CREDENTIAL": "crm-prod"}},
    "shop": {
        "BASE_URL": "https://shop.example.com",
        "AUTH": {"TYPE": "client_credentials", "TOKEN_URL": "https://auth.example.com/token", "CREDENTIAL": "shop-prod"},
    },
    "plain": {"BASE_URL": "https://plain.example.com"},
}


def messages_with(check_id: str, *, databases: list[str] | None) -> list[Any]:
    """The requestforge messages with ``check_id``, run through Django's check registry."""
    return [m for m in run_checks(tags=[CHECK_TAG], databases=databases) if m.id == check_id]


# -- requestforge.W008 ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_w008_names_each_settings_client_whose_credential_is_missing_or_inactive() -> None:
    Credential.objects.create(name="crm-prod", username="u", password="p", is_active=False)
    Credential.objects.create(name="shop-prod", client_id="id", client_secret="s")
    with override_settings(REQUESTFORGE={"ENCRYPTION_KEYS": [KEY], "CLIENTS": SETTINGS_CLIENTS}):
        assert messages_with(W008, databases=None) == []  # a plain `check` never opens a connection
        messages = messages_with(W008, databases=["default"])
        assert [(type(m), m.obj) for m in messages] == [(Warning, 'REQUESTFORGE client "crm"'), (Warning, 'REQUESTFORGE client "erp"')]
        crm, erp = messages
        assert crm.msg.startswith('REQUESTFORGE["CLIENTS"]["crm"]["AUTH"]["CREDENTIAL"] names credential "crm-prod", which is not active')
        assert erp.msg.startswith(
            'REQUESTFORGE["CLIENTS"]["erp"]["AUTH"]["CREDENTIAL"] names credential "erp-prod", which does not exist in database "default"'
        )
        assert 'get_client("erp") raises ConfigurationError' in erp.msg
        assert "test database" in erp.hint  # why it is a warning: a new database starts empty
        # What the check announces is what get_client does.
        for name in ("crm", "erp"):
            with pytest.raises(ConfigurationError, match="does not exist or is not active"):
                get_client(name)
        # `manage.py check --database default --fail-level WARNING` fails with it.
        with pytest.raises(SystemCheckError, match=r'requestforge\.W008.*names credential "erp-prod"'):
            call_command("check", "--database", "default", "--tag", CHECK_TAG, "--fail-level", "WARNING")

    Credential.objects.create(name="erp-prod", token="t")
    Credential.objects.filter(name="crm-prod").update(is_active=True)
    with override_settings(REQUESTFORGE={"ENCRYPTION_KEYS": [KEY], "CLIENTS": SETTINGS_CLIENTS}):
        assert messages_with(W008, databases=["default"]) == []
        call_command("check", "--database", "default", "--tag", CHECK_TAG)


@pytest.mark.django_db
def test_w008_ignores_auth_types_without_credential_and_malformed_entries() -> None:
    setting = {
        "ENCRYPTION_KEYS": [KEY],
        "CLIENTS": {
            "piped": {"BASE_URL": "https://p.example.com", "AUTH": {"TYPE": "pipeline", "PIPELINE": "p", "CREDENTIAL": "nope"}},
            "odd": {"BASE_URL": "https://o.example.com", "AUTH": {"TYPE": "bearer", "CREDENTIAL": 42}},
            "broken": "not a dict",
        },
        "PIPELINES": {"p": {"STEPS": [{"NAME": "a", "URL": "https://a.example.com/token"}]}},
    }
    with override_settings(REQUESTFORGE=setting):
        assert messages_with(W008, databases=["default"]) == []  # W003 / E003 / E001 say what is wrong there


@pytest.mark.django_db
def test_w008_reports_an_active_client_definition_whose_credential_is_inactive() -> None:
    inactive = Credential.objects.create(name="legacy", token="t", is_active=False, allowed_origins="https://legacy.example.com")
    active = Credential.objects.create(name="current", token="t", allowed_origins="https://current.example.com")
    broken = ClientDefinition.objects.create(
        name="legacy-api", base_url="https://legacy.example.com", auth_type="bearer", credential=inactive
    )
    ClientDefinition.objects.create(name="current-api", base_url="https://current.example.com", auth_type="bearer", credential=active)
    ClientDefinition.objects.create(
        name="off", base_url="https://legacy.example.com", auth_type="bearer", credential=inactive, is_active=False
    )
    with override_settings(REQUESTFORGE={"ENCRYPTION_KEYS": [KEY]}):
        messages = messages_with(W008, databases=["default"])
        assert [(m.obj, m.msg) for m in messages] == [
            (
                'REQUESTFORGE client "legacy-api"',
                f'Client definition "legacy-api" (pk={broken.pk}) uses credential "legacy", which is not active; '
                'get_client("legacy-api") raises ConfigurationError and nothing is sent.',
            )
        ]
        with pytest.raises(ConfigurationError, match="does not exist or is not active"):
            get_client("legacy-api")


@pytest.mark.django_db(transaction=True)
def test_w008_is_silent_before_migrate_so_migrate_can_run() -> None:
    """No credential table yet: nothing can be looked up, and ``migrate`` (which runs the database checks) must not be blocked."""

    with without_app_tables(), override_settings(REQUESTFORGE={"ENCRYPTION_KEYS": [KEY], "CLIENTS": SETTINGS_CLIENTS}):
        assert messages_with(W008, databases=["default"]) == []


# -- requestforge.E009 for empty keys ------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "path"),
    [
        ([""], 'REQUESTFORGE["ENCRYPTION_KEYS"][0]'),  # os.environ.get("KEYS", "").split(",")
        ([" "], 'REQUESTFORGE["ENCRYPTION_KEYS"][0]'),
        ([None], 'REQUESTFORGE["ENCRYPTION_KEYS"][0]'),  # [os.environ.get("KEY")]
        ([b""], 'REQUESTFORGE["ENCRYPTION_KEYS"][0]'),
        ([KEY, "\n"], 'REQUESTFORGE["ENCRYPTION_KEYS"][1]'),
        ("", 'REQUESTFORGE["ENCRYPTION_KEYS"]'),  # os.environ.get("KEYS", "")
        ("   ", 'REQUESTFORGE["ENCRYPTION_KEYS"]'),
        (None, 'REQUESTFORGE["ENCRYPTION_KEYS"]'),  # os.environ.get("KEYS")
    ],
)
@pytest.mark.parametrize("clients", [{}, {"erp": SETTINGS_CLIENTS["erp"]}], ids=["nothing-needs-keys", "credential-client"])
def test_e009_for_an_empty_key_value_or_entry_not_e007(keys: Any, path: str, clients: dict[str, Any]) -> None:
    with override_settings(REQUESTFORGE={"ENCRYPTION_KEYS": keys, "CLIENTS": clients}):
        messages = run_checks(tags=[CHECK_TAG])
    about_keys = [m for m in messages if '["ENCRYPTION_KEYS"]' in m.msg]
    assert [(type(m), m.id) for m in about_keys] == [(Error, "requestforge.E009")], [(m.id, m.msg) for m in messages]
    message = about_keys[0]
    assert message.msg.startswith(f"{path} is empty (an unset or empty environment variable?)")
    assert "Fernet.generate_key()" in message.hint


def test_a_value_that_is_not_a_key_is_still_e007_and_a_non_list_still_e003() -> None:
    for keys, check_id in ((["not-a-key"], "requestforge.E007"), ([KEY, "x" * 44], "requestforge.E007"), (42, "requestforge.E003")):
        with override_settings(REQUESTFORGE={"ENCRYPTION_KEYS": keys}):
            assert [m.id for m in run_checks(tags=[CHECK_TAG]) if '["ENCRYPTION_KEYS"]' in m.msg] == [check_id], keys
    with override_settings(REQUESTFORGE={"ENCRYPTION_KEYS": []}):
        assert [m for m in run_checks(tags=[CHECK_TAG]) if "ENCRYPTION_KEYS" in m.msg] == []  # nothing needs keys: silent
