"""Models: credentials supply AUTH values; definitions produce the raw settings dicts, valid by the same rules."""

from __future__ import annotations

from typing import Any

import pytest

from requestforge_django.models import (
    ClientDefinition,
    Credential,
    PipelineDefinition,
    PipelineStep,
    database_definitions,
    get_credential,
    known_pipeline_names,
)
from requestforge_django.setting.validate import parse_client, parse_pipeline, validate_client, validate_pipeline
from tests.admin.conftest import SECRET

pytestmark = pytest.mark.django_db


def make_partner_pipeline(name: str = "partner") -> PipelineDefinition:
    """The DESIGN.md pipeline, as database rows (steps created out of order on purpose)."""
    pipeline = PipelineDefinition.objects.create(name=name, refresh_from_step="app_token")
    PipelineStep.objects.create(
        pipeline=pipeline,
        order=2,
        name="app_token",
        fetcher="body",
        url="https://auth.partner.com/v1/app/token",
        data={"client_id": "app-id"},
        headers={"X-Device-Token": "{device_token}"},
        depends_on=["device_token"],
        ttl=3600,
    )
    PipelineStep.objects.create(
        pipeline=pipeline,
        order=1,
        name="device_token",
        fetcher="header",
        url="https://auth.partner.com/v1/device/register",
        headers={"X-Device-ID": "device-123"},
        token_header="X-Device-Token",
        ttl=2592000,
    )
    return pipeline


def test_credential_auth_values_are_the_non_empty_auth_keys() -> None:
    credential = Credential.objects.create(
        name="erp", client_id="erp-app", client_secret=SECRET, scope="invoices read", extra_params={"audience": "erp"}
    )
    assert Credential.objects.get().auth_values() == {
        "CLIENT_ID": "erp-app",
        "CLIENT_SECRET": SECRET,
        "SCOPE": "invoices read",
        "EXTRA_PARAMS": {"audience": "erp"},
    }
    full = Credential(name="all", client_id="i", client_secret="cs", username="u", password="p", api_key="k", token="t")
    assert full.auth_values() == {"CLIENT_ID": "i", "CLIENT_SECRET": "cs", "USERNAME": "u", "PASSWORD": "p", "KEY": "k", "TOKEN": "t"}
    assert str(credential) == "erp"
    assert SECRET not in repr(credential) and "erp" in repr(credential)


def test_get_credential_returns_active_rows_only() -> None:
    Credential.objects.create(name="erp", client_secret=SECRET)
    Credential.objects.create(name="old", client_secret=SECRET, is_active=False)
    credential = get_credential("erp")
    assert credential is not None and credential.client_secret == SECRET
    assert get_credential("old") is None
    assert get_credential("missing") is None


def test_credential_extra_params_must_map_strings_to_strings() -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="extra_params"):
        Credential(name="erp", extra_params={"audience": 3}).full_clean()
    Credential(name="erp", extra_params={"audience": "erp"}).full_clean()


def test_client_to_setting_is_the_raw_settings_shape_and_parses_without_problems() -> None:
    credential = Credential.objects.create(name="erp-prod", client_id="erp-app", client_secret=SECRET)
    client = ClientDefinition.objects.create(
        name="erp",
        base_url="https://erp.example.com",
        timeout=10.0,
        headers={"User-Agent": "shop/1.0"},
        retry={"STRATEGY": "exponential", "MAX_RETRIES": 3, "RETRY_ON_STATUS": [429, 503]},
        circuit_breaker={"FAILURE_THRESHOLD": 5, "RECOVERY_TIMEOUT": 30},
        rate_limit={"RATE": 10, "BURST": 20},
        auth_type="client_credentials",
        token_url="https://login.erp.example.com/oauth2/token",
        credential=credential,
        scope="invoices",
        api_key_header="X-Stale",  # not used by client_credentials: left out
        hooks=["requestforge_django.http.builtin_hooks.CorrelationIdHook"],
    )
    raw = client.to_setting()
    assert raw == {
        "BASE_URL": "https://erp.example.com",
        "TIMEOUT": 10.0,
        "HEADERS": {"User-Agent": "shop/1.0"},
        "VERIFY_SSL": True,
        "RETRY": {"STRATEGY": "exponential", "MAX_RETRIES": 3, "RETRY_ON_STATUS": [429, 503]},
        "CIRCUIT_BREAKER": {"FAILURE_THRESHOLD": 5, "RECOVERY_TIMEOUT": 30},
        "RATE_LIMIT": {"RATE": 10, "BURST": 20},
        "AUTH": {
            "TYPE": "client_credentials",
            "TOKEN_URL": "https://login.erp.example.com/oauth2/token",
            "CREDENTIAL": "erp-prod",
            "SCOPE": "invoices",
        },
        "HOOKS": ["requestforge_django.http.builtin_hooks.CorrelationIdHook"],
    }
    assert SECRET not in repr(raw)
    assert validate_client("erp", raw) == []
    spec = parse_client("erp", raw)
    assert (spec.auth.type, spec.auth.credential, spec.auth.client_secret) == ("client_credentials", "erp-prod", None)
    assert spec.rate_limit is not None and spec.rate_limit.burst == 20
    assert client.problems() == []


@pytest.mark.parametrize(
    ("fields", "auth"),
    [
        ({"auth_type": ""}, None),
        ({"auth_type": "bearer"}, {"TYPE": "bearer", "CREDENTIAL": "c"}),
        ({"auth_type": "api_key", "api_key_query_param": "key"}, {"TYPE": "api_key", "CREDENTIAL": "c", "QUERY_PARAM": "key"}),
        ({"auth_type": "basic", "excluded_paths": ["/health"]}, {"TYPE": "basic", "CREDENTIAL": "c", "EXCLUDED_PATHS": ["/health"]}),
        (
            {"auth_type": "password", "token_url": "https://a.example.com/t"},
            {"TYPE": "password", "TOKEN_URL": "https://a.example.com/t", "CREDENTIAL": "c"},
        ),
    ],
)
def test_every_auth_type_round_trips(fields: dict[str, Any], auth: dict[str, Any] | None) -> None:
    credential = Credential.objects.create(name="c", username="u", password=SECRET, api_key=SECRET, token=SECRET)
    client = ClientDefinition(name="x", base_url="https://x.example.com", credential=credential, verify_ssl=False, **fields)
    raw = client.to_setting()
    assert raw.get("AUTH") == auth
    assert raw["VERIFY_SSL"] is False
    assert [p.id for p in validate_client("x", raw)] == ["requestforge.W004"]  # only the VERIFY_SSL warning
    parse_client("x", raw)


def test_pipeline_auth_round_trips_with_database_and_settings_pipelines(settings: Any) -> None:
    make_partner_pipeline("db-partner")
    settings.REQUESTFORGE = {
        **settings.REQUESTFORGE,
        "PIPELINES": {"settings-partner": {"STEPS": [{"NAME": "a", "URL": "https://a.example.com"}]}},
    }
    assert known_pipeline_names() == {"db-partner", "settings-partner"}
    for name in ("db-partner", "settings-partner"):
        client = ClientDefinition(name="partner", base_url="https://api.partner.com", auth_type="pipeline", pipeline=name)
        assert client.to_setting()["AUTH"] == {"TYPE": "pipeline", "PIPELINE": name}
        assert client.problems() == []
    unknown = ClientDefinition(name="partner", base_url="https://api.partner.com", auth_type="pipeline", pipeline="nope")
    assert [p.id for p in unknown.problems()] == ["requestforge.E012"]


def test_ca_bundle_replaces_verify_ssl() -> None:
    client = ClientDefinition(name="x", base_url="https://x.example.com", ca_bundle="/etc/ssl/ca.pem")
    assert client.to_setting()["VERIFY_SSL"] == "/etc/ssl/ca.pem"


def test_pipeline_to_setting_orders_steps_and_parses_without_problems() -> None:
    pipeline = make_partner_pipeline()
    raw = PipelineDefinition.objects.prefetch_related("steps").get().to_setting()
    assert raw == {
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
                "METHOD": "POST",
                "HEADERS": {"X-Device-Token": "{device_token}"},
                "DATA": {"client_id": "app-id"},
                "TOKEN_FIELD": "access_token",
                "EXPIRES_IN_FIELD": "expires_in",
                "TTL": 3600,
                "DEPENDS_ON": ["device_token"],
            },
        ],
        "REFRESH_FROM_STEP": "app_token",
    }
    assert validate_pipeline("partner", raw) == []
    assert parse_pipeline("partner", raw).step_names == ["device_token", "app_token"]
    assert pipeline.problems() == []


def test_pipeline_problems_use_the_given_unsaved_steps() -> None:
    pipeline = make_partner_pipeline()
    steps = list(pipeline.steps.all())
    steps[1].depends_on = []
    assert [p.id for p in pipeline.problems(steps)] == ["requestforge.E026"]
    assert [p.id for p in pipeline.problems([])] == ["requestforge.E003", "requestforge.E027"]


def test_database_definitions_returns_active_raw_dicts_by_name() -> None:
    credential = Credential.objects.create(name="erp-prod", client_id="i", client_secret=SECRET)
    ClientDefinition.objects.create(name="erp", base_url="https://erp.example.com", auth_type="bearer", credential=credential)
    ClientDefinition.objects.create(name="off", base_url="https://off.example.com", is_active=False)
    make_partner_pipeline()
    make_partner_pipeline("retired")
    PipelineDefinition.objects.filter(name="retired").update(is_active=False)
    clients, pipelines = database_definitions()
    assert clients == {
        "erp": {"BASE_URL": "https://erp.example.com", "VERIFY_SSL": True, "AUTH": {"TYPE": "bearer", "CREDENTIAL": "erp-prod"}}
    }
    assert list(pipelines) == ["partner"]
    assert [step["NAME"] for step in pipelines["partner"]["STEPS"]] == ["device_token", "app_token"]
    assert SECRET not in repr((clients, pipelines))
