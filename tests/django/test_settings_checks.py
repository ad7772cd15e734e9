"""The REQUESTFORGE setting: system checks (one test per id), the settings object, reloads, app wiring.

Every check id is fed a bad setting through ``override_settings`` and run through
Django's real check framework (``run_checks(tags=["requestforge"])``), asserting the id
and that the message names the client or pipeline and the key.
"""

from __future__ import annotations

import copy
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import Error, Warning, run_checks
from django.core.checks.registry import registry
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import Signal
from django.test import override_settings

from requestforge_django.apps import SETTINGS_RELOAD_UID
from requestforge_django.checks import CHECK_TAG, check_settings
from requestforge_django.setting.conf import requestforge_settings
from requestforge_django.setting.ids import CHECKS, Level
from requestforge_django.setting.keys import DEFAULTS
from requestforge_django.setting.specs import AuthSpec, ClientSpec, PipelineSpec, SettingsSpec
from requestforge_django.setting.validate import (
    parse_client,
    parse_pipeline,
    parse_settings,
    validate_client,
    validate_pipeline,
    validate_settings,
)
from requestforge_django.tokens import TokenFetcherInterface


class DummyFetcher(TokenFetcherInterface):
    """An importable custom fetcher class for FETCHER dotted paths."""

    def fetch(self, context: Any) -> Any:  # pragma: no cover - never called by the checks
        raise NotImplementedError


FERNET_KEY = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="
SECRET = "SUPER-SECRET-VALUE-42"
SHARED_CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "tokens": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0"},
}

#: The DESIGN.md example with real-looking values.
FULL: dict[str, Any] = {
    "CACHE": "tokens",
    "KEY_PREFIX": "requestforge",
    "ENCRYPTION_KEYS": [FERNET_KEY],
    "REFRESH_AHEAD": 60,
    "CLIENTS": {
        "billing": {
            "BASE_URL": "https://billing.example.com",
            "TIMEOUT": 10.0,
            "HEADERS": {"User-Agent": "shop/1.0"},
            "VERIFY_SSL": True,
            "RETRY": {
                "STRATEGY": "exponential",
                "MAX_RETRIES": 3,
                "BASE_DELAY": 0.5,
                "MAX_DELAY": 30.0,
                "RETRY_ON_STATUS": [429, 502, 503, 504],
            },
            "CIRCUIT_BREAKER": {"FAILURE_THRESHOLD": 5, "RECOVERY_TIMEOUT": 30},
            "RATE_LIMIT": {"RATE": 10, "BURST": 20},
            "AUTH": {
                "TYPE": "client_credentials",
                "TOKEN_URL": "https://auth.example.com/oauth/token",
                "CLIENT_ID": "shop-backend",
                "CLIENT_SECRET": SECRET,
                "SCOPE": "invoices",
            },
            "HOOKS": ["requestforge_django.http.CorrelationIdHook"],
        },
        "partner": {"BASE_URL": "https://api.partner.com/v2", "AUTH": {"TYPE": "pipeline", "PIPELINE": "partner"}},
        "legacy": {"BASE_URL": "https://legacy.example.com", "AUTH": {"TYPE": "api_key", "KEY": SECRET, "HEADER": "X-API-Key"}},
        "erp": {
            "BASE_URL": "https://erp.example.com/api",
            "AUTH": {"TYPE": "client_credentials", "TOKEN_URL": "https://login.erp.example.com/oauth2/token", "CREDENTIAL": "erp-prod"},
        },
    },
    "PIPELINES": {
        "partner": {
            "STEPS": [
                {
                    "NAME": "device_token",
                    "FETCHER": "header",
                    "URL": "https://auth.partner.com/v1/device/register",
                    "METHOD": "POST",
                    "HEADERS": {"X-Device-ID": "device-123"},
                    "TOKEN_HEADER": "X-Device-Token",
                    "TTL": 2592000,
                },
                {
                    "NAME": "app_token",
                    "FETCHER": "body",
                    "URL": "https://auth.partner.com/v1/app/token",
                    "DATA": {"client_id": "app-id"},
                    "TOKEN_FIELD": "access_token",
                    "HEADERS": {"X-Device-Token": "{device_token}"},
                    "DEPENDS_ON": ["device_token"],
                    "TTL": 3600,
                },
            ]
        },
    },
}


def full(**changes: Any) -> dict[str, Any]:
    """A deep copy of FULL with top-level keys replaced."""
    setting = copy.deepcopy(FULL)
    setting.update(changes)
    return setting


def with_client(name: str, client: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"CLIENTS": {name: client}, **top}


def with_steps(steps: list[dict[str, Any]], name: str = "partner", **pipeline: Any) -> dict[str, Any]:
    return {"PIPELINES": {name: {"STEPS": steps, **pipeline}}}


def run(setting: Any, caches: dict[str, Any] | None = None) -> list[Any]:
    """Run the requestforge checks with ``REQUESTFORGE=setting`` (and shared caches, unless given)."""
    with override_settings(REQUESTFORGE=setting, CACHES=caches or SHARED_CACHES):
        return run_checks(tags=[CHECK_TAG])


def reported(setting: Any, check_id: str, *fragments: str, caches: dict[str, Any] | None = None) -> Any:
    """The message with ``check_id`` whose text contains every fragment; fails listing what was reported."""
    messages = run(setting, caches)
    for message in messages:
        if message.id == check_id and all(f in message.msg for f in fragments):
            return message
    listing = "\n".join(f"{m.id}: {m.msg}" for m in messages) or "(nothing)"
    pytest.fail(f"no {check_id} containing {fragments!r}; reported:\n{listing}")


def ids(setting: Any, caches: dict[str, Any] | None = None) -> set[str]:
    return {m.id for m in run(setting, caches)}


BILLING_AUTH = '["CLIENTS"]["billing"]["AUTH"]'
STEPS = '["PIPELINES"]["partner"]["STEPS"]'


# -- a valid setting ------------------------------------------------------------------------


def test_full_design_example_produces_no_messages_at_all() -> None:
    assert run(FULL) == []


def test_full_design_example_on_locmem_cache_only_warns_w001() -> None:
    messages = run(full(CACHE="default"))
    assert [(m.id, type(m)) for m in messages] == [("requestforge.W001", Warning)]


def test_missing_setting_is_valid_and_silent() -> None:
    with override_settings():
        from django.conf import settings

        del settings.REQUESTFORGE
        assert run_checks(tags=[CHECK_TAG]) == []


def test_check_message_obj_names_the_client_and_the_check_is_an_error() -> None:
    message = reported(with_client("billing", {"BASE_URL": "ftp://billing"}), "requestforge.E003", '["CLIENTS"]["billing"]["BASE_URL"]')
    assert isinstance(message, Error)
    assert message.obj == 'REQUESTFORGE client "billing"'
    assert "(requestforge.E003)" in str(message)


# -- one test per check id ---------------------------------------------------------------------


def test_e001_not_a_dict() -> None:
    message = reported(["CLIENTS"], "requestforge.E001", "REQUESTFORGE must be a dict, got list")
    assert message.obj == "REQUESTFORGE"


@pytest.mark.parametrize(
    ("setting", "key", "suggestion"),
    [
        ({"REFRESH_AHAED": 10}, 'REQUESTFORGE["REFRESH_AHAED"]', "REFRESH_AHEAD"),
        (with_client("billing", {"BASE_URL": "https://b.example.com", "TIMEOTU": 3}), '["CLIENTS"]["billing"]["TIMEOTU"]', "TIMEOUT"),
        (with_client("billing", {"BASE_URL": "https://b.example.com", "base_url": "x"}), '["billing"]["base_url"]', "BASE_URL"),
        (
            with_client("billing", {"BASE_URL": "https://b.example.com", "RETRY": {"MAX_RETRY": 3}}),
            '["billing"]["RETRY"]["MAX_RETRY"]',
            "MAX_RETRIES",
        ),
        (
            with_client("billing", {"BASE_URL": "https://b.example.com", "CIRCUIT_BREAKER": {"FAILURE_TRESHOLD": 3}}),
            '["CIRCUIT_BREAKER"]["FAILURE_TRESHOLD"]',
            "FAILURE_THRESHOLD",
        ),
        (
            with_client("billing", {"BASE_URL": "https://b.example.com", "RATE_LIMIT": {"RATE": 1, "BRUST": 2}}),
            '["RATE_LIMIT"]["BRUST"]',
            "BURST",
        ),
        (
            with_client("billing", {"BASE_URL": "https://b.example.com", "AUTH": {"TYPE": "bearer", "TOKEN": SECRET, "TOKN_URL": "x"}}),
            f'{BILLING_AUTH}["TOKN_URL"]',
            "TOKEN_URL",
        ),
        (
            {"PIPELINES": {"partner": {"STEPS": [{"NAME": "a", "URL": "https://a.example.com"}], "STEP": []}}},
            '["partner"]["STEP"]',
            "STEPS",
        ),
        (with_steps([{"NAME": "a", "URL": "https://a.example.com", "DEPEND_ON": []}]), f'{STEPS}[0]["DEPEND_ON"]', "DEPENDS_ON"),
    ],
)
def test_e002_unknown_key_with_did_you_mean(setting: dict[str, Any], key: str, suggestion: str) -> None:
    message = reported(setting, "requestforge.E002", key, f'did you mean "{suggestion}"?')
    assert "Known keys here" in message.hint


def test_e002_unknown_key_without_a_close_match_ends_plainly() -> None:
    message = reported({"ZZZZZZ": 1}, "requestforge.E002", 'REQUESTFORGE["ZZZZZZ"] is not a known key.')
    assert "did you mean" not in message.msg


@pytest.mark.parametrize(
    ("client", "key", "fragment"),
    [
        ({"BASE_URL": "ftp://billing.example.com"}, '["billing"]["BASE_URL"]', "http:// or https://"),
        ({"BASE_URL": "billing.example.com"}, '["billing"]["BASE_URL"]', "http:// or https://"),
        ({"BASE_URL": 42}, '["billing"]["BASE_URL"]', "got int"),
        ({"BASE_URL": "https://b.example.com", "TIMEOUT": 0}, '["billing"]["TIMEOUT"]', "> 0"),
        ({"BASE_URL": "https://b.example.com", "TIMEOUT": "10"}, '["billing"]["TIMEOUT"]', "got str"),
        ({"BASE_URL": "https://b.example.com", "TIMEOUT": (1, -1)}, '["billing"]["TIMEOUT"]', "(connect, read)"),
        ({"BASE_URL": "https://b.example.com", "HEADERS": ["User-Agent"]}, '["billing"]["HEADERS"]', "must be a dict"),
        ({"BASE_URL": "https://b.example.com", "HEADERS": {"X-Retries": 3}}, '["billing"]["HEADERS"]["X-Retries"]', "must be a string"),
        ({"BASE_URL": "https://b.example.com", "VERIFY_SSL": False}, "", ""),  # False is valid (W004), not E003
        ({"BASE_URL": "https://b.example.com", "VERIFY_SSL": 1}, '["billing"]["VERIFY_SSL"]', "CA bundle"),
        ({"BASE_URL": "https://b.example.com", "RETRY": 3}, '["billing"]["RETRY"]', "must be a dict"),
        (
            {"BASE_URL": "https://b.example.com", "RETRY": {"STRATEGY": "exponentail"}},
            '["RETRY"]["STRATEGY"]',
            'did you mean "exponential"',
        ),
        ({"BASE_URL": "https://b.example.com", "RETRY": {"MAX_RETRIES": -1}}, '["RETRY"]["MAX_RETRIES"]', "integer >= 0"),
        ({"BASE_URL": "https://b.example.com", "RETRY": {"BASE_DELAY": 5, "MAX_DELAY": 1}}, '["RETRY"]["MAX_DELAY"]', ">= BASE_DELAY"),
        ({"BASE_URL": "https://b.example.com", "RETRY": {"RETRY_ON_STATUS": [429, 700]}}, '["RETRY"]["RETRY_ON_STATUS"]', "100-599"),
        ({"BASE_URL": "https://b.example.com", "RETRY": {"JITTER": "yes"}}, '["RETRY"]["JITTER"]', "True or False"),
        ({"BASE_URL": "https://b.example.com", "CIRCUIT_BREAKER": {"FAILURE_THRESHOLD": 0}}, '["FAILURE_THRESHOLD"]', "integer >= 1"),
        ({"BASE_URL": "https://b.example.com", "CIRCUIT_BREAKER": {"RECOVERY_TIMEOUT": -5}}, '["RECOVERY_TIMEOUT"]', "> 0"),
        ({"BASE_URL": "https://b.example.com", "RATE_LIMIT": {"RATE": 0}}, '["RATE_LIMIT"]["RATE"]', "> 0"),
        ({"BASE_URL": "https://b.example.com", "RATE_LIMIT": {"RATE": 5, "BURST": 1.5}}, '["RATE_LIMIT"]["BURST"]', "integer >= 1"),
        ({"BASE_URL": "https://b.example.com", "HOOKS": "myapp.Hook"}, '["billing"]["HOOKS"]', "list of strings"),
        ({"BASE_URL": "https://b.example.com", "MAX_REDIRECTS": -1}, '["billing"]["MAX_REDIRECTS"]', "integer >= 0"),
    ],
)
def test_e003_wrong_type_names_client_and_key(client: dict[str, Any], key: str, fragment: str) -> None:
    if not key:
        assert "requestforge.E003" not in ids(with_client("billing", client))
        return
    reported(with_client("billing", client), "requestforge.E003", "REQUESTFORGE", key, fragment)


@pytest.mark.parametrize(
    ("setting", "key", "fragment"),
    [
        ({"REFRESH_AHEAD": -1}, 'REQUESTFORGE["REFRESH_AHEAD"]', ">= 0"),
        ({"REFRESH_AHEAD": "60"}, 'REQUESTFORGE["REFRESH_AHEAD"]', "got str"),
        ({"LOCK_TIMEOUT": 0}, 'REQUESTFORGE["LOCK_TIMEOUT"]', "> 0"),
        ({"KEY_PREFIX": "my prefix"}, 'REQUESTFORGE["KEY_PREFIX"]', "whitespace"),
        ({"CLIENTS": []}, 'REQUESTFORGE["CLIENTS"]', "must be a dict"),
        ({"ENCRYPTION_KEYS": FERNET_KEY}, 'REQUESTFORGE["ENCRYPTION_KEYS"]', "list of Fernet keys"),
        ({"WARM": "billing"}, 'REQUESTFORGE["WARM"]', "list of strings"),
        ({"PIPELINES": {"partner": {"STEPS": []}}}, '["PIPELINES"]["partner"]["STEPS"]', "at least one step"),
        (with_steps([{"NAME": "a", "URL": "https://a.example.com", "METHOD": "FETCH"}]), f'{STEPS}[0]["METHOD"]', '"GET"'),
        (with_steps([{"NAME": "a", "URL": "https://a.example.com", "TTL": 0}]), f'{STEPS}[0]["TTL"]', "> 0"),
        (with_steps([{"NAME": "a", "URL": "https://a.example.com", "TTL": "1h"}]), f'{STEPS}[0]["TTL"]', "got str"),
        (with_steps([{"NAME": "a", "URL": "auth.example.com/token"}]), f'{STEPS}[0]["URL"]', "http:// or https://"),
        (with_steps([{"NAME": "a", "URL": "https://a.example.com", "DEPENDS_ON": "b"}]), f'{STEPS}[0]["DEPENDS_ON"]', "list of strings"),
    ],
)
def test_e003_wrong_type_elsewhere(setting: dict[str, Any], key: str, fragment: str) -> None:
    reported(setting, "requestforge.E003", key, fragment)


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        (with_client("billing", {"TIMEOUT": 3}), 'REQUESTFORGE["CLIENTS"]["billing"]["BASE_URL"] is required'),
        (with_client("billing", {"BASE_URL": "https://b.example.com", "AUTH": {"TOKEN": "x"}}), f'{BILLING_AUTH}["TYPE"] is required'),
        (with_client("billing", {"BASE_URL": "https://b.example.com", "RATE_LIMIT": {"BURST": 3}}), '["RATE_LIMIT"]["RATE"] is required'),
        ({"PIPELINES": {"partner": {}}}, 'REQUESTFORGE["PIPELINES"]["partner"]["STEPS"] is required'),
        (with_steps([{"URL": "https://a.example.com"}]), f'{STEPS}[0]["NAME"] is required'),
        (with_steps([{"NAME": "a"}]), f'{STEPS}[0]["URL"] is required'),
        (with_steps([{"NAME": "a", "FETCHER": "header", "URL": "https://a.example.com"}]), f'{STEPS}[0]["TOKEN_HEADER"] is required'),
    ],
)
def test_e004_required_key_missing(setting: dict[str, Any], key: str) -> None:
    reported(setting, "requestforge.E004", key)


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        (
            with_client(
                "erp",
                {
                    "BASE_URL": "https://erp.example.com",
                    "AUTH": {
                        "TYPE": "client_credentials",
                        "TOKEN_URL": "https://erp.example.com/t",
                        "CREDENTIAL": "erp-prod",
                        "CLIENT_SECRET": SECRET,
                    },
                },
            ),
            'REQUESTFORGE["CLIENTS"]["erp"]["AUTH"]["CLIENT_SECRET"] is set together with CREDENTIAL',
        ),
        (
            with_client(
                "legacy",
                {
                    "BASE_URL": "https://l.example.com",
                    "AUTH": {"TYPE": "api_key", "KEY": SECRET, "HEADER": "X-Key", "QUERY_PARAM": "api_key"},
                },
            ),
            '["legacy"]["AUTH"]["QUERY_PARAM"] is set together with HEADER',
        ),
        (
            with_steps([{"NAME": "a", "URL": "https://a.example.com", "DATA": {"a": "1"}, "JSON": {"a": 1}}]),
            f'{STEPS}[0]["JSON"] is set together with DATA',
        ),
    ],
)
def test_e005_mutually_exclusive_keys(setting: dict[str, Any], key: str) -> None:
    reported(setting, "requestforge.E005", key)


def test_e006_cache_alias_missing_with_did_you_mean() -> None:
    message = reported(full(CACHE="token"), "requestforge.E006", 'REQUESTFORGE["CACHE"]', 'is "token"', 'did you mean "tokens"?')
    assert '"default"' in message.hint


def test_e007_invalid_encryption_key_is_not_shown() -> None:
    message = reported(full(ENCRYPTION_KEYS=[FERNET_KEY, SECRET]), "requestforge.E007", 'REQUESTFORGE["ENCRYPTION_KEYS"][1]')
    assert SECRET not in message.msg
    assert "requestforge.E007" not in {m.id for m in run(full()) if '["ENCRYPTION_KEYS"][0]' in m.msg}


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        (
            {"CLIENTS": {"my billing": {"BASE_URL": "https://b.example.com"}}},
            'REQUESTFORGE["CLIENTS"]["my billing"] has an unusable client name',
        ),
        (
            {"PIPELINES": {"": {"STEPS": [{"NAME": "a", "URL": "https://a.example.com"}]}}},
            'REQUESTFORGE["PIPELINES"][""] has an unusable pipeline name',
        ),
        (
            with_steps([{"NAME": "device-token", "URL": "https://a.example.com"}]),
            f'{STEPS}[0]["NAME"] has an unusable step name "device-token"',
        ),
    ],
)
def test_e008_unusable_names(setting: dict[str, Any], key: str) -> None:
    reported(setting, "requestforge.E008", key)


def test_e010_unknown_auth_type_with_did_you_mean() -> None:
    setting = with_client(
        "billing", {"BASE_URL": "https://b.example.com", "AUTH": {"TYPE": "client_credential", "TOKEN_URL": "https://a.example.com"}}
    )
    message = reported(setting, "requestforge.E010", f'{BILLING_AUTH}["TYPE"]', 'did you mean "client_credentials"?')
    assert "api_key" in message.hint


def test_auth_type_is_case_insensitive() -> None:
    setting = with_client("legacy", {"BASE_URL": "https://l.example.com", "AUTH": {"TYPE": "API_KEY", "KEY": SECRET}})
    assert run(setting) == []
    assert parse_settings(setting).clients["legacy"].auth == AuthSpec(type="api_key", key=SECRET, header="X-API-Key")


AUTH_REQUIREMENTS = [
    ({"TYPE": "client_credentials", "CLIENT_ID": "id", "CLIENT_SECRET": SECRET}, "TOKEN_URL"),
    ({"TYPE": "client_credentials", "TOKEN_URL": "https://a.example.com/t", "CLIENT_ID": "id"}, "CLIENT_SECRET"),
    ({"TYPE": "client_credentials", "TOKEN_URL": "https://a.example.com/t", "CLIENT_SECRET": SECRET}, "CLIENT_ID"),
    ({"TYPE": "password", "TOKEN_URL": "https://a.example.com/t", "USERNAME": "shop"}, "PASSWORD"),
    ({"TYPE": "password", "USERNAME": "shop", "PASSWORD": SECRET}, "TOKEN_URL"),
    ({"TYPE": "bearer"}, "TOKEN"),
    ({"TYPE": "api_key", "HEADER": "X-Key"}, "KEY"),
    ({"TYPE": "basic", "USERNAME": "shop"}, "PASSWORD"),
    ({"TYPE": "basic", "PASSWORD": SECRET}, "USERNAME"),
    ({"TYPE": "pipeline"}, "PIPELINE"),
]


@pytest.mark.parametrize(("auth", "missing"), AUTH_REQUIREMENTS)
def test_e011_missing_key_for_auth_type(auth: dict[str, Any], missing: str) -> None:
    setting = with_client("billing", {"BASE_URL": "https://b.example.com", "AUTH": auth})
    message = reported(setting, "requestforge.E011", f'{BILLING_AUTH}["{missing}"] is required for AUTH TYPE "{auth["TYPE"]}"')
    assert SECRET not in message.msg


@pytest.mark.parametrize(
    "auth",
    [
        {"TYPE": "client_credentials", "TOKEN_URL": "https://a.example.com/t", "CREDENTIAL": "erp"},
        {"TYPE": "password", "TOKEN_URL": "https://a.example.com/t", "CREDENTIAL": "erp"},
        {"TYPE": "bearer", "CREDENTIAL": "erp"},
        {"TYPE": "api_key", "CREDENTIAL": "erp", "QUERY_PARAM": "api_key"},
        {"TYPE": "basic", "CREDENTIAL": "erp"},
        {"TYPE": "password", "TOKEN_URL": "https://a.example.com/t", "USERNAME": "u", "PASSWORD": SECRET, "CLIENT_ID": "public"},
    ],
)
def test_credential_or_inline_secrets_satisfy_each_auth_type(auth: dict[str, Any]) -> None:
    client = {"BASE_URL": "https://b.example.com", "AUTH": auth}
    assert ids(with_client("billing", client, ENCRYPTION_KEYS=[FERNET_KEY])) <= {"requestforge.W001"}


def test_e012_auth_pipeline_not_defined_with_did_you_mean() -> None:
    setting = full()
    setting["CLIENTS"]["partner"]["AUTH"]["PIPELINE"] = "partners"
    message = reported(
        setting,
        "requestforge.E012",
        'REQUESTFORGE["CLIENTS"]["partner"]["AUTH"]["PIPELINE"]',
        'names pipeline "partners"',
        'did you mean "partner"?',
    )
    assert message.obj == 'REQUESTFORGE client "partner"'


@pytest.mark.parametrize(
    ("setting", "key", "target"),
    [
        (
            with_client("billing", {"BASE_URL": "https://b.example.com", "HOOKS": ["myapp.hooks.AuditHook"]}),
            '["billing"]["HOOKS"][0]',
            "myapp.hooks.AuditHook",
        ),
        (
            with_steps([{"NAME": "a", "URL": "https://a.example.com", "FETCHER": "myapp.fetchers.Signed"}]),
            f'{STEPS}[0]["FETCHER"]',
            "myapp.fetchers.Signed",
        ),
        (
            with_client("billing", {"BASE_URL": "https://b.example.com", "HOOKS": ["requestforge_django.http.NoSuchHook"]}),
            '["billing"]["HOOKS"][0]',
            "requestforge_django.http.NoSuchHook",
        ),
    ],
)
def test_e013_unimportable_hook_or_fetcher(setting: dict[str, Any], key: str, target: str) -> None:
    reported(setting, "requestforge.E013", key, f'cannot import "{target}"')


@pytest.mark.parametrize(
    ("setting", "key", "fragment"),
    [
        (
            with_client("billing", {"BASE_URL": "https://b.example.com", "HOOKS": ["requestforge_django.http.HttpClient"]}),
            '["billing"]["HOOKS"][0]',
            "RequestHookInterface",
        ),
        (
            with_client("billing", {"BASE_URL": "https://b.example.com", "HOOKS": ["requestforge_django.http.ApiKeyAuthHook"]}),
            '["HOOKS"][0]',
            "AUTH configures auth hooks",
        ),
        (
            with_steps([{"NAME": "a", "URL": "https://a.example.com", "FETCHER": "requestforge_django.setting.specs.freeze"}]),
            f'{STEPS}[0]["FETCHER"]',
            "is not a class",
        ),
        (
            with_steps([{"NAME": "a", "URL": "https://a.example.com", "FETCHER": "requestforge_django.http.HttpClient"}]),
            f'{STEPS}[0]["FETCHER"]',
            "is not a TokenFetcherInterface subclass",
        ),
    ],
)
def test_e014_imported_object_of_the_wrong_kind(setting: dict[str, Any], key: str, fragment: str) -> None:
    reported(setting, "requestforge.E014", key, fragment)


def test_custom_fetcher_class_and_hook_instances_are_accepted() -> None:
    setting = with_steps(
        [{"NAME": "a", "URL": "https://a.example.com", "FETCHER": f"{__name__}.DummyFetcher", "OPTIONS": {"region": "eu"}}]
    )
    assert ids(setting) <= {"requestforge.W001"}
    assert parse_settings(setting).pipelines["partner"].steps[0].fetcher == f"{__name__}.DummyFetcher"


def test_e021_duplicate_step_name() -> None:
    steps = [{"NAME": "token", "URL": "https://a.example.com"}, {"NAME": "token", "URL": "https://b.example.com"}]
    message = reported(with_steps(steps), "requestforge.E021", f'{STEPS}[1]["NAME"] is "token", already the NAME of step 0')
    assert message.obj == 'REQUESTFORGE pipeline "partner"'


def test_e022_unknown_fetcher_with_did_you_mean() -> None:
    steps = [{"NAME": "a", "URL": "https://a.example.com", "FETCHER": "headr", "TOKEN_HEADER": "X-T"}]
    reported(with_steps(steps), "requestforge.E022", f'{STEPS}[0]["FETCHER"] is "headr"', 'did you mean "header"?')


def test_e023_depends_on_unknown_step() -> None:
    steps = [
        {"NAME": "device_token", "URL": "https://a.example.com"},
        {"NAME": "app", "URL": "https://a.example.com", "DEPENDS_ON": ["device_tokn"]},
    ]
    reported(
        with_steps(steps), "requestforge.E023", f'{STEPS}[1]["DEPENDS_ON"][0] names step "device_tokn"', 'did you mean "device_token"?'
    )


def test_e024_depends_on_later_step() -> None:
    steps = [{"NAME": "app", "URL": "https://a.example.com", "DEPENDS_ON": ["device"]}, {"NAME": "device", "URL": "https://a.example.com"}]
    message = reported(
        with_steps(steps), "requestforge.E024", f'{STEPS}[0]["DEPENDS_ON"][0] names step "device", which comes after step "app"'
    )
    assert ids(with_steps(steps)) & {"requestforge.E023", "requestforge.E025"} == set()
    assert 'Move "device" before "app"' in message.hint


def test_e025_dependency_cycle_reported_once() -> None:
    steps = [
        {"NAME": "a", "URL": "https://a.example.com", "DEPENDS_ON": ["c"]},
        {"NAME": "b", "URL": "https://a.example.com", "DEPENDS_ON": ["a"]},
        {"NAME": "c", "URL": "https://a.example.com", "DEPENDS_ON": ["b"]},
    ]
    reported(with_steps(steps), "requestforge.E025", f'{STEPS}[0]["DEPENDS_ON"][0]', "a -> c -> b -> a")
    messages = run(with_steps(steps))
    assert [m.id for m in messages if m.is_serious()] == ["requestforge.E025"]


def test_e025_self_dependency_is_a_cycle() -> None:
    reported(with_steps([{"NAME": "a", "URL": "https://a.example.com", "DEPENDS_ON": ["a"]}]), "requestforge.E025", "a -> a")


@pytest.mark.parametrize(
    ("step", "key", "fragment"),
    [
        ({"HEADERS": {"X-Device-Token": "{device_token}"}}, '["HEADERS"]', '"device_token" is not in this step\'s DEPENDS_ON'),
        ({"URL": "https://a.example.com/{device_token}", "DEPENDS_ON": ["device_token"]}, '["URL"]', "URL is not a template"),
        ({"HEADERS": {"Authorization": "{device_token.authorization_header}"}}, '["HEADERS"]["Authorization"]', "DEPENDS_ON"),
        ({"HEADERS": {"X-T": "{device_token.password}"}, "DEPENDS_ON": ["device_token"]}, '["HEADERS"]["X-T"]', "is not a token field"),
        ({"JSON": {"raw": '{"a": 1}'}}, '["JSON"]["raw"]', "that is not {step} or {step.field}"),
        ({"DATA": "grant={device_token"}, '["DATA"]', "brace is not closed"),
        ({"DATA": {"device": "{devce_token}"}, "DEPENDS_ON": ["device_token"]}, '["DATA"]', 'did you mean "device_token"?'),
        ({"JSON": {"auth": {"device": "{device_token}"}}}, '["JSON"]', "DEPENDS_ON"),
        ({"PARAMS": {"t": "{user_token}"}}, '["PARAMS"]', "names no step"),
        ({"PARAMS": {"t": "{app}"}}, '["PARAMS"]', "is this step itself"),
    ],
)
def test_e026_placeholder_not_in_depends_on(step: dict[str, Any], key: str, fragment: str) -> None:
    steps = [{"NAME": "device_token", "URL": "https://a.example.com"}, {"NAME": "app", "URL": "https://a.example.com", **step}]
    reported(with_steps(steps), "requestforge.E026", f"{STEPS}[1]{key}", fragment)


def test_escaped_braces_and_declared_placeholders_are_valid() -> None:
    steps = [
        {"NAME": "device_token", "URL": "https://a.example.com"},
        {
            "NAME": "app",
            "URL": "https://a.example.com",
            "DEPENDS_ON": ["device_token"],
            "JSON": {"template": "{{literal}}", "nested": [{"t": "{device_token.token_type} {device_token}"}]},
            "PARAMS": {"device": "{device_token.access_token}"},
        },
    ]
    assert ids(with_steps(steps)) <= {"requestforge.W001"}


def test_a_brace_wrapped_value_that_is_no_placeholder_is_not_echoed() -> None:
    steps = [{"NAME": "a", "URL": "https://a.example.com", "HEADERS": {"X-Key": "{" + SECRET + "}"}}]
    message = reported(with_steps(steps), "requestforge.E026", f'{STEPS}[0]["HEADERS"]["X-Key"] contains a placeholder')
    assert SECRET not in message.msg


def test_e027_refresh_from_step_unknown() -> None:
    steps = [{"NAME": "device_token", "URL": "https://a.example.com"}]
    reported(
        with_steps(steps, REFRESH_FROM_STEP="device"),
        "requestforge.E027",
        '["partner"]["REFRESH_FROM_STEP"] names step "device"',
        'did you mean "device_token"?',
    )


def test_e030_warm_names_unknown_client() -> None:
    reported(full(WARM=["billing", "biling_v2"]), "requestforge.E030", 'REQUESTFORGE["WARM"][1] names "biling_v2"')
    assert "requestforge.E030" not in ids(full(WARM=["billing", "partner"]))


def test_w001_locmem_cache_warns_only_when_tokens_are_used() -> None:
    message = reported(full(CACHE="default"), "requestforge.W001", 'REQUESTFORGE["CACHE"]', "LocMemCache", "private to each process")
    assert isinstance(message, Warning)
    no_tokens = with_client("legacy", {"BASE_URL": "https://l.example.com", "AUTH": {"TYPE": "api_key", "KEY": SECRET}})
    assert run(no_tokens, caches={"default": SHARED_CACHES["default"]}) == []


def test_w001_dummy_cache() -> None:
    caches = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    reported(full(CACHE="default"), "requestforge.W001", "DummyCache", "stores nothing", caches=caches)


def test_w002_refresh_ahead_not_shorter_than_step_ttl() -> None:
    setting = full(REFRESH_AHEAD=3600)
    message = reported(setting, "requestforge.W002", f'{STEPS}[1]["TTL"] is 3600s', "REFRESH_AHEAD (3600s)")
    assert isinstance(message, Warning)
    assert "requestforge.W002" not in ids(full(REFRESH_AHEAD=3599))


def test_w002_refresh_ahead_against_default_lifetime() -> None:
    reported({"REFRESH_AHEAD": 7200}, "requestforge.W002", 'REQUESTFORGE["REFRESH_AHEAD"]', "TOKEN_DEFAULT_LIFETIME (3600s)")
    reported({"TOKEN_DEFAULT_LIFETIME": 30}, "requestforge.W002", 'REQUESTFORGE["TOKEN_DEFAULT_LIFETIME"] is 30s')


@pytest.mark.parametrize(
    ("setting", "key", "fragment"),
    [
        (
            with_client(
                "billing",
                {"BASE_URL": "https://b.example.com", "AUTH": {"TYPE": "bearer", "TOKEN": SECRET, "TOKEN_URL": "https://a.example.com"}},
            ),
            f'{BILLING_AUTH}["TOKEN_URL"]',
            'with AUTH TYPE "bearer"',
        ),
        (
            with_client("billing", {"BASE_URL": "https://b.example.com", "RETRY": {"STRATEGY": "none", "MAX_RETRIES": 3}}),
            '["RETRY"]["MAX_RETRIES"]',
            'STRATEGY "none"',
        ),
        (
            with_client("billing", {"BASE_URL": "https://b.example.com", "RETRY": {"STRATEGY": "simple", "JITTER": True}}),
            '["RETRY"]["JITTER"]',
            'STRATEGY "simple"',
        ),
        (
            with_steps([{"NAME": "a", "URL": "https://a.example.com", "FETCHER": "header", "TOKEN_HEADER": "X-T", "TOKEN_FIELD": "token"}]),
            f'{STEPS}[0]["TOKEN_FIELD"]',
            'FETCHER "header"',
        ),
        (
            with_steps([{"NAME": "a", "URL": "https://a.example.com", "TOKEN_HEADER": "X-T"}]),
            f'{STEPS}[0]["TOKEN_HEADER"]',
            'FETCHER "body"',
        ),
    ],
)
def test_w003_key_ignored_in_context(setting: dict[str, Any], key: str, fragment: str) -> None:
    message = reported(setting, "requestforge.W003", key, "has no effect", fragment)
    assert isinstance(message, Warning)


def test_w004_verify_ssl_false() -> None:
    message = reported(
        with_client("billing", {"BASE_URL": "https://b.example.com", "VERIFY_SSL": False}),
        "requestforge.W004",
        '["billing"]["VERIFY_SSL"] is False',
    )
    assert isinstance(message, Warning)
    assert "requestforge.W004" not in ids(with_client("billing", {"BASE_URL": "https://b.example.com", "VERIFY_SSL": "/etc/ssl/ca.pem"}))


def test_w005_plain_http_for_credentials_except_loopback() -> None:
    auth = {"TYPE": "client_credentials", "TOKEN_URL": "http://auth.example.com/token", "CLIENT_ID": "id", "CLIENT_SECRET": SECRET}
    reported(
        with_client("billing", {"BASE_URL": "https://b.example.com", "AUTH": auth}),
        "requestforge.W005",
        f'{BILLING_AUTH}["TOKEN_URL"] uses plain http://',
    )
    reported(
        with_client("billing", {"BASE_URL": "http://b.example.com", "AUTH": {"TYPE": "bearer", "TOKEN": SECRET}}),
        "requestforge.W005",
        '["billing"]["BASE_URL"]',
    )
    reported(with_steps([{"NAME": "a", "URL": "http://auth.partner.com/token"}]), "requestforge.W005", f'{STEPS}[0]["URL"]')
    local = {**auth, "TOKEN_URL": "http://127.0.0.1:8080/token"}
    assert "requestforge.W005" not in ids(with_client("billing", {"BASE_URL": "http://localhost:8000", "AUTH": local}))
    assert "requestforge.W005" not in ids(with_client("billing", {"BASE_URL": "http://b.example.com"}))


def test_w006_warm_interval_longer_than_the_refresh_window() -> None:
    auth = {"TYPE": "client_credentials", "TOKEN_URL": "https://auth.example.com/token", "CLIENT_ID": "id", "CLIENT_SECRET": SECRET}
    client = {"BASE_URL": "https://b.example.com", "AUTH": auth}
    message = reported(
        with_client("billing", client, WARM_INTERVAL=60, REFRESH_AHEAD=60),
        "requestforge.W006",
        '["WARM_INTERVAL"] is 60s',
        "window (60s",
    )
    assert message.hint == "Run the warm-up more often (WARM_INTERVAL < 60) or raise REFRESH_AHEAD."
    # A step TTL of 40 s makes the window 20 s: an interval of 30 s is too long for it.
    step = {"NAME": "a", "URL": "https://auth.partner.com/token", "TTL": 40}
    reported({**with_steps([step]), "WARM_INTERVAL": 30}, "requestforge.W006", "half the shortest token lifetime 40s")
    assert "requestforge.W006" not in ids(with_client("billing", client, WARM_INTERVAL=10, REFRESH_AHEAD=60))
    # Without token-backed clients there is nothing to warm, so nothing to warn about.
    assert "requestforge.W006" not in ids(with_client("public", {"BASE_URL": "https://b.example.com"}, WARM_INTERVAL=600))


# -- secrets never appear -----------------------------------------------------------------------


def test_no_message_or_hint_ever_contains_a_secret_value() -> None:
    setting = {
        "ENCRYPTION_KEYS": [SECRET],
        "CLIENTS": {
            "billing": {
                "BASE_URL": f"ftp://user:{SECRET}@b.example.com",
                "HEADERS": {"Authorization": ["Bearer", SECRET]},
                "AUTH": {"TYPE": "client_credentials", "TOKEN_URL": f"https://u:{SECRET}@a", "CLIENT_SECRET": [SECRET], "CREDENTIAL": "x"},
            },
            "legacy": {"BASE_URL": "https://l.example.com", "AUTH": {"TYPE": "basic", "PASSWORD": SECRET, "TOKEN": SECRET}},
            "bearer": {"BASE_URL": "https://l.example.com", "AUTH": {"TYPE": "bearer", "TOKEN": {"value": SECRET}}},
        },
        "PIPELINES": {
            "p": {
                "STEPS": [
                    {
                        "NAME": "a",
                        "URL": "https://a.example.com",
                        "DATA": {"client_secret": [SECRET]},
                        "HEADERS": {"X-Secret": SECRET, "X-T": "{b}"},
                    }
                ]
            }
        },
    }
    messages = run(setting)
    assert len(messages) >= 8
    for message in messages:
        assert SECRET not in message.msg
        assert SECRET not in (message.hint or "")


# -- the normalized view --------------------------------------------------------------------------


def test_parse_settings_normalizes_the_full_example() -> None:
    spec = parse_settings(FULL, caches=SHARED_CACHES)
    assert isinstance(spec, SettingsSpec)
    assert (spec.cache, spec.key_prefix, spec.refresh_ahead, spec.lock_timeout, spec.warm, spec.warm_interval) == (
        "tokens",
        "requestforge",
        60.0,
        30.0,
        None,
        30.0,
    )
    billing = spec.clients["billing"]
    assert isinstance(billing, ClientSpec)
    assert billing.base_url == "https://billing.example.com"
    assert billing.retry is not None and billing.retry.retry_on_status == frozenset({429, 502, 503, 504})
    assert billing.circuit_breaker is not None and billing.circuit_breaker.recovery_timeout == 30.0
    assert billing.rate_limit is not None and (billing.rate_limit.rate, billing.rate_limit.burst) == (10.0, 20)
    assert billing.auth is not None and billing.auth.client_secret.reveal() == SECRET and billing.auth.uses_tokens
    assert SECRET not in repr(billing)  # secrets are excluded from repr
    assert spec.clients["legacy"].auth.header == "X-API-Key"  # type: ignore[union-attr]
    assert spec.clients["erp"].auth.credential == "erp-prod"  # type: ignore[union-attr]
    partner = spec.pipelines["partner"]
    assert isinstance(partner, PipelineSpec)
    assert partner.step_names == ["device_token", "app_token"]
    assert partner.steps[0].method == "POST" and partner.steps[0].ttl == 2592000.0
    assert partner.steps[1].depends_on == ("device_token",) and partner.steps[1].token_field == "access_token"
    with pytest.raises(TypeError):
        partner.steps[1].headers["X-Other"] = "x"  # type: ignore[index]
    assert spec.uses_tokens


def test_parse_settings_fills_defaults_and_accepts_timedelta_and_lowercase() -> None:
    setting = {
        "REFRESH_AHEAD": timedelta(minutes=2),
        "CLIENTS": {"api": {"BASE_URL": "https://api.example.com/", "RETRY": {}}},
        "PIPELINES": {"p": {"STEPS": [{"NAME": "a", "URL": "https://a.example.com", "METHOD": "get", "TTL": timedelta(hours=1)}]}},
    }
    spec = parse_settings(setting, caches=SHARED_CACHES)
    assert spec.refresh_ahead == 120.0
    api = spec.clients["api"]
    assert (api.base_url, api.timeout, api.verify_ssl, api.auth, api.hooks) == ("https://api.example.com", 30.0, True, None, ())
    assert api.retry is not None and (api.retry.strategy, api.retry.max_retries) == ("exponential", 3)
    step = spec.pipelines["p"].steps[0]
    assert (step.fetcher, step.method, step.ttl, step.token_field, step.token_type) == ("body", "GET", 3600.0, "access_token", "Bearer")


def test_parse_settings_raises_improperly_configured_naming_the_first_error() -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape('REQUESTFORGE["CLIENTS"]["billing"]["BASE_URL"] is required')) as info:
        parse_settings({"CLIENTS": {"billing": {"TIMEOUT": -1}}}, caches=SHARED_CACHES)
    assert "requestforge.E004" in str(info.value)
    assert "1 more" in str(info.value)


def test_warnings_do_not_stop_parsing() -> None:
    spec = parse_settings(full(CACHE="default", REFRESH_AHEAD=3600), caches=SHARED_CACHES)
    assert spec.refresh_ahead == 3600.0


def test_problems_carry_structured_fields_for_the_admin() -> None:
    problems = validate_settings(
        with_client("billing", {"BASE_URL": "https://b.example.com", "AUTH": {"TYPE": "bearer"}}), caches=SHARED_CACHES
    )
    [problem] = problems
    assert (problem.id, problem.level, problem.client, problem.pipeline) == ("requestforge.E011", Level.ERROR, "billing", None)
    assert problem.path == ("CLIENTS", "billing", "AUTH", "TOKEN")
    assert problem.key == 'REQUESTFORGE["CLIENTS"]["billing"]["AUTH"]["TOKEN"]'
    assert problem.message == f"{problem.key} {problem.detail}"


def test_single_client_and_pipeline_validation_share_the_rules() -> None:
    problems = validate_client("billing", {"BASE_URL": "https://b.example.com", "AUTH": {"TYPE": "pipeline", "PIPELINE": "partner"}})
    assert [p.id for p in problems] == ["requestforge.E012"]
    assert (
        validate_client(
            "billing", {"BASE_URL": "https://b.example.com", "AUTH": {"TYPE": "pipeline", "PIPELINE": "partner"}}, pipelines=["partner"]
        )
        == []
    )
    assert parse_client("billing", FULL["CLIENTS"]["billing"]).auth.scope == "invoices"  # type: ignore[union-attr]
    assert [p.id for p in validate_pipeline("partner", {"STEPS": [{"NAME": "a"}]})] == ["requestforge.E004"]
    assert parse_pipeline("partner", FULL["PIPELINES"]["partner"]).step_names == ["device_token", "app_token"]
    with pytest.raises(ImproperlyConfigured, match="E004"):
        parse_pipeline("partner", {"STEPS": [{"NAME": "a"}]})


# -- the settings object and reloads -------------------------------------------------------------


def test_settings_object_returns_defaults_and_user_values() -> None:
    with override_settings(REQUESTFORGE={"REFRESH_AHEAD": 5}):
        assert requestforge_settings.REFRESH_AHEAD == 5
        assert requestforge_settings.CACHE == DEFAULTS["CACHE"] == "default"
        assert requestforge_settings.KEY_PREFIX == "requestforge"
        assert requestforge_settings.ENCRYPTION_KEYS == []
        assert requestforge_settings.CLIENTS == {} and requestforge_settings.PIPELINES == {}
        assert (requestforge_settings.LOCK_TIMEOUT, requestforge_settings.DEFAULT_TIMEOUT) == (30, 30.0)
        assert (requestforge_settings.TOKEN_DEFAULT_LIFETIME, requestforge_settings.WARM, requestforge_settings.WARM_INTERVAL) == (
            3600,
            None,
            30,
        )
    with pytest.raises(AttributeError, match="REFRESH_AHAED"):
        requestforge_settings.REFRESH_AHAED  # noqa: B018


def test_settings_reload_on_override_settings() -> None:
    with override_settings(REQUESTFORGE={"REFRESH_AHEAD": 5}):
        assert requestforge_settings.REFRESH_AHEAD == 5
        assert requestforge_settings.spec.refresh_ahead == 5.0
        with override_settings(REQUESTFORGE={"REFRESH_AHEAD": 7}):
            assert requestforge_settings.REFRESH_AHEAD == 7
            assert requestforge_settings.spec.refresh_ahead == 7.0
        assert requestforge_settings.REFRESH_AHEAD == 5
        assert requestforge_settings.spec.refresh_ahead == 5.0


def test_settings_fixture_also_reloads(settings: Any) -> None:
    settings.REQUESTFORGE = {"KEY_PREFIX": "shop"}
    assert requestforge_settings.KEY_PREFIX == "shop"
    settings.REQUESTFORGE = {"KEY_PREFIX": "shop2"}
    assert requestforge_settings.spec.key_prefix == "shop2"


def test_on_reload_callbacks_run_for_requestforge_and_caches_changes() -> None:
    calls: list[str] = []

    def callback() -> None:
        calls.append("reloaded")

    assert requestforge_settings.on_reload(callback) is callback
    requestforge_settings.on_reload(callback)  # idempotent
    try:
        with override_settings(REQUESTFORGE={}):
            assert calls == ["reloaded"]
        assert calls == ["reloaded"] * 2
        with override_settings(CACHES=SHARED_CACHES):
            pass
        assert calls == ["reloaded"] * 4
        with override_settings(USE_TZ=False):
            pass
        assert calls == ["reloaded"] * 4
    finally:
        requestforge_settings.remove_on_reload(callback)
    requestforge_settings.reload()
    assert calls == ["reloaded"] * 4


def test_a_failing_callback_does_not_stop_the_others() -> None:
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    def fine() -> None:
        calls.append("fine")

    requestforge_settings.on_reload(broken)
    requestforge_settings.on_reload(fine)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            requestforge_settings.reload()
        assert calls == ["fine"]
    finally:
        requestforge_settings.remove_on_reload(broken)
        requestforge_settings.remove_on_reload(fine)


def test_spec_raises_improperly_configured_for_invalid_settings() -> None:
    with override_settings(REQUESTFORGE={"CLIENTS": {"billing": {"BASE_URL": "billing"}}}):
        with pytest.raises(ImproperlyConfigured, match=re.escape('["CLIENTS"]["billing"]["BASE_URL"]')):
            _ = requestforge_settings.spec
        assert [p.id for p in requestforge_settings.problems()] == ["requestforge.E003"]
    with override_settings(REQUESTFORGE="oops"), pytest.raises(ImproperlyConfigured, match="E001"):
        requestforge_settings.CLIENTS  # noqa: B018


# -- app wiring, signals, docs ----------------------------------------------------------------------


def test_ready_registers_once_even_when_called_twice() -> None:
    from django.apps import apps

    config = apps.get_app_config("requestforge_django")
    assert (config.name, config.label, config.default_auto_field) == (
        "requestforge_django",
        "requestforge_django",
        "django.db.models.BigAutoField",
    )
    config.ready()
    config.ready()
    receivers = [r for r in setting_changed.receivers if r[0][0] == SETTINGS_RELOAD_UID]
    assert len(receivers) == 1
    assert check_settings in registry.registered_checks
    assert CHECK_TAG in check_settings.tags  # type: ignore[attr-defined]
    with override_settings(REQUESTFORGE=[]):
        assert [m.id for m in run_checks(tags=[CHECK_TAG])] == ["requestforge.E001"]


def test_signals_are_defined() -> None:
    from requestforge_django import signals

    for name in ("token_obtained", "token_invalidated", "token_refresh_failed"):
        assert isinstance(getattr(signals, name), Signal)
    for kwarg in ("name", "step", "expires_at", "reason", "error"):
        assert f"``{kwarg}``" in (signals.__doc__ or "")


def test_every_check_id_is_documented_and_tested() -> None:
    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "checks.md").read_text()
    # Each id is tested somewhere in the suite (the database-backed ones with the admin's models).
    source = "".join(path.read_text() for path in (root / "tests").rglob("test_*.py"))
    for check_id, info in CHECKS.items():
        assert f"| `{check_id}` | {info.level.value.capitalize()} |" in docs, check_id
        assert source.count(f'"{check_id}"') >= 1, f"{check_id} has no test"
    documented = set(re.findall(r"requestforge\.[EW]\d{3}", docs))
    assert documented == set(CHECKS)
