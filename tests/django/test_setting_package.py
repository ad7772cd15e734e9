"""The ``setting`` package: the spec dataclasses are the one source of keys and defaults.

Each section's key list, the validator's defaults, the top-level ``DEFAULTS`` and the
core classes' defaults must agree with the specs, and the old module paths
(``validation``, ``specs``, ``conf``) must keep giving the same objects.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import fields
from pathlib import Path

import pytest

import requestforge_django.setting as setting_package

with warnings.catch_warnings():  # the old paths, compared with the new ones below (tests/test_package_layers.py checks the warning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from requestforge_django import conf, specs, validation
from requestforge_django.http.circuit_breaker import CircuitBreaker
from requestforge_django.http.config import HttpClientConfig, HttpClientConfigBuilder
from requestforge_django.http.rate_limit import RateLimiter
from requestforge_django.http.retry import ExponentialBackoffRetryStrategy, RetryPolicy, SimpleRetryStrategy
from requestforge_django.setting import conf as setting_conf
from requestforge_django.setting import keys, problems
from requestforge_django.setting.specs import (
    AUTH_TYPES,
    OAUTH_AUTH_TYPES,
    TOKEN_AUTH_TYPES,
    AuthSpec,
    BreakerSpec,
    ClientSpec,
    PipelineSpec,
    RateLimitSpec,
    RetrySpec,
    SettingsSpec,
    StepSpec,
    default_of,
    setting_keys,
)
from requestforge_django.setting.validate import parse_client, parse_settings, validate_client

PACKAGE = Path(setting_package.__file__).parent


def _client(**extra: object) -> dict[str, object]:
    return {"BASE_URL": "https://api.example.com", **extra}


# -- keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_list", "spec"),
    [
        (keys.CLIENT_KEYS, ClientSpec),
        (keys.RETRY_KEYS, RetrySpec),
        (keys.BREAKER_KEYS, BreakerSpec),
        (keys.RATE_LIMIT_KEYS, RateLimitSpec),
        (keys.PIPELINE_KEYS, PipelineSpec),
        (keys.STEP_KEYS, StepSpec),
        (tuple(keys.DEFAULTS), SettingsSpec),
    ],
)
def test_each_section_accepts_exactly_the_keys_of_its_spec(key_list: tuple[str, ...], spec: type) -> None:
    assert key_list == setting_keys(spec)
    names = {item.name for item in fields(spec)}
    assert {key.lower() for key in key_list} <= names


def test_a_client_key_unknown_to_the_spec_is_reported_and_a_spec_key_is_accepted() -> None:
    assert [p.id for p in validate_client("c", _client(POOL_MAXSIZE=3))] == []
    assert [p.id for p in validate_client("c", _client(POOL_MAXSIZ=3))] == ["requestforge.E002"]


def test_every_auth_key_is_a_field_of_the_auth_spec() -> None:
    auth_fields = {item.name.upper() for item in fields(AuthSpec)}
    assert set(keys.ALL_AUTH_KEYS) <= auth_fields
    assert set(keys.AUTH_KEYS_BY_TYPE) == set(AUTH_TYPES) == set(keys.AUTH_SECRETS_BY_TYPE)


def test_oauth_types_are_named_once() -> None:
    assert {"client_credentials", "password", "jwt_bearer", "token_exchange"} == OAUTH_AUTH_TYPES
    assert OAUTH_AUTH_TYPES | {"pipeline"} == TOKEN_AUTH_TYPES
    for type_ in OAUTH_AUTH_TYPES:
        for key in ("TOKEN_URL", "ISSUER", "CLIENT_AUTH_METHOD", "PRIVATE_KEY", "AUDIENCE", "RESOURCE"):
            assert key in keys.AUTH_KEYS_BY_TYPE[type_], (type_, key)
    assert "PRIVATE_KEY" not in keys.AUTH_KEYS_BY_TYPE["pipeline"]


# -- defaults -----------------------------------------------------------------------------


def test_a_client_with_only_a_base_url_has_every_field_default_of_the_spec() -> None:
    spec = parse_client("c", _client())
    for item in fields(ClientSpec):
        if item.name in ("name", "base_url"):
            continue
        assert getattr(spec, item.name) == default_of(ClientSpec, item.name), item.name


def test_empty_sections_parse_to_the_spec_defaults() -> None:
    spec = parse_client("c", _client(RETRY={}, CIRCUIT_BREAKER={}, RATE_LIMIT={"RATE": 2.5}))
    assert spec.retry == RetrySpec()
    assert spec.circuit_breaker == BreakerSpec()
    assert spec.rate_limit == RateLimitSpec(rate=2.5, burst=3)


def test_an_empty_setting_parses_to_the_settings_spec_defaults_and_defaults_shows_them() -> None:
    spec = parse_settings({}, caches={"default": {"BACKEND": "django_redis.cache.RedisCache"}})
    assert spec == SettingsSpec()
    for item in fields(SettingsSpec):
        raw = keys.DEFAULTS[item.name.upper()]
        value = getattr(spec, item.name)
        assert (list(value) if isinstance(value, tuple) else dict(value) if item.name in ("clients", "pipelines") else value) == raw


def test_max_delay_defaults_to_thirty_seconds_or_the_base_delay_if_longer() -> None:
    assert RetrySpec().max_delay == 30.0
    assert RetrySpec(base_delay=45.0).max_delay == 45.0
    assert RetrySpec(base_delay=45.0, max_delay=50.0).max_delay == 50.0
    parsed = parse_client("c", _client(RETRY={"BASE_DELAY": 45}))
    assert parsed.retry is not None and parsed.retry.max_delay == 45.0
    parsed = parse_client("c", _client(RETRY={"BASE_DELAY": 1}))
    assert parsed.retry is not None and parsed.retry.max_delay == 30.0
    assert RetryPolicy(base_delay=45.0).as_strategy().max_delay == 45.0
    assert RetryPolicy(base_delay=1.0).as_strategy().max_delay == 30.0


def test_an_invalid_max_delay_is_one_problem_and_falls_back_to_the_default() -> None:
    found = validate_client("c", _client(RETRY={"BASE_DELAY": 2, "MAX_DELAY": "soon"}))
    assert [(p.id, p.key) for p in found] == [("requestforge.E003", 'REQUESTFORGE["CLIENTS"]["c"]["RETRY"]["MAX_DELAY"]')]
    found = validate_client("c", _client(RETRY={"BASE_DELAY": 2, "MAX_DELAY": 1}))
    assert [p.detail for p in found] == ["must be >= BASE_DELAY (2), got 1."]


def test_core_classes_and_specs_share_their_defaults() -> None:
    retry = RetrySpec()
    strategy = ExponentialBackoffRetryStrategy()
    assert (strategy.max_retries, strategy.base_delay, strategy.max_delay, strategy.multiplier) == (
        retry.max_retries,
        retry.base_delay,
        retry.max_delay,
        retry.multiplier,
    )
    assert SimpleRetryStrategy().max_delay == retry.max_delay
    assert strategy.retry_on_status == retry.retry_on_status
    breaker = CircuitBreaker()
    assert (breaker.failure_threshold, breaker.recovery_timeout) == (BreakerSpec().failure_threshold, BreakerSpec().recovery_timeout)
    config = HttpClientConfig()
    client = parse_client("c", _client())
    assert (config.pool_connections, config.pool_maxsize, config.max_redirects, config.default_timeout) == (
        client.pool_connections,
        client.pool_maxsize,
        client.max_redirects,
        client.timeout,
    )
    built = HttpClientConfigBuilder().with_base_url("https://api.example.com").with_retry().with_pool_size().with_circuit_breaker().build()
    assert isinstance(built.retry_strategy, ExponentialBackoffRetryStrategy) and built.retry_strategy.max_delay == retry.max_delay
    assert (built.pool_connections, built.pool_maxsize) == (client.pool_connections, client.pool_maxsize)
    assert built.circuit_breaker is not None and built.circuit_breaker.failure_threshold == BreakerSpec().failure_threshold


def test_the_rate_limiter_and_the_setting_size_the_bucket_alike() -> None:
    for rate in (0.2, 1.0, 2.5, 10.0):
        spec = parse_client("c", _client(RATE_LIMIT={"RATE": rate}))
        assert spec.rate_limit is not None
        assert spec.rate_limit.burst == RateLimiter(rate).burst


# -- old paths and the package's shape ----------------------------------------------------------


def test_old_module_paths_give_the_same_objects() -> None:
    assert validation.Problem is problems.Problem
    assert validation.parse_settings is setting_package.parse_settings
    assert validation.CLIENT_KEYS is keys.CLIENT_KEYS
    assert specs.ClientSpec is ClientSpec and specs.DEFAULTS is keys.DEFAULTS
    assert conf.requestforge_settings is setting_conf.requestforge_settings
    assert conf.DEFAULTS is keys.DEFAULTS and conf.SETTING_NAME == problems.SETTING_NAME == "REQUESTFORGE"


def test_every_module_of_the_package_is_small() -> None:
    sizes = {path.relative_to(PACKAGE).as_posix(): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert all(size < 450 for size in sizes.values()), sizes


def test_the_package_imports_down_only() -> None:
    """Module level: only the package itself, http and tokens (the Django layer above it only lazily)."""
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        depth = len(path.relative_to(PACKAGE).parts)  # 1: setting/x.py, 2: setting/rules/x.py
        for node in tree.body:
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            if node.level > depth:  # leaves the package: must go to http or tokens
                assert (node.module or "").split(".")[0] in ("http", "tokens"), (path.name, node.module)
